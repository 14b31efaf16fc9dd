"""sureid.ablation.table: the teachers the NPKD rows distil from."""

import torch

import sureid
from sureid.ablation.table import npkd_teachers
from sureid.models import ReIDModel


def test_npkd_teachers_read_the_feature_before_or_after_the_bnneck():
    torch.manual_seed(0)
    vit = sureid.VisionTransformer(img_size=(32, 16), patch_size=8, embed_dim=16, depth=2,
                                   num_heads=2)
    net = ReIDModel(sureid.HTSViT(vit, keep_ratio=1.0, prune_layers=(1,)), 5,
                    eval_feature="after").eval()
    with torch.no_grad():  # statistics away from (0, 1), so the BatchNorm really acts
        net.neck.bn.running_mean.uniform_(-1, 1)
        net.neck.bn.running_var.uniform_(0.5, 2)
    teachers = npkd_teachers(net, torch.device("cpu"))
    x = torch.randn(3, 3, 32, 16)
    f_after, g_after = teachers["after"](x)
    f_before, g_before = teachers["before"](x)
    with torch.no_grad():
        raw = net.backbone(x)
        torch.testing.assert_close(f_before, raw)
        torch.testing.assert_close(f_after, net.neck.bn(raw))
        torch.testing.assert_close(f_after, net(x))
    torch.testing.assert_close(g_before, g_after)
    torch.testing.assert_close(g_after, f_after @ net.classifier_weight.t())
    assert not torch.allclose(f_before, f_after)
