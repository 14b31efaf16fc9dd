import pickle

import pytest
import torch
from torch import nn

from sureid.losses.npkd import NPKDLoss
from sureid.models.heads import BNNeck
from sureid.models.teacher import FrozenTeacher


def _backbone(dim=8):
    # Dropout + BatchNorm make train/eval mode observable in the output
    return nn.Sequential(
        nn.Flatten(), nn.Linear(12, dim), nn.BatchNorm1d(dim), nn.Dropout(0.5)
    )


class _TupleModel(nn.Module):
    def forward(self, x):
        return x, x


@pytest.mark.parametrize("as_linear", [False, True])
def test_logits_are_bias_free_linear_on_the_raw_feature(as_linear):
    model = _backbone()
    w = torch.randn(5, 8)
    clf = nn.Linear(8, 5, bias=False)
    with torch.no_grad():
        clf.weight.copy_(w)
    teacher = FrozenTeacher(model, clf if as_linear else w)
    x = torch.randn(3, 3, 2, 2)
    feat, logits = teacher(x)
    torch.testing.assert_close(feat, model.eval()(x))
    torch.testing.assert_close(logits, feat @ w.t())  # no BN between feature and classifier
    assert teacher.num_classes == 5


def test_stays_frozen_and_in_eval_whatever_the_caller_does():
    teacher = FrozenTeacher(_backbone(), torch.randn(5, 8))
    teacher.train()
    teacher.requires_grad_(True)
    assert not teacher.training and not teacher.model.training
    assert all(not p.requires_grad for p in teacher.parameters())
    teacher.model.train()  # behind the wrapper's back
    x = torch.randn(4, 3, 2, 2)
    a, _ = teacher(x)
    b, _ = teacher(x)
    assert torch.equal(a, b) and not teacher.model.training  # no dropout, running BN stats
    assert not a.requires_grad


def test_teacher_parameters_get_no_gradient_student_parameters_do():
    teacher = FrozenTeacher(_backbone(16), torch.randn(4, 16))
    student = nn.Sequential(nn.Flatten(), nn.Linear(12, 8))
    neck = BNNeck(8, 4)
    x = torch.randn(6, 3, 2, 2)
    f_t, g_t = teacher(x)
    f_s = student(x)
    _, g_s = neck(f_s)
    NPKDLoss()(f_s, g_s, f_t, g_t).backward()
    assert all(p.grad is None for p in teacher.parameters())
    for p in [*student.parameters(), *neck.parameters()]:
        if p.requires_grad:
            assert p.grad is not None


def test_feature_only_teacher_and_pickling():
    teacher = FrozenTeacher(_backbone())
    feat, logits = teacher(torch.randn(2, 3, 2, 2))
    assert logits is None and feat.shape == (2, 8) and teacher.num_classes is None
    clone = pickle.loads(pickle.dumps(teacher))
    assert not clone.training


def test_bad_arguments():
    with pytest.raises(TypeError, match="nn.Module"):
        FrozenTeacher(lambda x: x)
    with pytest.raises(ValueError, match="bias-free"):
        FrozenTeacher(_backbone(), nn.Linear(8, 5))
    with pytest.raises(TypeError, match="classifier must be"):
        FrozenTeacher(_backbone(), [[1.0]])
    with pytest.raises(ValueError, match=r"2-D.*\(8,\)"):
        FrozenTeacher(_backbone(), torch.randn(8))
    with pytest.raises(ValueError, match=r"8 channels.*\(5, 7\)"):
        FrozenTeacher(_backbone(), torch.randn(5, 7))(torch.randn(2, 3, 2, 2))
    with pytest.raises(TypeError, match="feature tensor"):
        FrozenTeacher(_TupleModel())(torch.randn(2, 3))


def test_bnneck_teacher_with_after_feature_gives_its_trained_logits():
    """The recipe of docs/objectives.md: g^t equals the teacher's own (BN) logits."""
    from sureid import HTSViT, VisionTransformer
    from sureid.models import ReIDModel

    torch.manual_seed(0)
    vit = VisionTransformer(img_size=(32, 16), patch_size=8, embed_dim=16, depth=2, num_heads=2)
    hts = HTSViT(vit, keep_ratio=1.0, prune=False, prune_layers=[1])
    net = ReIDModel(hts, 5, eval_feature="after")
    for _ in range(3):  # give the BN running statistics something to hold
        net.train()(torch.randn(8, 3, 32, 16))
    teacher = FrozenTeacher(net, net.classifier_weight.detach())
    x = torch.randn(4, 3, 32, 16)
    f_t, g_t = teacher(x)
    with torch.no_grad():
        raw = net.backbone.eval()(x)
        norm = net.neck.bn
        bn = (raw - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps)
        bn = bn * norm.weight + norm.bias
        torch.testing.assert_close(f_t, bn)
        torch.testing.assert_close(g_t, bn @ net.neck.classifier.weight.t())


def test_a_head_gives_the_pre_bn_feature_with_the_bn_features_logits():
    """A BNNeck teacher read two ways: the whole model (its BN feature) or its backbone with
    the neck's BatchNorm as ``head``. Same logits; ``f^t`` is the pre-BN feature."""
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(12, 8))
    neck = BNNeck(8, 5, eval_feature="after")
    with torch.no_grad():  # running statistics away from (0, 1): the BN must really run
        neck.bn.running_mean.uniform_(-1, 1)
        neck.bn.running_var.uniform_(0.5, 2)
    whole = nn.Sequential(backbone, neck)
    w = neck.classifier.weight.detach()
    after, before = FrozenTeacher(whole, w), FrozenTeacher(backbone, w, head=neck.bn)
    x = torch.randn(4, 3, 2, 2)
    f_after, g_after = after(x)
    f_before, g_before = before(x)
    torch.testing.assert_close(g_before, g_after)
    torch.testing.assert_close(f_before, backbone(x))
    bn = (f_before - neck.bn.running_mean) / (neck.bn.running_var + neck.bn.eps).sqrt()
    torch.testing.assert_close(f_after, bn * neck.bn.weight + neck.bn.bias)
    assert not any(p.requires_grad for p in before.parameters())
    before.train()
    neck.bn.train()  # switched behind the teacher's back: its forward puts it back
    before(x)
    assert not neck.bn.training and not backbone.training


def test_a_head_that_is_not_a_module_is_refused():
    with pytest.raises(TypeError, match="head must be an nn.Module or None, got builtin_"):
        FrozenTeacher(_backbone(), torch.randn(5, 8), head=torch.relu)
