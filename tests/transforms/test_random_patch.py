import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from sureid import RandomPatch, reid_random_erasing
from sureid.transforms.random_patch import RandomPatchParams


def const(v, shape=(3, 48, 24), dtype=torch.uint8):
    return torch.full(shape, v, dtype=dtype)


def test_pool_warms_up_then_pastes_a_rectangle_from_an_earlier_image():
    rp = RandomPatch(p=1.0, min_sample_size=3, hflip=0.0)
    for v in (10, 20):
        x = const(v)
        assert rp(x) is x  # pool not warm yet: identity
    assert len(rp.pool) == 2
    x = const(200)
    before = x.clone()
    out = rp(x)
    assert torch.equal(x, before), "input modified"
    changed = out != 200
    assert changed.any()
    ys, xs = torch.nonzero(changed.any(0), as_tuple=True)
    box = changed.any(0)[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    assert bool(box.all()), "pasted region is not one rectangle"
    assert set(out[changed].unique().tolist()) <= {10, 20, 200}


def test_pool_capacity_and_p_zero():
    rp = RandomPatch(p=0.0, pool_capacity=4, min_sample_size=1)
    for _ in range(10):
        x = torch.rand(3, 32, 16)
        assert rp(x) is x
    assert len(rp.pool) == 4


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA"])
def test_pil_kind_mode_size(mode):
    rp = RandomPatch(p=1.0, min_sample_size=2)
    imgs = [Image.fromarray(np.full((40, 20, 3), v, np.uint8)).convert(mode) for v in (0, 90, 255)]
    before = np.array(imgs[-1])
    outs = [rp(im) for im in imgs]
    out = outs[-1]
    assert isinstance(out, Image.Image) and out.mode == mode and out.size == (20, 40)
    assert np.array_equal(np.array(imgs[-1]), before)
    assert not np.array_equal(np.array(out), before)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_tensor_dtype_and_mixed_pool_dtypes(dtype):
    rp = RandomPatch(p=1.0, min_sample_size=1)
    rp(torch.rand(3, 40, 20))  # float patch into the pool
    rp(torch.randint(0, 256, (3, 40, 20), dtype=torch.uint8))
    out = rp(const(0, (3, 40, 20), dtype))
    assert out.dtype == dtype and out.shape == (3, 40, 20)


def test_seeded_repeat_and_pickle():
    def run(rp, seed):
        torch.manual_seed(seed)
        return [rp(torch.rand(3, 32, 16)) for _ in range(6)]

    rp = RandomPatch(p=1.0, min_sample_size=2)
    clone = pickle.loads(pickle.dumps(rp))
    a, b = run(rp, 7), run(clone, 7)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert len(pickle.loads(pickle.dumps(rp)).pool) == len(rp.pool) == 6


def test_larger_patches_are_cropped_to_fit():
    rp = RandomPatch(p=1.0, min_sample_size=1, area=(0.5, 0.5), ratio=(1.0, 1.0))
    rp(torch.rand(3, 200, 200))
    out = rp(torch.zeros(3, 20, 10))
    assert out.shape == (3, 20, 10)


def test_channel_mismatch_is_not_pasted():
    rp = RandomPatch(p=1.0, min_sample_size=1)
    rp.pool.append(torch.rand(1, 8, 8))  # only a grey patch in the pool
    params = rp.make_params(32, 16)
    params = type(params)(harvest=None, paste=True, pick=0.0, y=0.0, x=0.0, flip=False)
    x = torch.zeros(3, 32, 16)
    assert rp.apply(x, params) is x
    grey = torch.zeros(1, 32, 16)
    assert (rp.apply(grey, params) != 0).any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"p": 2}, "p must"),
        ({"pool_capacity": 0}, "pool_capacity"),
        ({"pool_capacity": 5, "min_sample_size": 6}, "min_sample_size"),
        ({"area": (0.0, 0.5)}, "area"),
        ({"area": (0.3, 1.5)}, "area"),
        ({"ratio": (0.0, 2.0)}, "ratio"),
        ({"hflip": -1}, "hflip"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandomPatch(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"p": "0.5"}, "p must be a real number, got str '0.5'"),
        ({"pool_capacity": 10.0}, "pool_capacity must be an int, got float 10.0"),
        ({"min_sample_size": True}, "min_sample_size must be an int, got bool True"),
        ({"area": 0.5}, "area must be a pair of numbers"),
        ({"hflip": None}, "hflip must be a real number"),
    ],
)
def test_wrong_argument_types(kwargs, match):
    with pytest.raises(TypeError, match=match):
        RandomPatch(**kwargs)


@pytest.mark.parametrize(
    ("image", "exc"),
    [(torch.zeros(2, 3, 8, 8), ValueError), (torch.zeros(3, 8, 8, dtype=torch.int64), TypeError),
     ([1, 2], TypeError), (Image.new("P", (8, 8)), ValueError)],
)
def test_bad_images(image, exc):
    with pytest.raises(exc):
        RandomPatch()(image)


def test_reid_random_erasing_setting():
    pytest.importorskip("torchvision")
    erase = reid_random_erasing(p=1.0)
    assert erase.p == 1.0 and tuple(erase.scale) == (0.02, 0.4) and tuple(erase.ratio) == (0.3, 3.3)
    x = torch.zeros(3, 64, 32)
    assert (erase(x) != 0).any() and not x.any()
    zero = reid_random_erasing(p=1.0, value=0)
    assert not zero(torch.zeros(3, 64, 32)).any()


@pytest.mark.parametrize(
    ("first", "then", "match"),
    [
        (torch.randint(0, 256, (3, 40, 20), dtype=torch.uint8), const(200.0, (3, 40, 20),
         torch.float32), r"RandomPatch: a floating image .*\[200, 200\].*0-255"),
        (torch.full((3, 40, 20), -1.8), const(0, (3, 40, 20)),
         r"floating pool patch \(from an earlier image\) .*normalised"),
    ],
)
def test_rescaling_between_dtypes_needs_unit_floats(first, then, match):
    # issue 16 item 4: a uint8 patch went into 0-255 floats as a [0, 1] patch (near black)
    rp = RandomPatch(p=1.0, min_sample_size=1)
    rp.pool.append(first[:, :10, :10].clone())
    before = then.clone()
    paste_first = RandomPatchParams(harvest=None, paste=True, pick=0.0, y=0.0, x=0.0, flip=False)
    with pytest.raises(ValueError, match=match):
        rp.apply(then, paste_first)
    assert torch.equal(then, before)


def test_same_dtype_patches_are_copied_at_any_scale():
    rp = RandomPatch(p=1.0, min_sample_size=1)
    rp.pool.append(torch.full((3, 10, 10), -1.5))  # normalised images: copying needs no rescale
    params = RandomPatchParams(harvest=None, paste=True, pick=0.0, y=0.0, x=0.0, flip=False)
    out = rp.apply(torch.full((3, 40, 20), 2.0), params)
    assert set(out.unique().tolist()) <= {-1.5, 2.0} and bool((out == -1.5).any())
