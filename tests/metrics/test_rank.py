import numpy as np
import pytest
import torch

from sureid.metrics import RankResult, _kernels, evaluate_rank
from sureid.metrics import rank as rank_mod

from .reference import reference_eval

STRATEGIES = ["auto", "count", "sort"]


def assert_same(result: RankResult, ref, max_rank):
    cmc, m_ap, m_inp, n_valid, per_q = ref
    # the reference pads to max_rank; ours stops at the gallery size, where it has reached 1
    n = len(result.cmc)
    assert 1 <= n <= max_rank
    if n < max_rank:
        np.testing.assert_array_equal(cmc[n - 1 :], 1.0)
    np.testing.assert_allclose(result.cmc, cmc[:n], rtol=0, atol=1e-12)
    assert result.mAP == pytest.approx(m_ap, abs=1e-12)
    assert result.mINP == pytest.approx(m_inp, abs=1e-12)
    assert result.num_valid_queries == n_valid
    assert result.num_skipped == len(per_q) - n_valid
    np.testing.assert_allclose(result.ap, per_q, rtol=0, atol=1e-12)  # NaN where skipped


def random_case(rng, nq, ng, num_ids, num_cams, dtype=np.float64, integer=False):
    qp = rng.integers(0, num_ids, nq)
    gp = rng.integers(0, num_ids, ng)
    qc = rng.integers(0, num_cams, nq)
    gc = rng.integers(0, num_cams, ng)
    d = rng.integers(0, 4, (nq, ng)) if integer else rng.random((nq, ng))
    return d.astype(dtype), qp, gp, qc, gc


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("seed", range(6))
def test_equals_reference_random(strategy, seed):
    rng = np.random.default_rng(seed)
    nq, ng = int(rng.integers(5, 40)), int(rng.integers(20, 200))
    d, qp, gp, qc, gc = random_case(rng, nq, ng, num_ids=8, num_cams=3, dtype=np.float32)
    assert_same(evaluate_rank(d, qp, gp, qc, gc, 20, strategy=strategy),
                reference_eval(d, qp, gp, qc, gc, 20), 20)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_ties_broken_by_gallery_index(strategy):
    rng = np.random.default_rng(0)
    d, qp, gp, qc, gc = random_case(rng, 30, 120, 6, 3, dtype=np.float32, integer=True)
    assert_same(evaluate_rank(d, qp, gp, qc, gc, 10, strategy=strategy),
                reference_eval(d, qp, gp, qc, gc, 10), 10)


def test_tie_order_explicit():
    # all distances equal: the match at gallery index 2 sits at rank 3 (indices 0, 1 first)
    d = np.zeros((1, 4), dtype=np.float32)
    r = evaluate_rank(d, [7], [1, 2, 7, 3], [0], [1, 1, 1, 1], max_rank=4)
    np.testing.assert_array_equal(r.cmc, [0, 0, 1, 1])
    assert r.mAP == pytest.approx(1 / 3) and r.mINP == pytest.approx(1 / 3)
    # -0.0 ties with +0.0, so index order decides again
    d = np.array([[0.0, -0.0]], dtype=np.float32)
    r = evaluate_rank(d, [1], [2, 1], [0], [1, 1], max_rank=2)
    assert r.rank1 == 0.0


def test_float64_not_float32_exact_uses_sort_and_matches():
    rng = np.random.default_rng(3)
    d, qp, gp, qc, gc = random_case(rng, 20, 90, 5, 2)
    d[:, :10] = 0.5 + 1e-12 * np.arange(10)  # distinct in float64, equal in float32
    assert_same(evaluate_rank(d, qp, gp, qc, gc, 15), reference_eval(d, qp, gp, qc, gc, 15), 15)
    with pytest.raises(ValueError, match="float32-representable"):
        evaluate_rank(d, qp, gp, qc, gc, strategy="count")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_edge_cases(strategy):
    rng = np.random.default_rng(5)
    # queries without a match (pid absent or only same-camera), distractors pid 0, junk -1
    qp = np.array([1, 2, 3, 4, 5, 99])
    qc = np.array([0, 1, 0, 1, 0, 0])
    gp = np.array([0, 0, 1, 1, 2, 3, 3, -1, 4, 0, 5, 5])
    gc = np.array([0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0])
    d = rng.random((6, 12)).astype(np.float32)
    # pid 2's only image is in the query's camera; pid 3's too; 99 is absent
    r = evaluate_rank(d, qp, gp, qc, gc, 20, strategy=strategy)  # max_rank > gallery size
    assert_same(r, reference_eval(d, qp, gp, qc, gc, 20), 20)
    assert r.cmc.shape == (12,)
    assert r.num_skipped == 3 and np.isnan(r.ap[[1, 2, 5]]).all()
    assert r.cmc[-1] == 1.0


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_single_camera_and_short_gallery(strategy):
    rng = np.random.default_rng(7)
    d = rng.random((4, 3)).astype(np.float32)
    qp, gp = np.array([1, 2, 1, 3]), np.array([1, 2, 3])
    qc, gc = np.array([0, 0, 0, 1]), np.array([1, 1, 1])
    r = evaluate_rank(d, qp, gp, qc, gc, 5, strategy=strategy)
    assert_same(r, reference_eval(d, qp, gp, qc, gc, 5), 5)


def test_many_matches_per_query_takes_sort_path(monkeypatch):
    rng = np.random.default_rng(2)
    d, qp, gp, qc, gc = random_case(rng, 10, 300, 2, 4, dtype=np.float32)
    ref = reference_eval(d, qp, gp, qc, gc, 50)
    monkeypatch.setattr(rank_mod, "_MAX_POS_FOR_COUNT", 3)
    assert_same(evaluate_rank(d, qp, gp, qc, gc, 50), ref, 50)


@pytest.mark.parametrize("path", [None, "sorted", "direct", "bucketed", "fused"])
@pytest.mark.parametrize("buckets", [1, 128])  # 1 bucket per match: many shared buckets
@pytest.mark.parametrize("seed", range(4))
def test_count_path_with_cross_ties_and_same_pid_ties(monkeypatch, seed, path, buckets):
    if path == "fused":
        pytest.importorskip("numba")  # the test extra installs it
    monkeypatch.setattr(_kernels, "_BUCKETS_PER_MATCH", buckets)
    rng = np.random.default_rng(4 + seed)
    d, qp, gp, qc, gc = random_case(rng, 25, 150, 10, 3, dtype=np.float32)
    d[:, ::7] = d[:, 3:4]  # plenty of cross ties, with matches, same-pid items and negatives
    d[:, 5::11] = -0.0  # -0.0 ties with +0.0
    d[:, 6::13] = 0.0
    d[1, :] = np.float32(np.inf)  # a row whose matches are all at inf
    d[2, 3] = np.float32(np.inf)
    d[3, ::2] = np.float32(1e-30)  # tiny spread
    d[4, ::2] = np.float32(1e-45)  # subnormal spread: bucket width would overflow
    d[4, 1::2] = 0.0
    d[5, ::3] = np.float32(-3e38)  # huge spread: its width would overflow
    d[5, 1::3] = np.float32(3e38)
    assert_same(evaluate_rank(d, qp, gp, qc, gc, 30, strategy="count", kernel=path or "auto"),
                reference_eval(d, qp, gp, qc, gc, 30), 30)


@pytest.mark.parametrize("kernel", ["fast", None, "sort"])
def test_unknown_kernel_is_refused(kernel):
    d = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"kernel must be one of 'auto', 'numpy'.*got"):
        evaluate_rank(d, [1, 2], [1, 2, 2], [0, 0], [1, 1, 1], kernel=kernel)


def test_block_size_does_not_change_numbers(monkeypatch):
    rng = np.random.default_rng(8)
    d, qp, gp, qc, gc = random_case(rng, 40, 100, 7, 3, dtype=np.float32)
    full = evaluate_rank(d, qp, gp, qc, gc)
    monkeypatch.setattr(rank_mod, "_BLOCK_ELEMS", 250)
    small = evaluate_rank(d, qp, gp, qc, gc)
    np.testing.assert_array_equal(small.cmc, full.cmc)
    np.testing.assert_array_equal(small.ap, full.ap)
    assert small.mAP == full.mAP and small.mINP == full.mINP


def test_inf_allowed_and_tensor_input():
    d = torch.tensor([[np.inf, 0.2, 0.1], [0.3, np.inf, np.inf]])
    r = evaluate_rank(d, torch.tensor([1, 2]), [1, 2, 2], [0, 0], [1, 1, 1], max_rank=3)
    ref = reference_eval(d.numpy(), [1, 2], [1, 2, 2], [0, 0], [1, 1, 1], 3)
    assert_same(r, ref, 3)


def test_result_api():
    d = np.array([[0.1, 0.5, 0.3]])
    r = evaluate_rank(d, [1], [1, 1, 2], [0], [1, 2, 1], max_rank=3)
    assert r.rank1 == 1.0 and r.rank(3) == 1.0
    assert r.mAP == pytest.approx((1 + 2 / 3) / 2)
    assert r.mINP == pytest.approx(2 / 3)
    assert "rank1=1.0000" in repr(r)
    with pytest.raises(ValueError, match=r"k must be in \[1, 3\]"):
        r.rank(4)


# ----------------------------------------------------------------------------- bad input
def good():
    return np.zeros((2, 3)), [1, 2], [1, 2, 3], [0, 0], [1, 1, 1]


@pytest.mark.parametrize(
    "pos, value, exc, msg",
    [
        (1, [1, 2, 3], ValueError, r"q_pids and q_camids differ in length: 3 vs 2"),
        (2, [1, 2], ValueError, r"g_pids and g_camids differ in length: 2 vs 3"),
        (4, [1, 1], ValueError, r"g_pids and g_camids differ in length: 3 vs 2"),
        (0, np.zeros((3, 3)), ValueError, r"q_pids has length 2 but there are 3 queries"),
        (0, np.zeros((2, 4)), ValueError, r"g_pids has length 3 but the gallery has 4 items"),
        (0, np.zeros(3), ValueError, r"distmat must be 2-D"),
        (0, np.array([[0.0, np.nan, 1.0], [0, 0, 0]]), ValueError, r"distmat contains NaN"),
        (0, np.array([["a", "b", "c"]] * 2), TypeError, r"distmat must hold real numbers"),
        (1, [1.5, 2.0], TypeError, r"q_pids must hold integers, got dtype float64"),
        (2, [[1, 2, 3]], ValueError, r"g_pids must be 1-D"),
    ],
)
def test_bad_input(pos, value, exc, msg):
    args = list(good())
    args[pos] = value
    with pytest.raises(exc, match=msg):
        evaluate_rank(*args)


def test_empty_sets():
    with pytest.raises(ValueError, match="query set is empty"):
        evaluate_rank(np.zeros((0, 3)), [], [1, 2, 3], [], [0, 0, 0])
    with pytest.raises(ValueError, match="gallery is empty"):
        evaluate_rank(np.zeros((2, 0)), [1, 2], [], [0, 0], [])


def test_no_valid_query_and_max_rank():
    with pytest.raises(ValueError, match="no query has a true match"):
        evaluate_rank(np.zeros((1, 2)), [5], [1, 5], [0], [0, 0])
    with pytest.raises(ValueError, match="max_rank must be >= 1, got 0"):
        evaluate_rank(*good(), max_rank=0)
    with pytest.raises(TypeError, match="max_rank must be an int, got float"):
        evaluate_rank(*good(), max_rank=5.0)
    with pytest.raises(ValueError, match="strategy must be"):
        evaluate_rank(np.zeros((1, 2)), [1], [1, 5], [0], [1, 0], strategy="fast")


def test_max_rank_is_capped_at_the_gallery_size():
    # issue 16: max_rank=10**9 on a 10-image gallery allocated gigabytes
    rng = np.random.default_rng(9)
    d, qp, gp, qc, gc = random_case(rng, 6, 10, 3, 2, dtype=np.float32)
    r = evaluate_rank(d, qp, gp, qc, gc, max_rank=10**9)
    assert r.cmc.shape == (10,) and r.cmc[-1] == 1.0
    assert_same(r, reference_eval(d, qp, gp, qc, gc, 10), 10)
    assert evaluate_rank(d, qp, gp, qc, gc, max_rank=3).cmc.shape == (3,)


def test_float64_distances_beyond_float32_range_rank_exactly():
    # a float32 cast would overflow to inf and tie them; the sort path keeps them apart
    d = np.array([[3e39, 2e39, 1e39, 4e39]])
    r = evaluate_rank(d, [1], [2, 1, 3, 1], [0], [1, 1, 1, 1], max_rank=4)
    assert_same(r, reference_eval(d, [1], [2, 1, 3, 1], [0], [1, 1, 1, 1], 4), 4)
    assert r.first_match[0] == 1


@pytest.mark.parametrize("threads", [1, 3])
def test_thread_count_does_not_change_numbers(monkeypatch, threads):
    rng = np.random.default_rng(11)
    d, qp, gp, qc, gc = random_case(rng, 60, 200, 9, 3, dtype=np.float32)
    ref = evaluate_rank(d, qp, gp, qc, gc)
    monkeypatch.setattr(rank_mod, "_THREADS", threads)
    monkeypatch.setattr(rank_mod, "_BLOCK_ELEMS", 1000)  # many blocks
    r = evaluate_rank(d, qp, gp, qc, gc)
    np.testing.assert_array_equal(r.ap, ref.ap)
    np.testing.assert_array_equal(r.first_match, ref.first_match)
    assert r.mAP == ref.mAP and r.mINP == ref.mINP


def test_nan_in_a_later_block_is_reported():
    d = np.zeros((30, 50), dtype=np.float32)
    d[25, 7] = np.nan
    with pytest.raises(ValueError, match="distmat contains NaN"):
        evaluate_rank(d, np.ones(30, int), np.ones(50, int), np.zeros(30, int), np.ones(50, int))


@pytest.mark.parametrize("kernel", ["_below_bucketed", "_below_sorted", "_below_direct",
                                    "_below_fused"])
def test_row_kernels_reuse_their_buffers_across_row_lengths(kernel):
    """One thread, rows of changing length: the reused per-thread buffers never leak a count."""
    rng = np.random.default_rng(11)
    for n in (300, 150, 400, 7):
        row = rng.integers(0, 40, n).astype(np.float32)  # many ties
        pc = np.sort(rng.choice(n, min(n, 5), replace=False))
        pkey = _kernels._packed_keys(row[pc], pc)
        order = np.argsort(pkey, kind="stable")
        pc, pkey = pc[order], pkey[order]
        pd = row[pc]
        if kernel in ("_below_bucketed", "_below_fused") and pd[0] == pd[-1]:
            continue  # the bucketed counts need a spread (the caller checks this)
        if kernel == "_below_fused":
            compiled = _kernels.fused_below()
            if compiled is None:
                pytest.skip("numba is not installed (the test extra installs it)")
            got = _kernels._below_fused(compiled, row, pd, pc, pkey)
        elif kernel == "_below_bucketed":
            got = _kernels._below_bucketed(row, pd, pc, pkey)
        else:
            got = getattr(_kernels, kernel)(row, pd, pc)
        want = [sum((row[j], j) < (row[c], c) for j in range(n)) for c in pc]  # brute force
        np.testing.assert_array_equal(got, want)
