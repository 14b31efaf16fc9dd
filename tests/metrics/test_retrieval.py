"""``ranked_lists`` against a plain loop: sort by (distance, gallery index), skip the gallery
items with the query's pid and camera, keep the first ``topk``."""

import numpy as np
import pytest
import torch

from sureid.metrics import pairwise_distance
from sureid.metrics.retrieval import RankedLists, rank_gallery, ranked_lists, rerank


def reference_lists(dist, q_pids, g_pids, q_camids, g_camids, topk):
    """Each query's kept gallery indices, closest first, by a per-query Python loop."""
    lists = []
    for i, row in enumerate(dist):
        order = sorted(range(len(row)), key=lambda j: (row[j], j))  # ties: lower index first
        kept = [j for j in order
                if not (g_pids[j] == q_pids[i] and g_camids[j] == q_camids[i])]
        lists.append(kept[:topk])
    return lists


def squared_euclidean(q, g):
    """``(Q, G)`` nested lists of exact squared distances of integer feature rows."""
    return [[sum((a - b) ** 2 for a, b in zip(x, y, strict=True)) for y in g] for x in q]


# integer rows with integer norms: the kernel's float32 distances (|q|^2 + |g|^2 - 2 q.g,
# norms squared from their square roots) are exact, so ties stay ties
PALETTE = [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, -1), (0, 0, 2), (2, 1, 2), (1, 2, -2),
           (-2, 2, 1), (2, -2, -1)]


def _labelled(seed, nq, ng, pids=4, cams=3):
    """Features drawn from ``PALETTE`` (many ties) and labels."""
    rng = np.random.default_rng(seed)
    q = [PALETTE[i] for i in rng.integers(0, len(PALETTE), nq)]
    g = [PALETTE[i] for i in rng.integers(0, len(PALETTE), ng)]
    labels = [rng.integers(0, n, size).tolist()
              for n, size in ((pids, nq), (pids, ng), (cams, nq), (cams, ng))]
    return q, g, labels


def _check_against(got: RankedLists, dist, labels, topk):
    q_pids, g_pids = labels[0], labels[1]
    want = reference_lists(dist, *labels, topk)
    k = min(topk, len(dist[0]))
    assert got.indices.shape == got.distances.shape == got.matches.shape == (len(dist), k)
    assert got.indices.dtype == np.int64 and got.distances.dtype == np.float32
    for i, kept in enumerate(want):
        n = len(kept)
        assert got.indices[i, :n].tolist() == kept
        assert got.distances[i, :n].tolist() == [np.float32(dist[i][j]) for j in kept]
        assert got.matches[i, :n].tolist() == [g_pids[j] == q_pids[i] for j in kept]
        assert (got.indices[i, n:] == -1).all() and np.isinf(got.distances[i, n:]).all()
        assert not got.matches[i, n:].any()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("topk", [1, 5, 17, 60])
def test_matches_the_loop_with_ties_and_exclusions(seed, topk):
    q, g, labels = _labelled(seed, 15, 40)
    got = ranked_lists(torch.tensor(q, dtype=torch.float32), torch.tensor(g, dtype=torch.float32),
                       topk=topk, q_pids=labels[0], g_pids=labels[1], q_camids=labels[2],
                       g_camids=labels[3])
    _check_against(got, squared_euclidean(q, g), labels, topk)


@pytest.mark.parametrize("metric,rr", [("cosine", False), ("euclidean", True)])
def test_other_distances_follow_the_same_rule(metric, rr):
    q, g, labels = _labelled(5, 9, 30)
    qf = torch.tensor(q, dtype=torch.float32) + 0.5  # no zero row for cosine
    gf = torch.tensor(g, dtype=torch.float32) + 0.5
    dist = (rerank(qf, gf, metric=metric, k1=5, k2=2) if rr
            else pairwise_distance(qf, gf, metric).numpy()).tolist()
    got = ranked_lists(qf, gf, topk=8, q_pids=labels[0], g_pids=labels[1], q_camids=labels[2],
                       g_camids=labels[3], metric=metric, rerank=rr, k1=5, k2=2)
    _check_against(got, dist, labels, 8)


def test_a_query_that_loses_every_item_gets_a_padded_row():
    g = torch.arange(6, dtype=torch.float32)[:, None]
    got = ranked_lists(torch.zeros(2, 1), g, topk=4, q_pids=[1, 2], q_camids=[0, 0],
                       g_pids=[1, 1, 1, 2, 1, 1], g_camids=[0, 0, 0, 0, 0, 0])
    assert got.indices.tolist() == [[3, -1, -1, -1], [0, 1, 2, 4]]
    assert got.distances[0].tolist() == [9.0, np.inf, np.inf, np.inf]
    assert got.matches.tolist() == [[False] * 4, [False] * 4]


def test_without_labels_it_is_rank_gallery():
    qf, gf = torch.randn(5, 8), torch.randn(30, 8)
    got = ranked_lists(qf, gf, topk=7, metric="cosine")
    idx, dist = rank_gallery(qf, gf, topk=7, metric="cosine")
    np.testing.assert_array_equal(got.indices, idx)
    np.testing.assert_array_equal(got.distances, dist)
    assert got.matches is None


def test_inputs_are_not_modified():
    qf, gf = torch.randn(4, 8), torch.randn(20, 8)
    labels = [torch.zeros(4, dtype=torch.long), torch.zeros(20, dtype=torch.long)]
    q0, g0 = qf.clone(), gf.clone()
    ranked_lists(qf, gf, q_pids=labels[0], g_pids=labels[1], q_camids=labels[0],
                 g_camids=labels[1])
    assert torch.equal(qf, q0) and torch.equal(gf, g0)


def test_bad_arguments():
    qf, gf = torch.randn(2, 4), torch.randn(5, 4)
    full = {"q_pids": [0, 1], "g_pids": [0] * 5, "q_camids": [0, 0], "g_camids": [1] * 5}
    with pytest.raises(TypeError, match="give all four or none"):
        ranked_lists(qf, gf, q_pids=[0, 1], g_pids=[0] * 5)
    with pytest.raises(ValueError, match="g_pids has length 4"):
        ranked_lists(qf, gf, **{**full, "g_pids": [0] * 4, "g_camids": [1] * 4})
    with pytest.raises(TypeError, match="q_pids must hold integers"):
        ranked_lists(qf, gf, **{**full, "q_pids": [0.5, 1.0]})
    with pytest.raises(ValueError, match="topk must be >= 1"):
        ranked_lists(qf, gf, topk=0, **full)
    with pytest.raises(TypeError, match="topk must be an int"):
        ranked_lists(qf, gf, topk=True, **full)
