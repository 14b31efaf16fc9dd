"""sureid.train.loaders: the layout of a data folder, the data a run refuses, and no
validation without query and gallery."""

import pytest
import torch
from PIL import Image

from sureid.train import TrainConfig, detect_layout, merge
from sureid.train.loaders import _evaluator, _read_dataset


def test_detect_layout(tmp_path, data):
    assert detect_layout(data) == "occluded_duke"
    market = tmp_path / "market"
    for sub in ("bounding_box_train", "query", "bounding_box_test"):
        (market / sub).mkdir(parents=True)
    (market / "query" / "0002_c1s1_000451_03.jpg").write_bytes(b"")
    assert detect_layout(market) == "market1501"
    custom = tmp_path / "custom"
    (custom / "query").mkdir(parents=True)
    assert detect_layout(custom) == "custom"
    with pytest.raises(FileNotFoundError, match="no known layout"):
        detect_layout(tmp_path)


def _identities(root, counts):
    for who, n in counts.items():
        for i in range(n):
            path = root / who / f"img{i}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 16), (10, 20, 30)).save(path)
    return root


def test_a_training_folder_without_query_and_gallery_has_no_validation(tmp_path):
    root = _identities(tmp_path / "d", {"person_a": 2, "person_b": 2})
    cfg = merge(TrainConfig(), {"data": {"root": str(root)}, "device": "cpu"})
    lines = []
    layout, dataset = _read_dataset(cfg, lines.append)
    assert layout == "custom" and dataset.num_train_pids == 2
    assert lines == [f"data: {dataset} (layout custom)"]
    assert _evaluator(cfg, dataset, None, torch.device("cpu")) is None


@pytest.mark.parametrize("counts, layout, error, match", [
    ({"person_a": 3}, "auto", ValueError, r"has 1 training identities; training needs at least 2"),
    ({"person_a": 2, "person_b": 2}, "nope", ValueError,
     r"data\.layout must be 'auto' or one of \[.*'market1501'.*\], got 'nope'"),
])
def test_data_that_cannot_train_is_refused(tmp_path, counts, layout, error, match):
    root = _identities(tmp_path / "d", counts)
    cfg = merge(TrainConfig(), {"data": {"root": str(root), "layout": layout}})
    with pytest.raises(error, match=match):
        _read_dataset(cfg, print)
    with pytest.raises(FileNotFoundError, match=r"data\.root '.*none' is not a folder"):
        _read_dataset(merge(cfg, {"data": {"root": str(tmp_path / "none")}}), print)
