"""sureid's own ViT: timm layout, timm checkpoints load and give timm's numbers."""

import pickle

import pytest
import torch

from sureid.models.vit import VisionTransformer, deit_small, deit_tiny, vit_base

timm = pytest.importorskip("timm")

TINY = dict(img_size=(64, 32), patch_size=16, embed_dim=32, depth=3, num_heads=2)


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"reg_tokens": 4, "no_embed_class": True},
        {"qk_norm": True, "init_values": 0.3, "qkv_bias": False},
        {"reg_tokens": 2, "pre_norm": True, "num_classes": 5},
    ],
    ids=["plain", "reg4-noembedcls", "qknorm-layerscale", "reg2-prenorm-head"],
)
def test_timm_state_dict_gives_timm_numbers(extra):
    ref = timm.models.VisionTransformer(**{"num_classes": 0, **TINY, **extra}).eval()
    ours = VisionTransformer(**TINY, **extra).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            ours.forward_features(x), ref.forward_features(x), atol=1e-5, rtol=0
        )
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=0)


def test_deit_small_loads_timm_deit_small_at_256x128():
    ref = timm.create_model(
        "deit_small_patch16_224", pretrained=False, img_size=(256, 128), num_classes=0
    )
    ours = deit_small(img_size=(256, 128))
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        torch.testing.assert_close(
            ours.eval().forward_features(x), ref.eval().forward_features(x), atol=1e-5, rtol=0
        )


@pytest.mark.parametrize(
    ("ours", "timm_name"),
    [(deit_tiny, "deit_tiny_patch16_224"), (deit_small, "deit_small_patch16_224"),
     (vit_base, "vit_base_patch16_224")],
)
def test_constructors_have_timm_keys_and_shapes(ours, timm_name):
    model = ours(img_size=(256, 128), depth=2)
    ref = timm.create_model(
        timm_name, pretrained=False, img_size=(256, 128), depth=2, num_classes=0
    )
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in ref.state_dict().items()
    }
    assert model.patch_embed.grid_size == (16, 8) and model.num_prefix_tokens == 1


def test_rectangular_patch_and_image():
    vit = VisionTransformer(
        img_size=(48, 20), patch_size=(8, 4), embed_dim=16, depth=1, num_heads=2
    )
    assert vit.patch_embed.num_patches == 6 * 5
    assert vit.forward_features(torch.randn(1, 3, 48, 20)).shape == (1, 31, 16)


def test_pickle_round_trip_and_input_untouched():
    vit = VisionTransformer(**TINY).eval()
    x = torch.randn(2, 3, 64, 32)
    x_copy = x.clone()
    clone = pickle.loads(pickle.dumps(vit))
    with torch.no_grad():
        torch.testing.assert_close(clone(x), vit(x))
    assert torch.equal(x, x_copy)


def test_drop_path_only_in_training():
    vit = VisionTransformer(**TINY, drop_path_rate=0.5)
    x = torch.randn(4, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(vit.eval()(x), vit.eval()(x))
        assert not torch.allclose(vit.train()(x), vit.train()(x))


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"img_size": (64, 30)}, ValueError, "divisible by patch_size"),
        ({"img_size": (64, 32.0)}, TypeError, "img_size"),
        ({"patch_size": 0}, ValueError, "patch_size"),
        ({"embed_dim": 30, "num_heads": 4}, ValueError, "divisible by num_heads"),
        ({"depth": 0}, ValueError, "depth"),
        ({"depth": 2.0}, TypeError, "depth"),
        ({"reg_tokens": -1}, ValueError, "reg_tokens"),
        ({"drop_path_rate": 1.0}, ValueError, "drop_path_rate"),
        ({"qk_norm": 1}, TypeError, "qk_norm"),
        ({"mlp_ratio": 0}, ValueError, "mlp_ratio"),
        ({"mlp_ratio": float("nan")}, ValueError, r"mlp_ratio must be in \(0, inf\), got nan"),
        ({"mlp_ratio": float("inf")}, ValueError, r"mlp_ratio must be in \(0, inf\), got inf"),
        ({"mlp_ratio": "4"}, TypeError, "mlp_ratio must be a real number, got str '4'"),
        ({"init_values": float("nan")}, ValueError, r"init_values must be in \(-inf, inf\)"),
        ({"init_values": "0.1"}, TypeError, "init_values must be a real number"),
    ],
)
def test_bad_construction(kwargs, err, match):
    with pytest.raises(err, match=match):
        VisionTransformer(**{**TINY, **kwargs})


@pytest.mark.parametrize("shape", [(1, 3, 64, 48), (1, 1, 64, 32), (3, 64, 32)])
def test_wrong_image_size_raises(shape):
    vit = VisionTransformer(**TINY)
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 3, 64, 32\)"):
        vit(torch.randn(shape))
