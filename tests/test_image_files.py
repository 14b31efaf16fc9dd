"""The one image decoder and file lister every sureid image path shares."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

from sureid._image_files import image_paths, list_images, open_image, to_mode
from sureid.data import ImageDataset, read_market1501
from sureid.data.folder import read_custom
from sureid.hub import DataConfig
from sureid.inference import FeatureExtractor, preprocess
from sureid.transforms import OccluderBank
from sureid.viz_rank import render_ranked_list
from tests.smoke_run import tiny_model

GREY = (np.arange(64 * 32, dtype=np.uint32).reshape(64, 32) * 31).astype(np.uint16)


def _sixteen_bit(path, scale=1.0, fmt=None):
    Image.fromarray((GREY * scale).astype(np.uint16)).save(path, format=fmt)
    return path


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_grey_files_are_scaled_not_white(tmp_path, suffix):
    img = open_image(_sixteen_bit(tmp_path / f"a{suffix}"))
    arr = np.asarray(img)
    assert img.mode == "RGB" and arr.dtype == np.uint8
    np.testing.assert_array_equal(arr[..., 0], (GREY >> 8).astype(np.uint8))
    assert arr.min() == 0 and arr.max() < 255  # convert("RGB") gave 255 almost everywhere


def test_sixteen_bit_in_memory_and_big_endian():
    for mode, dtype in (("I;16", "<u2"), ("I;16B", ">u2")):
        im = Image.frombytes(mode, (32, 64), GREY.astype(dtype).tobytes())
        arr = np.asarray(to_mode(im))
        np.testing.assert_array_equal(arr[..., 1], (GREY >> 8).astype(np.uint8))


@pytest.mark.parametrize("mode", ["I", "F"])
def test_wide_range_modes_are_refused_not_clipped(tmp_path, mode):
    im = Image.fromarray((GREY.astype(np.int32) * 1000).astype(
        np.int32 if mode == "I" else np.float32), mode)
    with pytest.raises(ValueError, match=f"PIL mode '{mode}'.*no fixed range"):
        to_mode(im, what="image 'x'")
    path = tmp_path / "wide.tif"
    im.save(path)
    with pytest.raises(ValueError, match="wide.tif"):
        open_image(path)
    with pytest.raises(OSError, match="wide.tif"):
        ImageDataset([(str(path), 1, 0)])[0]


def test_every_image_path_gives_different_features_for_different_sixteen_bit_images(tmp_path):
    a = _sixteen_bit(tmp_path / "0001_c1_a.png")
    b = _sixteen_bit(tmp_path / "0002_c1_b.png", scale=0.3)
    model = tiny_model(3).eval()
    ext = FeatureExtractor(model)
    f_path = ext([a, b]).features
    assert not torch.allclose(f_path[0], f_path[1])  # both were white before
    f_pil = ext([Image.open(a), Image.open(b)]).features
    torch.testing.assert_close(f_path, f_pil)
    # ImageDataset with the model's transform gives the same inputs as the extractor
    ds = ImageDataset([(str(a), 1, 0), (str(b), 2, 0)],
                      transform=lambda im: preprocess(im, DataConfig((64, 32))))
    torch.testing.assert_close(ext(torch.stack([ds[0][0], ds[1][0]])).features, f_path)
    assert np.asarray(ImageDataset([(str(a), 1, 0)])[0][0]).max() < 255
    # the ranked-list picture shows the image, not a white box
    pic = np.asarray(render_ranked_list(a, [b], size=(64, 32), scale=1))
    assert pic[3:67, 3:35].min() == 0


def test_occluder_bank_uses_the_same_decoder(tmp_path):
    path = _sixteen_bit(tmp_path / "occ.png")
    rgba = OccluderBank([path], max_side=None)[0]
    np.testing.assert_array_equal(rgba[0].numpy(), np.asarray(open_image(path))[..., 0])


def _links(folder):
    folder.mkdir(parents=True, exist_ok=True)
    os.symlink(folder / "missing.jpg", folder / "0003_c1_dangling.jpg")
    os.symlink(folder / "0004_c1_loop.jpg", folder / "0004_c1_loop.jpg")


def test_broken_links_are_named_not_skipped(tmp_path):
    Image.new("RGB", (8, 16)).save(tmp_path / "0001_c1_ok.jpg")
    _links(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"2 image link\(s\).*lead nowhere.*dangling"):
        list_images(tmp_path)
    assert [p.name for p in image_paths(tmp_path, broken="keep")] == [
        "0001_c1_ok.jpg", "0003_c1_dangling.jpg", "0004_c1_loop.jpg"]
    with pytest.raises(FileNotFoundError, match="lead nowhere"):
        FeatureExtractor(tiny_model(3))(tmp_path)


def test_broken_links_in_dataset_folders_are_named(tmp_path):
    for split in ("bounding_box_train", "query", "bounding_box_test"):
        Image.new("RGB", (8, 16)).save(_mk(tmp_path / split) / "0001_c1_ok.jpg")
    _links(tmp_path / "query")
    with pytest.raises(FileNotFoundError, match="query.*lead nowhere"):
        read_market1501(tmp_path)
    custom = tmp_path / "custom"
    for split in ("query", "gallery"):
        Image.new("RGB", (8, 16)).save(_mk(custom / split / "0001") / "0_ok.jpg")
    os.symlink(custom / "nope.jpg", custom / "gallery" / "0001" / "1_dangling.jpg")
    with pytest.raises(FileNotFoundError, match="1_dangling.jpg"):
        read_custom(custom)


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_broken_links_in_occluder_folders_are_not_silent(tmp_path, on_error):
    from sureid.transforms import make_procedural_occluders, save_occluders

    folder = tmp_path / "occ"
    save_occluders(make_procedural_occluders(2), folder)
    os.symlink(tmp_path / "gone.png", folder / "gone.png")
    if on_error == "raise":
        with pytest.raises(ValueError, match="gone.png.*leads nowhere"):
            OccluderBank(folder)
    else:
        with pytest.warns(UserWarning, match="skipped 1 unreadable.*gone.png"):
            assert len(OccluderBank(folder, on_error="skip")) == 2


def _mk(folder):
    folder.mkdir(parents=True, exist_ok=True)
    return folder
