import numpy as np
import pytest
import torch

from sureid.data import RandomIdentitySampler


def make_labels(seed=0, num_ids=30):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 12, num_ids)  # some identities have fewer than K images
    return rng.permutation(np.repeat(np.arange(100, 100 + num_ids), counts)).tolist()


@pytest.mark.parametrize("batch_size, k", [(16, 4), (12, 3), (8, 1)])
def test_batches_are_p_by_k(batch_size, k):
    labels = make_labels()
    s = RandomIdentitySampler(labels, batch_size=batch_size, num_instances=k, seed=1)
    idx = list(s)
    assert len(idx) == len(s) and len(idx) % batch_size == 0
    lab = np.asarray(labels)
    for b in np.asarray(idx).reshape(-1, batch_size):
        groups = lab[b].reshape(-1, k)  # consecutive runs of K share one identity
        assert (groups == groups[:, :1]).all()
        assert len(set(groups[:, 0])) == batch_size // k


def test_exact_len_formula():
    labels = make_labels()
    counts = np.bincount(np.unique(labels, return_inverse=True)[1])
    groups = np.maximum(1, counts // 4).sum()
    for world in (1, 2, 3):
        s = RandomIdentitySampler(labels, 16, 4, rank=0, world_size=world)
        assert len(s) == groups // 4 // world * 16
        for epoch in range(3):
            s.set_epoch(epoch)
            assert len(list(s)) == len(s)


def test_seeded_repeat_and_epochs_differ():
    labels = make_labels()
    a = RandomIdentitySampler(labels, 16, 4, seed=3)
    b = RandomIdentitySampler(labels, 16, 4, seed=3)
    np.random.seed(123)  # global state must not matter
    torch.manual_seed(5)
    assert list(a) == list(b) == list(a)
    a.set_epoch(1)
    assert list(a) != list(b)
    assert list(RandomIdentitySampler(labels, 16, 4, seed=4)) != list(b)


def test_ranks_get_disjoint_batches_covering_the_global_order():
    labels = make_labels(1, num_ids=40)
    world = 3
    ranks = [
        RandomIdentitySampler(labels, 16, 4, seed=0, rank=r, world_size=world)
        for r in range(world)
    ]
    single = RandomIdentitySampler(labels, 16, 4, seed=0, rank=0, world_size=1)
    glob = [b.tolist() for b in single.batches()]
    per_rank = [[b.tolist() for b in s.batches()] for s in ranks]
    assert len({len(p) for p in per_rank}) == 1  # same number of batches everywhere
    for r, batches in enumerate(per_rank):
        assert batches == glob[r::world][: len(batches)]  # global batch i -> rank i % world


def test_dataloader_usage():
    labels = make_labels()
    ds = torch.utils.data.TensorDataset(torch.tensor(labels))
    s = RandomIdentitySampler(labels, 8, 2)
    loader = torch.utils.data.DataLoader(ds, batch_size=s.batch_size, sampler=s)
    batches = [b[0] for b in loader]
    assert len(batches) == len(s) // 8
    assert all(len(b.unique()) == 4 for b in batches)


def test_bad_input():
    labels = make_labels()
    with pytest.raises(ValueError, match="multiple of num_instances=4, got 10"):
        RandomIdentitySampler(labels, 10, 4)
    with pytest.raises(ValueError, match="num_instances must be >= 1"):
        RandomIdentitySampler(labels, 8, 0)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        RandomIdentitySampler(labels, 8.0, 4)
    with pytest.raises(ValueError, match="need at least P .* = 16 identities, labels have 2"):
        RandomIdentitySampler([0, 0, 1, 1], 64, 4)
    with pytest.raises(ValueError, match=r"rank must be in \[0, 2\), got 2"):
        RandomIdentitySampler(labels, 16, 4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="too few images for one batch"):
        RandomIdentitySampler(list(range(8)), 8, 1, rank=0, world_size=2)
    with pytest.raises(TypeError, match="labels must be integers"):
        RandomIdentitySampler([0.5, 1.5], 2, 1)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        RandomIdentitySampler([], 2, 1)
