import numpy as np
import pytest
import torch
from PIL import Image

import sureid
from sureid.hub import DataConfig
from sureid.inference import FeatureExtractor, list_images, preprocess
from tests.smoke_run import tiny_model


@pytest.fixture
def model():
    return tiny_model(5).eval()


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        p = tmp_path / "imgs" / f"{i % 2}" / f"{i}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (100, 50, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return sorted(paths)


def test_preprocess_matches_torchvision():
    v2 = pytest.importorskip("torchvision.transforms.v2")
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (128, 64, 3), dtype=np.uint8))
    cfg = DataConfig((64, 32), mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.25))
    tf = v2.Compose([v2.ToImage(), v2.Resize([64, 32], antialias=True),
                     v2.ToDtype(torch.float32, scale=True), v2.Normalize(cfg.mean, cfg.std)])
    torch.testing.assert_close(preprocess(img, cfg), tf(img), rtol=0, atol=1e-6)


def test_all_input_kinds_give_the_same_features(model, images):
    ext = FeatureExtractor(model, batch_size=2)
    by_folder = ext(images[0].parent.parent)
    assert by_folder.paths == [str(p) for p in images]
    by_paths = ext(images)
    pil = [Image.open(p).convert("RGB") for p in images]
    by_pil = ext(pil)
    uint8 = torch.stack([torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1) for im in pil])
    by_tensor = ext(uint8)
    ready = torch.stack([ext.transform(im) for im in pil])
    with torch.no_grad():
        direct = model(ready)
    for out in (by_paths, by_pil, by_tensor):
        torch.testing.assert_close(out.features, by_folder.features, rtol=0, atol=1e-6)
    torch.testing.assert_close(ext(ready).features, direct, rtol=0, atol=1e-6)
    assert ext(images[0]).features.shape == (1, 32)
    assert by_folder.kept is None


def test_flip_and_kept_indices(model, images):
    ext = FeatureExtractor(model, flip=True, kept_indices=True)
    out = ext(images)
    plain = FeatureExtractor(model)(images).features
    x = torch.stack([ext.transform(Image.open(p).convert("RGB")) for p in images])
    with torch.no_grad():
        mirrored = model(x.flip(-1))
    torch.testing.assert_close(out.features, (plain + mirrored) / 2, rtol=0, atol=1e-6)
    hts = model.backbone
    assert [k.shape for k in out.kept] == [(5, 22), (5, 15)]  # 32 patches at 0.7, 0.49
    with torch.no_grad():
        _, want = hts.forward_features(x, return_indices=True)
    assert all(torch.equal(a, b) for a, b in zip(out.kept, want, strict=True))
    hts.prune = False
    assert FeatureExtractor(model, kept_indices=True)(images).kept is None


def test_mode_and_inputs_untouched(model, images):
    model.train()
    x = torch.randint(0, 256, (2, 3, 64, 32), dtype=torch.uint8)
    x0 = x.clone()
    FeatureExtractor(model)(x)
    assert model.training and torch.equal(x, x0)


def test_any_module_and_plain_hts(images):
    vit = sureid.VisionTransformer(img_size=(64, 32), patch_size=8, embed_dim=16, depth=1,
                                   num_heads=1)
    out = FeatureExtractor(vit)(images)
    assert out.features.shape == (5, 16)


def test_errors(model, tmp_path, images):
    ext = FeatureExtractor(model)
    with pytest.raises(FileNotFoundError, match="no such image or folder"):
        ext(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        ext(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="image not found"):
        ext([images[0], tmp_path / "x.jpg"])
    with pytest.raises(TypeError, match="only paths or only PIL"):
        ext([images[0], Image.new("RGB", (4, 4))])
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        ext(torch.zeros(2, 1, 64, 32))
    with pytest.raises(ValueError, match="images must be"):
        ext(torch.zeros(2, 3, 30, 30))  # float input of the wrong size
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="cannot read image"):
        ext([bad])
    with pytest.raises(ValueError, match="batch_size"):
        FeatureExtractor(model, batch_size=0)
    with pytest.raises(FileNotFoundError):
        list_images(tmp_path / "missing")


# ----------------------------------------------------------------------------- issue 26
@pytest.mark.parametrize("name", ["flip", "kept_indices", "progress"])
@pytest.mark.parametrize("value", ["no", 1, 0, None])
def test_bool_options_refuse_truthy_values(model, name, value):
    # flip="no" used to switch flip averaging on
    with pytest.raises(TypeError, match=f"{name} must be a bool, got {value!r}"):
        FeatureExtractor(model, **{name: value})


@pytest.mark.parametrize("device", ["gpu", "cuda:99", "cpu:x"])
def test_bad_device_is_a_value_error_naming_it(model, device):
    if device == "cuda:99" and torch.cuda.device_count() > 99:  # pragma: no cover
        pytest.skip("a machine with 100 GPUs")
    with pytest.raises(ValueError, match=f"device '{device}' cannot be used"):
        FeatureExtractor(model, device=device)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_model_input_is_refused(model, value):
    x = torch.zeros(2, 3, 64, 32)
    x[1, 0, 3, 4] = value
    with pytest.raises(ValueError, match=r"finite, got 1 NaN or infinite value"):
        FeatureExtractor(model)(x)
