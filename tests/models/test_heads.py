import pytest
import torch

from sureid.models.heads import BNNeck


def test_training_returns_bn_feature_and_logits_of_bias_free_classifier():
    neck = BNNeck(6, 4)
    x = torch.randn(8, 6)
    bn_feat, logits = neck(x)
    expected_bn = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + neck.bn.eps)
    torch.testing.assert_close(bn_feat, expected_bn)
    torch.testing.assert_close(logits, bn_feat @ neck.classifier.weight.t())
    assert neck.classifier.bias is None


def test_bn_bias_is_frozen_zero_and_other_parameters_train():
    neck = BNNeck(5, 3)
    assert not neck.bn.bias.requires_grad and torch.equal(neck.bn.bias, torch.zeros(5))
    x = torch.randn(6, 5, requires_grad=True)
    _, logits = neck(x)
    logits.square().sum().backward()
    assert neck.bn.bias.grad is None
    trainable = [p for p in neck.parameters() if p.requires_grad]
    assert len(trainable) == 2 and all(p.grad is not None for p in trainable)
    assert x.grad is not None


@pytest.mark.parametrize("eval_feature", ["after", "before"])
def test_eval_returns_retrieval_feature_only(eval_feature):
    neck = BNNeck(5, 3, eval_feature=eval_feature)
    neck.train()
    neck(torch.randn(16, 5) * 3 + 1)  # update running stats
    neck.eval()
    x = torch.randn(4, 5)
    out = neck(x)
    assert isinstance(out, torch.Tensor) and out.shape == (4, 5)
    if eval_feature == "before":
        assert torch.equal(out, x)
    else:
        bn = neck.bn
        ref = (x - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight
        torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("shape", [(4,), (4, 6), (4, 5, 1)])
def test_bad_input_shape(shape):
    with pytest.raises(ValueError, match=r"\(B, 5\).*" + r"\(" + str(shape[0])):
        BNNeck(5, 3)(torch.randn(shape))


@pytest.mark.parametrize(
    "args, kwargs, match",
    [((0, 3), {}, "in_dim"), ((5, 0), {}, "num_classes"), ((5, 3), {"eval_feature": "x"}, "'x'")],
)
def test_bad_constructor(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        BNNeck(*args, **kwargs)


def test_bnneck_and_reid_model_share_one_default_eval_feature():
    from sureid import HTSViT
    from sureid.models import ReIDModel
    from sureid.models.vit import VisionTransformer

    vit = VisionTransformer(img_size=(32, 16), patch_size=8, embed_dim=8, depth=2, num_heads=2)
    model = ReIDModel(HTSViT(vit, keep_ratio=1.0, prune_layers=(1,)), 3)
    assert BNNeck(5, 3).eval_feature == model.eval_feature == model.neck.eval_feature == "before"
    model.eval()
    x = torch.randn(2, 3, 32, 16)
    with torch.no_grad():  # the eval feature is what the deployed backbone computes
        torch.testing.assert_close(model(x), model.backbone(x))
