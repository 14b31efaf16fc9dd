import math

import numpy as np
import pytest

from sureid._checks import (
    check_bool,
    check_finite,
    check_int,
    check_real,
    check_size,
    is_int,
    is_real,
)


def test_is_int_refuses_bool_and_accepts_numpy():
    assert is_int(3) and is_int(np.int64(3))
    assert not is_int(True) and not is_int(3.0)


def test_is_real_refuses_bool_and_accepts_numpy_floats():
    assert is_real(3) and is_real(0.5) and is_real(np.float32(0.5)) and is_real(np.int64(3))
    assert not is_real(True) and not is_real("0.5") and not is_real(None)


@pytest.mark.parametrize(
    "kwargs, value, err, match",
    [
        ({}, True, TypeError, "n must be an int, got bool True"),
        ({}, 2.0, TypeError, "n must be an int, got float 2.0"),
        ({"low": 1}, 0, ValueError, "n must be >= 1, got 0"),
        ({"high": 3}, 4, ValueError, "n must be <= 3, got 4"),
        ({"low": 1, "high": 3}, 4, ValueError, r"n must be in \[1, 3\], got 4"),
    ],
)
def test_check_int(kwargs, value, err, match):
    with pytest.raises(err, match=match):
        check_int("n", value, **kwargs)


def test_check_int_returns_plain_int():
    out = check_int("n", np.int32(5), low=0)
    assert out == 5 and type(out) is int


@pytest.mark.parametrize(
    "kwargs, value, err, match",
    [
        ({}, "1", TypeError, "x must be a real number, got str '1'"),
        ({}, False, TypeError, "x must be a real number"),
        ({"low": 0.0, "low_open": True}, math.nan, ValueError, r"x must be in \(0, inf\], got nan"),
        ({"low": 0.0, "high": 1.0, "high_open": True}, 1.0, ValueError, r"in \[0, 1\), got 1.0"),
    ],
)
def test_check_real(kwargs, value, err, match):
    with pytest.raises(err, match=match):
        check_real("x", value, **kwargs)


def test_check_real_bounds_are_inclusive_unless_open():
    assert check_real("x", 0, low=0.0, high=1.0) == 0.0
    assert check_real("x", np.float32(1.0), low=0.0, high=1.0) == 1.0


def test_check_finite_is_one_error_type():
    for bad in (math.inf, math.nan, "1", True, -1.0):
        with pytest.raises(ValueError, match="w must be a finite float >= 0"):
            check_finite("w", bad, minimum=0.0)
    assert check_finite("w", 2) == 2.0


def test_check_bool_and_size():
    assert check_bool("flag", False) is False
    with pytest.raises(TypeError, match="flag must be a bool, got 1"):
        check_bool("flag", 1)
    assert check_size("s", 4, square=True) == (4, 4)
    assert check_size("s", [8, 4]) == (8, 4)
    with pytest.raises(TypeError, match=r"s must be a pair of ints \(H, W\)"):
        check_size("s", 4)
    with pytest.raises(ValueError, match="s must be positive"):
        check_size("s", (0, 4))


def test_public_arguments_take_numpy_scalars_as_plain_numbers():
    # np.float32 is not a float subclass (np.float64 is); both must work wherever a number does
    import torch

    from sureid import HTSViT, RatioLoss
    from sureid.inference import FeatureExtractor
    from sureid.losses.reid import CrossEntropyLabelSmooth
    from sureid.models.reweight import ClsTokenReweight
    from sureid.models.vit import VisionTransformer

    vit = VisionTransformer(img_size=(32, 16), patch_size=8, embed_dim=8, depth=3, num_heads=2,
                            mlp_ratio=np.float32(2.0))
    model = HTSViT(vit, keep_ratio=np.float32(0.5), prune_layers=(np.int64(1),),
                   tau=np.float32(1.0))
    assert model.keep_ratios == (0.5,) and type(model.keep_ratios[0]) is float
    assert model.prune_layers == (1,) and type(model.prune_layers[0]) is int
    model.keep_ratios = [np.float32(0.25)]
    assert model.keep_ratios == (0.25,)
    assert RatioLoss([np.float32(0.5)]).target_ratios == (0.5,)
    ce = CrossEntropyLabelSmooth(np.int64(3), epsilon=np.float32(0.25))
    assert (ce.num_classes, ce.epsilon) == (3, 0.25) and type(ce.num_classes) is int
    assert ClsTokenReweight(np.int64(8), lambda_init=np.float32(0.5)).embed_dim == 8
    extractor = FeatureExtractor(model, batch_size=np.int64(2), num_workers=np.int64(0))
    assert type(extractor.batch_size) is int
    assert extractor(torch.rand(3, 3, 32, 16)).features.shape == (3, 8)
