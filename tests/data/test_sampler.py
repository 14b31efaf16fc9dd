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


def expected_batches(labels, batch_size, k):
    counts = np.bincount(np.unique(labels, return_inverse=True)[1])
    groups = -(-counts // k)  # ceil: short identities are padded, remainders completed
    return max(-(-groups.sum() // (batch_size // k)), groups.max())


def test_exact_len_formula():
    labels = make_labels()
    s = RandomIdentitySampler(labels, 16, 4)
    assert len(s) == expected_batches(labels, 16, 4) * 16
    for epoch in range(3):
        s.set_epoch(epoch)
        assert len(list(s)) == len(s)
    for world in (2, 3):
        ranks = [RandomIdentitySampler(labels, 16, 4, rank=r, world_size=world)
                 for r in range(world)]
        for epoch in range(3):
            for r in ranks:
                r.set_epoch(epoch)
            lens = {len(r) for r in ranks} | {len(list(r)) for r in ranks}
            assert len(lens) == 1  # every rank yields exactly len(sampler), the same number


@pytest.mark.parametrize(
    "num_ids, per_id, p, k",
    [(20, 8, 16, 4), (50, (4, 13), 16, 4), (30, (1, 12), 4, 4), (12, 5, 3, 2), (64, (6, 30), 8, 4)],
)
def test_every_image_is_drawn_each_epoch(num_ids, per_id, p, k):
    rng = np.random.default_rng(num_ids)
    counts = np.full(num_ids, per_id) if isinstance(per_id, int) else rng.integers(*per_id, num_ids)
    labels = rng.permutation(np.repeat(np.arange(num_ids), counts)).tolist()
    s = RandomIdentitySampler(labels, p * k, k, seed=2)
    for epoch in range(2):
        s.set_epoch(epoch)
        idx = list(s)
        assert set(idx) == set(range(len(labels)))  # coverage 100 %, short identities included
        assert len(idx) == len(s) == expected_batches(labels, p * k, k) * p * k


def test_short_identities_are_padded_to_k():
    labels = [0] * 9 + [1] * 2 + [2] * 1 + [3] * 5
    s = RandomIdentitySampler(labels, 8, 4, seed=0)
    lab = np.asarray(labels)
    for b in s.batches():
        groups = lab[b].reshape(-1, 4)
        assert (groups == groups[:, :1]).all()
    assert set(s) == set(range(len(labels)))


def test_ranks_get_disjoint_identities():
    labels = make_labels(1, num_ids=40)
    lab = np.asarray(labels)
    for world in (2, 3):
        ranks = [RandomIdentitySampler(labels, 16, 4, seed=0, rank=r, world_size=world)
                 for r in range(world)]
        for epoch in range(2):
            for r in ranks:
                r.set_epoch(epoch)
            ids = [set(lab[list(r)].tolist()) for r in ranks]
            assert sum(map(len, ids)) == len(set().union(*ids)) == 40  # disjoint, all covered
            seen = set().union(*(set(r) for r in ranks))
            assert seen == set(range(len(labels)))


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
    with pytest.raises(ValueError, match="need at least P .* = 16 identities .* labels have 2"):
        RandomIdentitySampler([0, 0, 1, 1], 64, 4)
    with pytest.raises(ValueError, match=r"rank must be in \[0, 1\], got 2"):
        RandomIdentitySampler(labels, 16, 4, rank=2, world_size=2)
    with pytest.raises(ValueError, match=r"need at least P \* world_size = 8 \* 2 = 16"):
        RandomIdentitySampler(list(range(8)), 8, 1, rank=0, world_size=2)
    with pytest.raises(TypeError, match="labels must be integers"):
        RandomIdentitySampler([0.5, 1.5], 2, 1)
    with pytest.raises(TypeError, match="rank must be an int, got float 0.5"):
        RandomIdentitySampler(labels, 16, 4, rank=0.5, world_size=2)
    with pytest.raises(TypeError, match="world_size must be an int, got float 2.0"):
        RandomIdentitySampler(labels, 16, 4, rank=0, world_size=2.0)
    assert RandomIdentitySampler(labels, 16, 4, rank=np.int64(1), world_size=np.int64(2)).rank == 1
    with pytest.raises(ValueError, match="non-empty 1-D"):
        RandomIdentitySampler([], 2, 1)


# ----------------------------------------------------------------------------- issue 26
@pytest.mark.parametrize("seed", [-1, -(2**31)])
def test_negative_seed_is_refused_at_construction(seed):
    # it was accepted and failed only when the first epoch was drawn
    with pytest.raises(ValueError, match="seed must be >= 0"):
        RandomIdentitySampler(make_labels(), batch_size=8, num_instances=2, seed=seed)


@pytest.mark.parametrize("epoch, err", [
    ("3", TypeError), (1.7, TypeError), (True, TypeError), (-1, ValueError),
])
def test_set_epoch_takes_an_int(epoch, err):
    s = RandomIdentitySampler(make_labels(), batch_size=8, num_instances=2)
    with pytest.raises(err, match="epoch"):
        s.set_epoch(epoch)
    assert s.epoch == 0
    s.set_epoch(np.int64(3))
    assert s.epoch == 3 and type(s.epoch) is int


@pytest.mark.parametrize("labels, err", [
    ([2**63, 2**63 + 1, 5, 6], ValueError),        # numpy: uint64 or floats
    ([-1, 2**63, 5, 6], ValueError),               # numpy: float64, ids collapse
    ([2**64, 1, 5, 6], ValueError),                # numpy: object
])
def test_labels_beyond_int64_or_float_are_refused(labels, err):
    with pytest.raises(err, match="labels"):
        RandomIdentitySampler(labels, batch_size=2, num_instances=1)

