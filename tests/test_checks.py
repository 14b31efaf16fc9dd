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


# ----------------------------------------------------------------------------- issue 26
from sureid._checks import check_device, check_label, check_output_path  # noqa: E402


@pytest.mark.parametrize("value, err", [
    (2.0**63, TypeError), (7.0, TypeError), (True, TypeError), ("3", TypeError),
    (2**63, ValueError), (-(2**63) - 1, ValueError),
])
def test_check_label_refuses_floats_and_ints_beyond_int64(value, err):
    with pytest.raises(err, match="pid must be"):
        check_label("pid", value)


def test_check_label_keeps_int64_extremes():
    assert check_label("pid", np.int64(2**63 - 1)) == 2**63 - 1
    assert check_label("pid", -(2**63)) == -(2**63)


def test_check_output_path_never_replaces_or_joins_an_input(tmp_path):
    model = tmp_path / "m.pt"
    model.write_bytes(b"x")
    images = tmp_path / "imgs"
    (images / "sub").mkdir(parents=True)
    with pytest.raises(ValueError, match="is the input"):
        check_output_path("-o", model, inputs=[model])
    (tmp_path / "hard.pt").hardlink_to(model)
    with pytest.raises(ValueError, match="is the input"):
        check_output_path("-o", tmp_path / "hard.pt", inputs=[model])
    (tmp_path / "link.pt").symlink_to(model)
    with pytest.raises(ValueError, match="is the input"):
        check_output_path("-o", tmp_path / "link.pt", inputs=[model])
    for inside in (images / "f.pt", images / "sub" / "new" / "f.pt"):
        with pytest.raises(ValueError, match="inside the input folder"):
            check_output_path("-o", inside, inputs=[images])
    with pytest.raises(ValueError, match="is the input"):
        check_output_path("-o", images, inputs=[images], folder=True)
    with pytest.raises(ValueError, match="holds the input"):
        check_output_path("-o", tmp_path, inputs=[images], folder=True)
    assert check_output_path("-o", tmp_path / "out.pt", inputs=[model, images]) == (
        tmp_path / "out.pt")


def test_check_output_path_refuses_folders_files_and_paths_below_files(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="must be a file path, got the existing folder"):
        check_output_path("--json", tmp_path)
    with pytest.raises(ValueError, match="must be a folder path, got the existing file"):
        check_output_path("-o", tmp_path / "f", folder=True)
    with pytest.raises(ValueError, match="cannot be created: .*/f' is a file"):
        check_output_path("-o", tmp_path / "f" / "deeper" / "x.pt")
    with pytest.raises(TypeError, match="non-empty path"):
        check_output_path("-o", "")


@pytest.mark.parametrize("device", ["gpu", "cuda:99", "cpu:x"])
def test_check_device_names_the_argument(device):
    import torch

    if device == "cuda:99" and torch.cuda.device_count() > 99:  # pragma: no cover
        pytest.skip("a machine with 100 GPUs")
    with pytest.raises(ValueError, match=rf"--device '{device}' cannot be used"):
        check_device("--device", device)
    assert check_device("--device", "cpu").type == "cpu"
