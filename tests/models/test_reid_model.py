import pytest
import torch

from sureid import HTSViT
from sureid.models import ReIDModel
from sureid.models.vit import VisionTransformer


def _vit():
    return VisionTransformer(img_size=(32, 16), patch_size=8, embed_dim=8, depth=2, num_heads=2)


def test_a_backbone_without_hts_output_is_refused_in_training_with_the_fix_named():
    model = ReIDModel(_vit(), 3)  # has an int embed_dim, so construction cannot tell
    x = torch.randn(2, 3, 32, 16)
    with pytest.raises(TypeError, match=r"must return sureid.HTSOutput.*got Tensor.*from_timm"):
        model.train()(x)
    wrapped = ReIDModel(HTSViT(_vit(), keep_ratio=1.0, prune_layers=(1,)), 3).train()
    assert wrapped(x).logits.shape == (2, 3)


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(backbone=torch.nn.Linear(2, 2), num_classes=3), TypeError, "embed_dim"),
    (dict(num_classes=1), ValueError, "num_classes"),
    (dict(num_classes=True), TypeError, "num_classes must be an int, got bool True"),
    (dict(num_classes=3, reweight=1), TypeError, "reweight must be a bool"),
    (dict(num_classes=3, eval_feature="neck"), ValueError, "eval_feature"),
])
def test_bad_constructor(kwargs, err, match):
    kwargs.setdefault("backbone", HTSViT(_vit(), keep_ratio=1.0, prune_layers=(1,)))
    with pytest.raises(err, match=match):
        ReIDModel(**kwargs)
