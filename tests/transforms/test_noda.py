import math
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from sureid import NODA, OccluderBank, make_procedural_occluders
from sureid.transforms import NODAParams

from .conftest import solid_occluder


def band_of(mask: torch.Tensor):
    """Classify a changed-pixel mask (H, W) as exactly one edge band; return (placement, size)."""
    H, W = mask.shape
    cols, rows = mask.any(0), mask.any(1)
    if bool(mask[:, cols].all()) and int(cols.sum()) < W:  # full-height columns: vertical
        idx = torch.nonzero(cols).flatten()
        assert idx.max() - idx.min() + 1 == len(idx), "band is not contiguous"
        assert idx.min() == 0 or idx.max() == W - 1, "vertical band does not touch an edge"
        return ("left" if idx.min() == 0 else "right"), len(idx)
    idx = torch.nonzero(rows).flatten()
    assert bool(mask[rows].all()), "changed region is not a full-width band"
    assert idx.max() - idx.min() + 1 == len(idx), "band is not contiguous"
    assert idx.min() == 0 or idx.max() == H - 1, "horizontal band does not touch an edge"
    return ("top" if idx.min() == 0 else "bottom"), len(idx)


@pytest.mark.parametrize("hw", [(96, 48), (100, 37), (256, 128)])
def test_opaque_band_geometry_and_all_placements(tall_and_wide, hw):
    H, W = hw
    noda = NODA(tall_and_wide, p=1.0, jitter=(0, 0, 0))
    img = torch.zeros(3, H, W, dtype=torch.uint8)
    seen = set()
    for _ in range(60):
        params = noda.make_params()
        out = noda.apply(img, params)
        where, size = band_of((out != 0).any(0))
        vertical = params.index == 0  # the tall occluder
        assert (where in ("left", "right")) == vertical
        assert noda.layout(params, H, W)[0] == where
        n = W if vertical else H
        assert math.floor(n / 3) <= size <= math.ceil(n / 2), (where, size, n)
        seen.add(where)
    assert seen == {"left", "right", "top", "bottom"}


def test_call_equals_make_params_then_apply(person_tensor):
    noda = NODA(make_procedural_occluders(6, seed=0), p=0.7)
    torch.manual_seed(3)
    a = [noda(person_tensor) for _ in range(5)]
    torch.manual_seed(3)
    b = [noda.apply(person_tensor, noda.make_params()) for _ in range(5)]
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA"])
def test_pil_round_trip_keeps_mode_and_size(mode, person_tensor):
    img = Image.fromarray(person_tensor.permute(1, 2, 0).numpy()).convert(mode)
    before = np.array(img)
    noda = NODA(make_procedural_occluders(4, seed=0), p=1.0)
    out = noda(img)
    assert isinstance(out, Image.Image) and out is not img
    assert out.mode == mode and out.size == img.size
    assert np.array_equal(np.array(img), before), "input modified"
    assert not np.array_equal(np.array(out), before), "nothing pasted with p=1"


def test_rgba_base_alpha_becomes_opaque_under_occluder(tall_and_wide):
    img = Image.new("RGBA", (32, 64), (10, 20, 30, 0))  # fully transparent base
    out = np.array(NODA(tall_and_wide, p=1.0, jitter=(0, 0, 0))(img))
    alpha = torch.from_numpy(out[..., 3])
    assert alpha.max() == 255 and alpha.min() == 0
    where, _ = band_of(alpha > 0)  # the occluder made exactly its band visible
    assert where in {"left", "right", "top", "bottom"}


@pytest.mark.parametrize(
    "dtype", [torch.uint8, torch.float32, torch.float64, torch.float16, torch.bfloat16]
)
@pytest.mark.parametrize("shape", [(3, 40, 24), (1, 40, 24), (2, 3, 40, 24)])
def test_tensor_round_trip_keeps_dtype_shape_and_input(dtype, shape):
    x = torch.randint(0, 256, shape, dtype=torch.uint8)
    x = x if dtype == torch.uint8 else (x.float() / 255).to(dtype)
    before = x.clone()
    out = NODA(make_procedural_occluders(4, seed=0), p=1.0)(x)
    assert type(out) is torch.Tensor and out.dtype == dtype and out.shape == x.shape
    assert torch.equal(x, before), "input modified"
    assert not torch.equal(out, x)
    if dtype != torch.uint8:
        assert float(out.min()) >= 0 and float(out.max()) <= 1
    if len(shape) == 4:  # batch: one occluder for all, so the changed masks agree
        m = (out != x).any(-3)
        assert torch.equal(m[0] | m[1], (out != x).any(-3).any(0))


def test_seeded_repeat_and_variation(person_tensor):
    noda = NODA(make_procedural_occluders(8, seed=0), p=1.0)
    torch.manual_seed(11)
    a = noda(person_tensor)
    torch.manual_seed(11)
    b = noda(person_tensor)
    assert torch.equal(a, b)
    others = [noda(person_tensor) for _ in range(4)]
    assert any(not torch.equal(a, o) for o in others)


def test_pickle_round_trip_gives_same_results(person_tensor):
    noda = NODA(make_procedural_occluders(5, seed=2), p=0.8, scale=(0.25, 0.4))
    clone = pickle.loads(pickle.dumps(noda))
    assert repr(clone) == repr(noda) and len(clone.bank) == 5
    torch.manual_seed(4)
    a = [noda(person_tensor) for _ in range(4)]
    torch.manual_seed(4)
    b = [clone(person_tensor) for _ in range(4)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_p_zero_is_identity(person_tensor):
    noda = NODA(make_procedural_occluders(3, seed=0), p=0.0)
    img = Image.fromarray(person_tensor.permute(1, 2, 0).numpy())
    for _ in range(10):
        assert noda(person_tensor) is person_tensor
        assert noda(img) is img
    assert noda.make_params() is None


def test_p_is_a_probability(person_tensor):
    noda = NODA(make_procedural_occluders(3, seed=0), p=0.5)
    changed = sum(not torch.equal(noda(person_tensor), person_tensor) for _ in range(200))
    assert 70 < changed < 130


def test_transparent_pixels_unchanged(person_tensor):
    invisible = solid_occluder(20, 120, alpha=0)
    noda = NODA([invisible, solid_occluder(120, 20, alpha=0)], p=1.0)
    for x in (person_tensor, person_tensor.float() / 255):
        for _ in range(10):
            assert torch.equal(noda(x), x)


def test_rgba_alpha_respected_in_band():
    a = torch.zeros(20, 120, dtype=torch.uint8)
    a[:, :60] = 255  # left half opaque, right half transparent
    occ = solid_occluder(20, 120, alpha=a)
    noda = NODA([occ], p=1.0, jitter=(0, 0, 0), crop=(1.0, 1.0), hflip=0.0)
    H, W = 60, 40
    img = torch.zeros(3, H, W, dtype=torch.uint8)
    for _ in range(10):
        params = noda.make_params()
        where, top, left, bh, bw = noda.layout(params, H, W)
        assert where in ("top", "bottom")
        changed = (noda.apply(img, params) != 0).any(0)
        band = changed[top : top + bh]
        assert changed.sum() == band.sum(), "pixels outside the band changed"
        assert band[:, : int(0.4 * W)].all()
        assert not band[:, int(0.6 * W) :].any(), "transparent occluder pixels changed the image"


def test_partial_alpha_blends_between_image_and_occluder():
    occ = solid_occluder(20, 120, value=(200, 200, 200), alpha=128)
    noda = NODA([occ], p=1.0, jitter=(0, 0, 0))
    out = noda(torch.zeros(3, 30, 20, dtype=torch.uint8))
    vals = out[out != 0]
    assert vals.numel() > 0 and bool(((vals >= 99) & (vals <= 102)).all())


def test_grey_tensor_gets_luma():
    noda = NODA([solid_occluder(20, 120, value=(255, 0, 0))], p=1.0, jitter=(0, 0, 0))
    out = noda(torch.zeros(1, 30, 20))
    assert abs(float(out.max()) - 0.299) < 1e-3


def test_torchvision_compose_v1_and_v2(person_tensor):
    T = pytest.importorskip("torchvision.transforms")
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    noda = NODA(make_procedural_occluders(4, seed=0), p=1.0)
    img = Image.fromarray(person_tensor.permute(1, 2, 0).numpy())
    out = T.Compose([T.Resize((32, 16)), noda, T.ToTensor()])(img)
    assert out.shape == (3, 32, 16) and out.dtype == torch.float32

    pipe = v2.Compose([v2.ToImage(), noda, v2.ToDtype(torch.float32, scale=True)])
    out = pipe(img)
    assert isinstance(out, tv_tensors.Image) and out.shape == (3, 64, 32)
    ref = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])(img)
    assert not torch.equal(out.as_subclass(torch.Tensor), ref.as_subclass(torch.Tensor))
    # a tv_tensors.Image passed directly keeps its type
    assert isinstance(noda(tv_tensors.Image(person_tensor)), tv_tensors.Image)


class _Zeros(torch.utils.data.Dataset):
    def __init__(self, transform):
        self.transform = transform

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return self.transform(torch.zeros(3, 32, 16, dtype=torch.uint8)), i


def test_dataloader_with_two_workers(tall_and_wide):
    noda = NODA(tall_and_wide, p=1.0, jitter=(0, 0, 0))
    loader = torch.utils.data.DataLoader(_Zeros(noda), batch_size=2, num_workers=2)
    images, idx = zip(*loader, strict=True)
    images = torch.cat(images)
    assert images.shape == (8, 3, 32, 16) and torch.cat(idx).tolist() == list(range(8))
    masks = (images != 0).any(1)
    for m in masks:
        band_of(m)  # every item got exactly one edge band
    # workers draw from their own seeds: not all outputs are the same
    assert len({m.numpy().tobytes() for m in masks}) > 1


def test_repr_and_layout_types(tall_and_wide):
    noda = NODA(tall_and_wide, p=1.0)
    assert "NODA(occluders=2, p=1.0" in repr(noda)
    params = noda.make_params()
    assert isinstance(params, NODAParams)


def test_shares_a_bank(tall_and_wide):
    bank = OccluderBank(tall_and_wide)
    assert NODA(bank).bank is bank


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scale": (0.0, 0.5)}, "scale"),
        ({"scale": (0.5, 1.2)}, "scale"),
        ({"scale": (0.6, 0.4)}, "scale"),
        ({"scale": (-0.1, 0.2)}, "scale"),
        ({"p": 1.5}, "p must"),
        ({"p": -0.1}, "p must"),
        ({"jitter": (0.1, -0.1, 0.1)}, "jitter"),
        ({"jitter": (0.0, float("inf"), 0.0)}, "jitter"),  # would paste NaN pixels
        ({"vertical_aspect": float("inf")}, "vertical_aspect"),
        ({"crop": (0.0, 1.0)}, "crop"),
        ({"vertical_aspect": 0}, "vertical_aspect"),
        ({"hflip": 2.0}, "hflip"),
    ],
)
def test_bad_arguments(tall_and_wide, kwargs, match):
    with pytest.raises(ValueError, match=match):
        NODA(tall_and_wide, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scale": 0.5}, r"scale must be a pair of numbers \(min, max\), got 0.5"),
        ({"scale": ("a", "b")}, "scale must be a pair of numbers"),
        ({"crop": (True, 1.0)}, "crop must be a pair of numbers"),
        ({"p": "0.5"}, "p must be a real number, got str '0.5'"),
        ({"vertical_aspect": None}, "vertical_aspect must be a real number"),
        ({"jitter": 0.2}, r"jitter must be \(brightness, contrast, saturation\)"),
        ({"jitter": (0.1, 0.1)}, r"jitter must be \(brightness, contrast, saturation\)"),
        ({"jitter": (0.1, "a", 0.1)}, r"jitter\[1\] must be a real number"),
        ({"hflip": True}, "hflip must be a real number, got bool True"),
    ],
)
def test_wrong_argument_types(tall_and_wide, kwargs, match):
    with pytest.raises(TypeError, match=match):
        NODA(tall_and_wide, **kwargs)


def test_ranges_and_jitter_accept_any_sequence_of_numbers(tall_and_wide):
    noda = NODA(tall_and_wide, scale=np.array([0.3, 0.4]), jitter=[0, 0.5, 0.25])
    assert noda.scale == (0.3, 0.4) and noda.jitter == (0.0, 0.5, 0.25)


def test_scale_one_is_allowed(tall_and_wide):
    out = NODA(tall_and_wide, p=1.0, scale=(1.0, 1.0), jitter=(0, 0, 0))(
        torch.zeros(3, 20, 10, dtype=torch.uint8)
    )
    assert bool((out == 255).all())  # the band is the whole image


@pytest.mark.parametrize("mode", ["P", "1", "CMYK", "I;16", "F", "YCbCr"])
def test_odd_pil_modes_give_clear_error(tall_and_wide, mode):
    img = Image.new("RGB", (16, 32)).convert(mode) if mode != "I;16" else Image.new(mode, (16, 32))
    with pytest.raises(ValueError, match=rf"unsupported PIL image mode '{mode}'.*convert"):
        NODA(tall_and_wide, p=1.0)(img)


@pytest.mark.parametrize(
    ("image", "exc", "match"),
    [
        (torch.zeros(4, 8, 8), ValueError, "C in"),
        (torch.zeros(8, 8), ValueError, r"\(\.\.\., C, H, W\)"),
        (torch.zeros(3, 0, 8), ValueError, "H, W > 0"),
        (torch.zeros(3, 8, 8, dtype=torch.int32), TypeError, "int32"),
        (np.zeros((8, 8, 3), np.uint8), TypeError, "ndarray"),
    ],
)
def test_bad_images(tall_and_wide, image, exc, match):
    with pytest.raises(exc, match=match):
        NODA(tall_and_wide, p=1.0)(image)


@settings(max_examples=25, deadline=None)
@given(
    H=st.integers(3, 90),
    W=st.integers(3, 60),
    lo=st.floats(0.05, 1.0),
    width=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_band_geometry_property(H, W, lo, width, seed):
    hi = lo + (1 - lo) * width
    occ = [solid_occluder(120, 20), solid_occluder(20, 120)]
    noda = NODA(occ, p=1.0, scale=(lo, hi), jitter=(0, 0, 0))
    torch.manual_seed(seed)
    params = noda.make_params()
    out = noda.apply(torch.zeros(3, H, W, dtype=torch.uint8), params)
    mask = (out != 0).any(0)
    where, top, left, bh, bw = noda.layout(params, H, W)
    assert int(mask.sum()) == bh * bw and bool(mask[top : top + bh, left : left + bw].all())
    n, size = (W, bw) if where in ("left", "right") else (H, bh)
    assert (bh == H) if where in ("left", "right") else (bw == W)
    assert max(1, math.floor(lo * n)) <= size <= math.ceil(hi * n)


# --- issue 16 item 4: float tensors on another scale are refused, not blended wrongly ----------
@pytest.mark.parametrize(
    ("image", "match"),
    [
        (torch.full((3, 32, 16), 200.0), r"\[200, 200\].*0-255 image"),  # 0-255 floats
        (torch.linspace(-2.1, 2.6, 3 * 32 * 16).view(3, 32, 16), r"\[-2\.1, 2\.6\].*normalised"),
        (torch.full((3, 32, 16), -0.5), r"normalised"),  # a dark normalised image
        (torch.tensor(float("nan")).expand(3, 32, 16), r"NaN"),
        (torch.full((2, 3, 32, 16), 255.0, dtype=torch.float16), r"float16 values in \[255, 255\]"),
    ],
)
@pytest.mark.parametrize("p", [1.0, 0.0])
def test_float_tensor_outside_unit_range_is_refused(tall_and_wide, image, match, p):
    before = image.clone()
    noda = NODA(tall_and_wide, p=p)
    with pytest.raises(ValueError, match=rf"floating image must hold values in \[0, 1\].*{match}"):
        noda(image)  # checked whether or not this call occludes
    with pytest.raises(ValueError, match="must hold values in"):
        noda.apply(image, NODA(tall_and_wide, p=1.0).make_params())
    assert torch.equal(image, before) or bool(image.isnan().all())


def test_float_tensor_in_unit_range_with_resampling_overshoot_is_accepted(tall_and_wide):
    x = torch.rand(3, 32, 16) * 1.1 - 0.05  # bicubic resizing rings a few hundredths out
    out = NODA(tall_and_wide, p=1.0, jitter=(0, 0, 0))(x)
    assert out.shape == x.shape and bool((out == 1).any())  # the white occluder is at scale 1


def test_same_band_on_uint8_and_unit_float():
    # the reproducer pasted a [0, 1] occluder into 0-255 floats; at the right scale the two agree
    occ = [solid_occluder(120, 20, value=(200, 100, 50)), solid_occluder(20, 120)]
    noda = NODA(occ, p=1.0, jitter=(0, 0, 0))
    x = torch.randint(0, 256, (3, 40, 24), dtype=torch.uint8)
    params = noda.make_params()
    a = noda.apply(x, params)
    b = noda.apply(x.float() / 255, params)
    assert torch.allclose(a.float() / 255, b, atol=1 / 255)


# --- issue 13 item 4: vertical / horizontal is decided on the uncropped occluder ---------------
def test_vertical_decided_on_uncropped_aspect():
    pole = solid_occluder(110, 50)  # aspect 2.2 > 2: vertical, however it is cropped
    wide = solid_occluder(90, 50)  # aspect 1.8: horizontal, even when cropped to look tall
    for occ, sides in ((pole, {"left", "right"}), (wide, {"top", "bottom"})):
        noda = NODA([occ], p=1.0, crop=(0.5, 1.0), jitter=(0, 0, 0))
        cropped_other_way = 0
        for _ in range(40):
            params = noda.make_params()
            _, _, ch, cw = params.crop
            cropped_other_way += (ch / cw > 2) != (occ.height / occ.width > 2)
            out = noda.apply(torch.zeros(3, 64, 32, dtype=torch.uint8), params)
            where, _ = band_of((out != 0).any(0))
            assert where in sides and noda.layout(params, 64, 32)[0] == where
        assert cropped_other_way > 5  # the crop alone would have flipped these


def test_sixteen_bit_png_occluder_is_not_white(tmp_path):
    grey = np.full((40, 120), 30000, np.uint16)  # mid grey in 16 bits (117 in 8 bits)
    Image.fromarray(grey).save(tmp_path / "fence16.png")
    noda = NODA(tmp_path, p=1.0, jitter=(0, 0, 0))
    out = noda(torch.zeros(3, 30, 20, dtype=torch.uint8))
    assert set(out.unique().tolist()) == {0, 117}
