import numpy as np
import pytest
import torch
from PIL import Image

from sureid import (
    NODA,
    DualBatch,
    DualViewDataset,
    RandomPatch,
    dual_collate,
    make_procedural_occluders,
    paper_dual_views,
)


class _Persons(torch.utils.data.Dataset):
    """Items (image (3, 32, 16) uint8, pid, camid): image i is filled with value i."""

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return torch.full((3, 32, 16), 10 * i, dtype=torch.uint8), 100 + i, i % 2


def _neg(x):
    return 255 - x


def _ident(x):
    return x


def test_items_two_views_and_targets():
    ds = DualViewDataset(_Persons(), first=_ident, second=_neg)
    assert len(ds) == 6
    v1, v2, pid, cam = ds[3]
    assert torch.equal(v1, torch.full((3, 32, 16), 30, dtype=torch.uint8))
    assert torch.equal(v2, 255 - v1) and (pid, cam) == (103, 1)


def test_shared_runs_once_and_plain_items():
    calls = []

    def shared(x):
        calls.append(1)
        return x * 2

    ds = DualViewDataset([torch.ones(3, 4, 4)], _ident, _ident, shared=shared)
    v1, v2 = ds[0]
    assert len(calls) == 1 and float(v1.max()) == 2.0 and torch.equal(v1, v2)


def test_collate_through_dataloader_keeps_labels_aligned():
    noda = NODA(make_procedural_occluders(4, seed=0), p=1.0)
    ds = DualViewDataset(_Persons(), first=_ident, second=noda)
    loader = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=dual_collate)
    batches = list(loader)
    assert len(batches) == 2 and all(isinstance(b, DualBatch) for b in batches)
    b = batches[1]
    assert b.first.shape == b.second.shape == (3, 3, 32, 16)
    assert b.labels.tolist() == [103, 104, 105] and b.targets[1].tolist() == [1, 0, 1]
    for i in range(3):  # row i of both halves is item i: view 1 untouched, view 2 occluded
        assert bool((b.first[i] == 10 * (3 + i)).all())
        assert not torch.equal(b.first[i], b.second[i])
        assert (b.second[i] == 10 * (3 + i)).float().mean() > 0.3  # same person underneath
    images, (pids, cams) = b.joint()
    assert images.shape == (6, 3, 32, 16)
    assert torch.equal(images[:3], b.first) and torch.equal(images[3:], b.second)
    assert pids.tolist() == [103, 104, 105] * 2 and cams.tolist() == [1, 0, 1] * 2


def test_collate_errors_and_no_targets():
    with pytest.raises(ValueError, match="empty batch"):
        dual_collate([])
    with pytest.raises(TypeError, match="view2 must be a tensor"):
        dual_collate([(torch.zeros(3, 2, 2), Image.new("RGB", (2, 2)), 1)])
    with pytest.raises(ValueError, match="lengths"):
        dual_collate([(torch.zeros(1),), (torch.zeros(1),)])
    b = dual_collate([(torch.zeros(3, 2, 2), torch.ones(3, 2, 2))])
    assert b.targets == ()
    with pytest.raises(ValueError, match="no targets"):
        _ = b.labels


def test_dataset_argument_checks():
    with pytest.raises(TypeError, match="first"):
        DualViewDataset(_Persons(), first=None, second=_ident)
    with pytest.raises(TypeError, match="map-style"):
        DualViewDataset(iter([1]), _ident, _ident)


def test_paper_dual_views_end_to_end():
    pytest.importorskip("torchvision")
    noda = NODA(make_procedural_occluders(4, seed=0), p=1.0)
    first, second = paper_dual_views(
        noda, size=(64, 32), padding=4, random_patch=RandomPatch(p=1.0, min_sample_size=1)
    )
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 40, 3), np.uint8))
    ds = DualViewDataset([(img, 1), (img, 2)], first, second)
    b = dual_collate([ds[0], ds[1]])
    assert b.first.shape == b.second.shape == (2, 3, 64, 32)
    assert b.first.dtype == b.second.dtype == torch.float32
    assert type(b.first) is torch.Tensor and b.labels.tolist() == [1, 2]
    assert not torch.equal(b.first, b.second)
    with pytest.raises(TypeError, match=r"size must be a pair of ints \(H, W\), got \(64,\)"):
        paper_dual_views(noda, size=(64,))
    with pytest.raises(ValueError, match="size must be positive"):
        paper_dual_views(noda, size=(64, 0))
