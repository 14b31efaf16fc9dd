"""HTSViT's argument checks: stage ratios, prune layers, keep masks."""

import pytest
import torch

from sureid.models import HTSViT, VisionTransformer
from sureid.models.hts_checks import check_keep_masks, check_prune_layers, stage_ratios


def tiny_hts():
    vit = VisionTransformer(img_size=(64, 32), patch_size=8, embed_dim=32, depth=6, num_heads=2)
    return HTSViT(vit, keep_ratio=0.7, prune_layers=(1, 3, 4))


def test_stage_ratios_geometric_or_one_per_stage():
    assert stage_ratios(0.7, 3) == (0.7, 0.7**2, 0.7**3)
    assert stage_ratios([1.0, 0.5, 0.5], 3) == (1.0, 0.5, 0.5)
    assert all(type(r) is float for r in stage_ratios([1, 0.5], 2))


@pytest.mark.parametrize(
    ("keep_ratio", "err", "match"),
    [
        (0.0, ValueError, r"keep_ratio must be in \(0, 1\], got 0.0"),
        (1.2, ValueError, r"keep_ratio must be in \(0, 1\]"),
        (float("nan"), ValueError, r"keep_ratio must be in \(0, 1\], got nan"),
        (True, TypeError, "keep_ratio must be a float or a sequence of floats, got True"),
        ("0.7", TypeError, "keep_ratio must be a sequence of floats"),
        ([0.7, 0.5], ValueError, "expected 3 values"),
        ([0.5, 0.7, 0.3], ValueError, "non-increasing"),
        ([0.7, 0.5, 0.0], ValueError, r"keep_ratio\[2\] must be in \(0, 1\], got 0.0"),
        ([0.7, float("nan"), 0.3], ValueError, r"keep_ratio\[1\] must be in \(0, 1\], got nan"),
        ([0.7, "0.5", 0.3], TypeError, r"keep_ratio\[1\] must be a real number, got str"),
    ],
)
def test_bad_keep_ratio(keep_ratio, err, match):
    with pytest.raises(err, match=match):
        stage_ratios(keep_ratio, 3)


@pytest.mark.parametrize(
    ("prune_layers", "err", "match"),
    [
        ((1, 1, 4), ValueError, "strictly increasing"),
        ((4, 3), ValueError, "strictly increasing"),
        ((1, 6), ValueError, r"\[0, 5\] for a 6-block model, got \[1, 6\]"),
        ((-1, 3), ValueError, r"\[0, 5\]"),
        ((), ValueError, "at least one"),
        ((1.0, 3), TypeError, r"prune_layers\[0\] must be an int, got float 1.0"),
        (3, TypeError, "prune_layers must be a sequence of block indices, got int"),
    ],
)
def test_bad_prune_layers(prune_layers, err, match):
    with pytest.raises(err, match=match):
        check_prune_layers(prune_layers, 6)
    assert check_prune_layers([0, 2, 5], 6) == (0, 2, 5)


def test_keep_masks_count_shape_and_type():
    ones = torch.ones(2, 8)
    with pytest.raises(ValueError, match=r"keep_masks must be 3 tensors of shape \(B, N\)"):
        check_keep_masks([ones], 3, 2, 8)
    with pytest.raises(ValueError, match=r"= \(2, 8\), got \[\(2, 8\), \(2, 7\)\]"):
        check_keep_masks([ones, torch.ones(2, 7)], 2, 2, 8)
    with pytest.raises(TypeError, match="keep_masks must be a sequence of 3"):
        check_keep_masks(torch.ones(3, 2, 8), 3, 2, 8)


@pytest.mark.parametrize(
    "bad, value",
    [(0.5, r"\[0.5"), (2.0, r"\[2.0"), (float("nan"), r"\[nan"), (-1.0, r"\[-1.0")],
)
def test_keep_masks_must_be_hard(bad, value):
    """Issue 16: masks passed to forward_train were never checked to be 0/1."""
    masks = [torch.ones(2, 8) for _ in range(3)]
    masks[1] = masks[1].clone()
    masks[1][1, 5] = bad
    masks[2] = masks[1].clamp(0, 1).nan_to_num(0.0)
    with pytest.raises(ValueError, match=rf"keep_masks\[1\] must hold only 0 and 1.*{value}"):
        check_keep_masks(masks, 3, 2, 8)


def test_keep_masks_must_be_cumulative_and_may_be_bool():
    first = torch.ones(2, 8, dtype=torch.bool)
    first[:, :4] = False
    second = torch.ones(2, 8, dtype=torch.bool)  # keeps tokens stage 0 dropped
    with pytest.raises(ValueError, match=r"cumulative.*keep_masks\[1\] keeps tokens"):
        check_keep_masks([first, second, second], 3, 2, 8)
    assert check_keep_masks((first, first), 2, 2, 8) == [first, first]


# ---------------------------------------------------------------- images (both paths)


@pytest.mark.parametrize("shape", [(1, 3, 64, 48), (1, 3, 32, 64)])
def test_wrong_image_size(shape):
    model = tiny_hts().eval()
    with pytest.raises(ValueError, match=r"images must be \(64, 32\)"):
        model(torch.randn(shape))
    with pytest.raises(ValueError, match=r"images must be \(64, 32\)"):
        model.train()(torch.randn(shape))


def test_not_an_image_batch():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        tiny_hts().eval()(torch.randn(3, 64, 32))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.bool])
def test_non_float_images_are_refused_with_a_hint(dtype):
    model = tiny_hts().eval()
    x = torch.zeros(2, 3, 64, 32, dtype=dtype)
    for m in (model.eval(), model.train()):
        with pytest.raises(TypeError, match=rf"floating tensor .*got {dtype}.*preprocess"):
            m(x)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_float_images_of_another_dtype_than_the_weights_are_named(dtype):
    model = tiny_hts().eval()
    with pytest.raises(TypeError, match=rf"images are {dtype} but the model's weights are "
                                        r"torch.float32.*autocast"):
        model(torch.zeros(2, 3, 64, 32, dtype=dtype))
    # the same dtype as the weights, or autocast, is fine
    assert model.to(dtype)(torch.zeros(2, 3, 64, 32, dtype=dtype)).dtype == dtype
    with torch.autocast("cpu", dtype=torch.bfloat16):
        if dtype == torch.float64:  # autocast never casts float64
            with pytest.raises(TypeError, match="images are torch.float64"):
                model.float()(torch.zeros(2, 3, 64, 32, dtype=dtype))
        else:
            model.float()(torch.zeros(2, 3, 64, 32, dtype=dtype))
