import pickle

import pytest
import torch
from PIL import Image

from sureid.data import ImageDataset, ImageRecord


@pytest.fixture()
def records(tmp_path):
    recs = []
    for i, mode in enumerate(["RGB", "L", "RGBA"]):
        p = tmp_path / f"{i:04d}_c1_f{i:07d}.png"
        Image.new(mode, (5, 7)).save(p)
        recs.append(ImageRecord(str(p), i, i % 2))
    return recs


def _to_tensor(img):
    data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
    return data.view(img.height, img.width, 3)


def test_reads_rgb_and_labels(records):
    ds = ImageDataset(records)
    assert len(ds) == 3 and ds.pids == [0, 1, 2]
    for i in range(3):
        img, pid, camid = ds[i]
        assert img.mode == "RGB" and img.size == (5, 7)
        assert (pid, camid) == (i, i % 2)
    assert ds.records[1].path == records[1].path


def test_transform_and_dataloader(records):
    ds = ImageDataset([tuple(r) for r in records], transform=_to_tensor)
    img, pid, camid = ds[0]
    assert img.shape == (7, 5, 3)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch[0].shape == (3, 7, 5, 3) and batch[1].tolist() == [0, 1, 2]


def test_pickles(records):
    ds = pickle.loads(pickle.dumps(ImageDataset(records, transform=_to_tensor)))
    assert ds[2][1] == 2


def test_bad_input(records):
    with pytest.raises(TypeError, match="records must be a sequence"):
        ImageDataset("a.jpg")
    with pytest.raises(TypeError, match=r"records\[0\] must be a \(path, pid, camid\) tuple"):
        ImageDataset([("a.jpg", 1)])
    with pytest.raises(TypeError, match="transform must be callable"):
        ImageDataset(records, transform=3)


def test_empty_records_and_non_integer_labels_are_errors(records):
    with pytest.raises(ValueError, match="records is empty"):
        ImageDataset([])
    with pytest.raises(TypeError, match=r"records\[1\]: pid must be an int, got float 1\.7"):
        ImageDataset([records[0], (records[1].path, 1.7, 0)])


def test_unreadable_image_names_the_file(records, tmp_path):
    bad = tmp_path / "0009_c1_f0000009.jpg"
    good = Image.new("RGB", (64, 64))
    good.save(bad)
    bad.write_bytes(bad.read_bytes()[:200])  # truncated JPEG
    ds = ImageDataset([*records, ImageRecord(str(bad), 9, 0)])
    with pytest.raises(OSError, match=r"0009_c1_f0000009\.jpg.*records\[3\]"):
        ds[3]


# ----------------------------------------------------------------------------- issue 26
@pytest.mark.parametrize("pid, err", [
    (2.0**63, TypeError), (3.0, TypeError), (2**63, ValueError), (True, TypeError),
])
def test_labels_must_be_int64_integers(records, pid, err):
    with pytest.raises(err, match=r"records\[0\]: pid must"):
        ImageDataset([(records[0].path, pid, 0)])
    with pytest.raises(err, match=r"records\[0\]: camid must"):
        ImageDataset([(records[0].path, 1, pid)])
