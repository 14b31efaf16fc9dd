import numpy as np
import pytest
import torch

from sureid.metrics import evaluate, evaluate_rank, pairwise_distance
from sureid.metrics.rerank import KReciprocalReranker
from sureid.metrics.retrieval import rank_gallery, rerank, rerank_distmat
from tests.metrics.reference import float64_reference
from tests.metrics.rerank_reference import rerank_reference

PARAMS = [(20, 6, 0.3), (5, 1, 0.0), (7, 15, 0.5), (3, 3, 1.0), (1, 2, 0.3), (4, 1, 0.7)]


def _feats(kind: str, nq: int, ng: int, dim: int = 8):
    if kind == "random":
        return torch.randn(nq, dim), torch.randn(ng, dim)
    if kind == "duplicates":  # exact ties: many identical feature vectors
        base = torch.randn(6, dim)
        return base[torch.randint(0, 6, (nq,))], base[torch.randint(0, 6, (ng,))]
    # clustered, like identities
    centres = torch.randn(10, dim) * 3
    return (
        centres[torch.randint(0, 10, (nq,))] + 0.3 * torch.randn(nq, dim),
        centres[torch.randint(0, 10, (ng,))] + 0.3 * torch.randn(ng, dim),
    )


@pytest.mark.parametrize("kind", ["random", "duplicates", "clustered"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("k1,k2,lam", PARAMS)
def test_features_equal_reference(kind, metric, k1, k2, lam):
    q, g = _feats(kind, 13, 71)
    x = torch.cat([q, g])
    ref = rerank_reference(pairwise_distance(x, x, metric).numpy(), 13, k1, k2, lam)
    out = rerank(q, g, k1=k1, k2=k2, lambda_value=lam, metric=metric)
    assert out.dtype == np.float32 and out.shape == (13, 71)
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k1,k2,lam", PARAMS)
def test_integer_distmat_ties_equal_reference(seed, k1, k2, lam):
    rng = np.random.default_rng(seed)
    nq, ng = int(rng.integers(1, 12)), int(rng.integers(2, 60))
    n = nq + ng
    d = rng.integers(0, 4, (n, n)).astype(np.float32)  # few values: ties everywhere
    d = np.minimum(d, d.T)
    np.fill_diagonal(d, 0)
    ref = rerank_reference(d, nq, k1, k2, lam)
    out = rerank_distmat(d[:nq, nq:], d[:nq, :nq], d[nq:, nq:], k1=k1, k2=k2, lambda_value=lam)
    np.testing.assert_array_equal(out, ref)


def test_small_chunks_and_any_query_order_give_the_same_rows():
    q, g = _feats("clustered", 20, 90)
    x = torch.cat([q, g])
    d = pairwise_distance(x, x).numpy()
    ref = rerank_reference(d, 20)

    def get_rows(idx):
        return d[idx]

    rr = KReciprocalReranker(get_rows, 20, 110, chunk_rows=7)
    np.testing.assert_array_equal(rr.rows(np.arange(20)), ref)
    order = np.array([5, 19, 0, 3, 3])
    np.testing.assert_array_equal(rr.rows(order), ref[order])


def test_memory_bounded_internals_are_sparse():
    q, g = _feats("clustered", 30, 400)
    get_rows = lambda idx: pairwise_distance(torch.cat([q, g])[idx], torch.cat([q, g])).numpy()  # noqa: E731
    rr = KReciprocalReranker(get_rows, 30, 430)
    assert rr._rank.shape == (430, 21)
    assert len(rr._data) < 430 * 430 // 2  # V is sparse


def test_evaluate_rerank_equals_rank_of_reranked_matrix():
    q, g = _feats("clustered", 25, 120)
    qp, gp = np.arange(25) % 10, np.arange(120) % 10
    qc, gc = np.zeros(25, int), np.ones(120, int)
    full = rerank(q, g)
    want = evaluate_rank(full, qp, gp, qc, gc)
    for chunk in (None, 1, 7):
        got = evaluate(q, g, qp, gp, qc, gc, rerank=True, chunk_size=chunk)
        np.testing.assert_array_equal(got.cmc, want.cmc)
        assert got.mAP == want.mAP and got.mINP == want.mINP
    # the parameters are passed through
    other = evaluate(q, g, qp, gp, qc, gc, rerank=True, k1=5, k2=1, lambda_value=0.0)
    want5 = evaluate_rank(rerank(q, g, k1=5, k2=1, lambda_value=0.0), qp, gp, qc, gc)
    assert other.mAP == want5.mAP


def test_rank_gallery_matches_stable_argsort():
    q, g = _feats("duplicates", 9, 40)
    for rr in (False, True):
        d = rerank(q, g) if rr else pairwise_distance(q, g).numpy()
        idx, dist = rank_gallery(q, g, topk=12, rerank=rr)
        want = np.argsort(d, axis=1, kind="stable")[:, :12]
        np.testing.assert_array_equal(idx, want)
        np.testing.assert_array_equal(dist, np.take_along_axis(d, want, 1))
    idx, _ = rank_gallery(q, g, topk=100)
    assert idx.shape == (9, 40)


def test_inputs_not_modified():
    q, g = _feats("random", 5, 30)
    q0, g0 = q.clone(), g.clone()
    rerank(q, g)
    assert torch.equal(q, q0) and torch.equal(g, g0)


def test_bad_input():
    q, g = torch.randn(3, 4), torch.randn(10, 4)
    with pytest.raises(ValueError, match="k1 must be >= 1"):
        rerank(q, g, k1=0)
    with pytest.raises(TypeError, match="k2 must be an int"):
        rerank(q, g, k2=2.5)
    with pytest.raises(ValueError, match=r"lambda_value must be in \[0, 1\], got 1.5"):
        rerank(q, g, lambda_value=1.5)
    with pytest.raises(TypeError, match="lambda_value must be a real number, got str '0.3'"):
        rerank(q, g, lambda_value="0.3")
    with pytest.raises(TypeError, match="k1 must be an int, got bool True"):
        rerank(q, g, k1=True)
    numpy_args = rerank(q, g, k1=np.int64(3), k2=np.int64(2), lambda_value=np.float32(0.25))
    np.testing.assert_array_equal(numpy_args, rerank(q, g, k1=3, k2=2, lambda_value=0.25))
    with pytest.raises(ValueError, match="feature dim"):
        rerank(q, torch.randn(10, 5))
    with pytest.raises(ValueError, match="finite"):
        rerank(q, torch.full((10, 4), float("nan")))
    with pytest.raises(ValueError, match="metric"):
        rerank(q, g, metric="manhattan")
    with pytest.raises(ValueError, match=r"q_q_dist \(Q, Q\)"):
        rerank_distmat(np.zeros((3, 10)), np.zeros((3, 4)), np.zeros((10, 10)))
    with pytest.raises(ValueError, match="topk"):
        rank_gallery(q, g, topk=0)


# ----------------------------------------------------------------------------- conditioning
# rank_gallery and rerank condition the features as pairwise_distance/evaluate do: a large
# common offset or huge norms used to reorder them (0.85 / 0.03 top-10 agreement at offsets
# 100 / 1000, all-inf distances and a numpy broadcast error at 1e19)
def _ill_conditioned(case: str, nq: int = 12, ng: int = 80, dim: int = 16):
    """float32 ``(q, g)`` built in float64 from clustered features, then offset or scaled."""
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((8, dim))
    q = centres[rng.integers(0, 8, nq)] + 0.7 * rng.standard_normal((nq, dim))
    g = centres[rng.integers(0, 8, ng)] + 0.7 * rng.standard_normal((ng, dim))
    if case.startswith("offset"):
        shift = float(case[6:])
        q, g = q + shift, g + shift
    elif case == "vector":  # a large common offset vector (cosine: directions nearly agree)
        b = 100.0 * rng.standard_normal(dim)
        q, g = q + b, g + b
    else:
        q, g = q * float(case), g * float(case)
    q32, g32 = q.astype(np.float32), g.astype(np.float32)
    return torch.from_numpy(q32), torch.from_numpy(g32)


def _pow2_normalised(d: np.ndarray) -> np.ndarray:
    """float64 distances times a power of two (exact) so that float32 holds them."""
    return (d * 2.0 ** -np.ceil(np.log2(d.max()))).astype(np.float32)


CASES = ["offset100", "offset1000", "vector", "1e17", "1e19"]


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("case", CASES)
def test_rank_gallery_ill_conditioned_equals_float64(metric, case):
    q, g = _ill_conditioned(case)
    ref = float64_reference(q, g, metric)
    want = np.argsort(ref, axis=1, kind="stable")[:, :10]
    idx, dist = rank_gallery(q, g, topk=10, metric=metric)
    np.testing.assert_array_equal(idx, want)
    # the distances of the features as given, as pairwise_distance returns them (float32;
    # inf where the true distance is beyond float32's range, as at 1e19 euclidean)
    assert dist.dtype == np.float32
    with np.errstate(over="ignore"):  # 1e19 euclidean: float64 distances above float32's max
        ref32 = np.take_along_axis(ref, want, 1).astype(np.float32)
    assert np.isinf(ref32).all() == (case == "1e19" and metric == "euclidean")
    np.testing.assert_allclose(dist, ref32, rtol=2e-5, atol=0)
    np.testing.assert_array_equal(dist, np.take_along_axis(pairwise_distance(q, g, metric)
                                                           .numpy(), want, 1))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("case", CASES)
def test_rerank_ill_conditioned_equals_float64(metric, case):
    q, g = _ill_conditioned(case)
    x = torch.cat([q, g])
    ref = rerank_reference(_pow2_normalised(float64_reference(x, x, metric)), len(q))
    out = rerank(q, g, metric=metric)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5)
    want = np.argsort(ref, axis=1, kind="stable")[:, :10]
    idx, dist = rank_gallery(q, g, topk=10, metric=metric, rerank=True)
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_array_equal(dist, np.take_along_axis(out, want, 1))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_rerank_conditioned_equals_reference_on_pairwise_distance(metric):
    # the same kernel as pairwise_distance, bit for bit (rescaling is by a power of two)
    for case in ("offset1000", "1e17"):
        q, g = _ill_conditioned(case)
        x = torch.cat([q, g])
        ref = rerank_reference(pairwise_distance(x, x, metric).numpy(), len(q))
        np.testing.assert_array_equal(rerank(q, g, metric=metric), ref)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_evaluate_rerank_ill_conditioned_equals_float64(metric):
    rng = np.random.default_rng(4)
    qp, gp = rng.integers(0, 8, 12), rng.integers(0, 8, 80)
    qc, gc = np.zeros(12, int), np.ones(80, int)
    q, g = _ill_conditioned("offset1000")
    x = torch.cat([q, g])
    ref = rerank_reference(_pow2_normalised(float64_reference(x, x, metric)), 12)
    want = evaluate_rank(ref, qp, gp, qc, gc, max_rank=20)
    got = evaluate(q, g, qp, gp, qc, gc, metric=metric, max_rank=20, rerank=True)
    np.testing.assert_array_equal(got.cmc, want.cmc)
    np.testing.assert_allclose(got.ap, want.ap, rtol=0, atol=1e-12)


def test_conditioned_inputs_not_modified():
    q, g = _ill_conditioned("offset1000")
    q0, g0 = q.clone(), g.clone()
    rerank(q, g)
    rank_gallery(q, g, topk=5)
    assert torch.equal(q, q0) and torch.equal(g, g0)


def test_rank_gallery_empty_sets():
    q, g = torch.randn(3, 4), torch.randn(10, 4)
    for rr in (False, True):
        with pytest.raises(ValueError, match=r"^the gallery is empty: gallery_feats has shape"):
            rank_gallery(q, g[:0], rerank=rr)
        with pytest.raises(ValueError, match=r"^the query set is empty: query_feats has shape"):
            rank_gallery(q[:0], g, rerank=rr)


def test_rank_gallery_topk_numpy_int_and_bad_types():
    q, g = torch.randn(3, 4), torch.randn(10, 4)
    want = rank_gallery(q, g, topk=3)
    for topk in (np.int64(3), np.int32(3)):
        idx, dist = rank_gallery(q, g, topk=topk)
        np.testing.assert_array_equal(idx, want[0])
        np.testing.assert_array_equal(dist, want[1])
    for topk in (True, 2.5, "3"):
        with pytest.raises(TypeError, match="topk must be an int"):
            rank_gallery(q, g, topk=topk)
    with pytest.raises(ValueError, match="topk must be >= 1, got"):
        rank_gallery(q, g, topk=np.int64(0))
