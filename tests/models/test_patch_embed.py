"""The ViT stems: timm's PatchEmbed and the convolutional stem ConvStem."""

import pytest
import torch

from sureid import HTSViT
from sureid.models.patch_embed import ConvStem, PatchEmbed
from sureid.models.vit import VisionTransformer

TINY = dict(img_size=(64, 32), patch_size=16, embed_dim=32, depth=3, num_heads=2)


def test_patch_embed_is_one_strided_convolution():
    pe = PatchEmbed(img_size=(64, 32), patch_size=(16, 8), in_chans=3, embed_dim=12)
    x = torch.randn(2, 3, 64, 32)
    ref = torch.nn.functional.conv2d(x, pe.proj.weight, pe.proj.bias, stride=(16, 8))
    assert (pe.grid_size, pe.num_patches) == ((4, 4), 16)
    torch.testing.assert_close(pe(x), ref.flatten(2).transpose(1, 2), rtol=0, atol=0)
    with pytest.raises(ValueError, match="divisible by patch_size"):
        PatchEmbed(img_size=(64, 30), patch_size=(16, 8), in_chans=3, embed_dim=12)


def _conv_stem_reference(stem, x):
    """ConvStem written out with functional ops (eval-mode BN), layer by layer."""
    layers = list(stem.stem)
    for conv, bn in zip(layers[0::3], layers[1::3], strict=True):
        x = torch.nn.functional.conv2d(x, conv.weight, stride=2, padding=1)
        var = bn.running_var[:, None, None]
        x = (x - bn.running_mean[:, None, None]) / torch.sqrt(var + bn.eps)
        x = torch.relu(x * bn.weight[:, None, None] + bn.bias[:, None, None])
    x = torch.nn.functional.conv2d(x, stem.proj.weight, stem.proj.bias)
    return x.flatten(2).transpose(1, 2)


def test_conv_stem_matches_functional_reference_and_patch_grid():
    torch.manual_seed(0)
    conv = VisionTransformer(**TINY, stem="conv").eval()
    patch = VisionTransformer(**TINY)
    stem = conv.patch_embed
    for m in stem.stem.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    pe = patch.patch_embed
    assert (stem.grid_size, stem.num_patches) == (pe.grid_size, pe.num_patches)
    assert isinstance(stem, ConvStem)
    assert len(stem.stem) == 3 * 4  # patch 16: four stride-2 conv-BN-ReLU layers
    x = torch.randn(2, 3, 64, 32)
    x_copy = x.clone()
    with torch.no_grad():
        torch.testing.assert_close(stem(x), _conv_stem_reference(stem, x))
        assert conv.forward_features(x).shape == patch.forward_features(x).shape
    assert torch.equal(x, x_copy)


def test_conv_stem_under_hts_prunes_and_trains():
    torch.manual_seed(0)
    model = HTSViT(VisionTransformer(**TINY, stem="conv"), keep_ratio=0.5, prune_layers=[1])
    out = model.train()(torch.randn(4, 3, 64, 32))
    out.features.sum().backward()
    assert model.backbone.patch_embed.stem[0].weight.grad is not None
    assert model.eval()(torch.randn(4, 3, 64, 32)).shape == (4, TINY["embed_dim"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"patch_size": 12, "img_size": (48, 24)}, "power-of-two"),
        ({"patch_size": (8, 4)}, "square power-of-two"),
        ({"stem": "convs"}, "stem must be 'patch' or 'conv'"),
    ],
)
def test_conv_stem_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VisionTransformer(**{**TINY, "stem": "conv", **kwargs})


def test_conv_stem_wrong_image_size_raises():
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 3, 64, 32\)"):
        VisionTransformer(**TINY, stem="conv")(torch.randn(1, 3, 32, 32))
