import numpy as np
import pytest
import torch

from sureid.metrics import evaluate, evaluate_rank, pairwise_distance

from .reference import float64_reference, reference_eval


def make(seed, nq=23, ng=150, dim=12, integer=False):
    rng = np.random.default_rng(seed)
    if integer:  # exact float32 arithmetic: distances identical whatever the chunking
        q = rng.integers(-3, 4, (nq, dim)).astype(np.float32)
        g = rng.integers(-3, 4, (ng, dim)).astype(np.float32)
    else:
        q = rng.standard_normal((nq, dim)).astype(np.float32)
        g = rng.standard_normal((ng, dim)).astype(np.float32)
    qp, gp = rng.integers(0, 9, nq), rng.integers(0, 9, ng)
    qc, gc = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
    return torch.from_numpy(q), torch.from_numpy(g), qp, gp, qc, gc


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("chunk_size", [1, 4, 23, 1000, None])
@pytest.mark.parametrize("integer", [False, True])
def test_equals_evaluate_rank_on_full_matrix(metric, chunk_size, integer):
    q, g, qp, gp, qc, gc = make(1, integer=integer)
    full = evaluate_rank(pairwise_distance(q, g, metric), qp, gp, qc, gc, max_rank=30)
    r = evaluate(q, g, qp, gp, qc, gc, metric=metric, max_rank=30, chunk_size=chunk_size)
    np.testing.assert_array_equal(r.cmc, full.cmc)
    np.testing.assert_array_equal(r.ap, full.ap)
    assert (r.mAP, r.mINP, r.num_valid_queries) == (full.mAP, full.mINP, full.num_valid_queries)


def test_matches_reference_and_numpy_input():
    q, g, qp, gp, qc, gc = make(2)
    d = ((q[:, None, :].double() - g[None, :, :].double()) ** 2).sum(-1).numpy()
    cmc, m_ap, m_inp, n_valid, _ = reference_eval(d, qp, gp, qc, gc, 10)
    r = evaluate(q.numpy(), g.numpy(), qp, gp, qc, gc, max_rank=10, chunk_size=5)
    np.testing.assert_allclose(r.cmc, cmc, atol=1e-12)
    assert r.mAP == pytest.approx(m_ap, abs=1e-12) and r.num_valid_queries == n_valid


def test_pairwise_distance_values():
    q, g = torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 0.0], [3.0, 4.0], [-3.0, -4.0]])
    torch.testing.assert_close(pairwise_distance(q, g), torch.tensor([[25.0, 0.0, 100.0]]))
    torch.testing.assert_close(pairwise_distance(q, g[1:], "cosine"), torch.tensor([[0.0, 2.0]]))
    with pytest.raises(ValueError, match="metric must be one of"):
        pairwise_distance(q, g, "l1")


def test_bad_input():
    q, g, qp, gp, qc, gc = make(3, nq=4, ng=10)
    with pytest.raises(ValueError, match="differ in feature dim: 12 vs 5"):
        evaluate(q, g[:, :5], qp, gp, qc, gc)
    with pytest.raises(ValueError, match="q_pids has length 3 but there are 4 queries"):
        evaluate(q, g, qp[:3], gp, qc[:3], gc)
    with pytest.raises(ValueError, match="g_pids and g_camids differ in length: 10 vs 9"):
        evaluate(q, g, qp, gp, qc, gc[:9])
    with pytest.raises(TypeError, match="query_feats must be a torch.Tensor or numpy array"):
        evaluate([[1.0]], g, qp, gp, qc, gc)
    with pytest.raises(TypeError, match="gallery_feats must be floating point"):
        evaluate(q, g.long(), qp, gp, qc, gc)
    with pytest.raises(ValueError, match="metric must be one of"):
        evaluate(q, g, qp, gp, qc, gc, metric="hamming")
    with pytest.raises(ValueError, match="chunk_size must be >= 1, got 0"):
        evaluate(q, g, qp, gp, qc, gc, chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size must be an int, got float 4.0"):
        evaluate(q, g, qp, gp, qc, gc, chunk_size=4.0)
    for value in (float("nan"), float("inf")):
        for metric in ("euclidean", "cosine"):
            bad = g.clone()
            bad[3, 1] = value
            with pytest.raises(ValueError, match="must be finite"):
                evaluate(q, bad, qp, gp, qc, gc, metric=metric)
            with pytest.raises(ValueError, match="must be finite"):
                evaluate(bad[:4], g, qp, gp, qc, gc, metric=metric)
    with pytest.raises(ValueError, match="query set is empty"):
        evaluate(q[:0], g, [], gp, [], gc)


# ----------------------------------------------------------------------------- conditioning
def clustered(seed, nq=30, ng=200, dim=32, num_ids=10):
    rng = np.random.default_rng(seed)
    qp, gp = rng.integers(0, num_ids, nq), rng.integers(0, num_ids, ng)
    qc, gc = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
    centres = rng.standard_normal((num_ids, dim))
    q = centres[qp] + 0.8 * rng.standard_normal((nq, dim))
    g = centres[gp] + 0.8 * rng.standard_normal((ng, dim))
    return q, g, qp, gp, qc, gc


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize(
    "scale, offset",
    [(1e20, 0.0), (1e30, 0.0), (1e-25, 0.0), (1e-40, 0.0), (1.0, 300.0), (1.0, 3000.0),
     (1e18, 1e21), (1.0, 0.0)],
)
def test_ill_conditioned_features_rank_as_float64(metric, scale, offset):
    # issue 16: 1e20-scaled features gave "distances contain NaN"; offsets and tiny norms
    # gave numbers far from a float64 evaluation (mAP off by up to 0.9)
    q, g, qp, gp, qc, gc = clustered(0)
    q32 = torch.from_numpy((q * scale + offset).astype(np.float32))
    g32 = torch.from_numpy((g * scale + offset).astype(np.float32))
    ref = evaluate_rank(float64_reference(q32, g32, metric), qp, gp, qc, gc, max_rank=20)
    for chunk_size in (7, None):
        r = evaluate(q32, g32, qp, gp, qc, gc, metric=metric, max_rank=20, chunk_size=chunk_size)
        np.testing.assert_array_equal(r.cmc, ref.cmc)
        np.testing.assert_allclose(r.ap, ref.ap, rtol=0, atol=1e-12)
        assert r.mINP == pytest.approx(ref.mINP, abs=1e-12)


def test_float64_features_beyond_float32_range():
    q, g, qp, gp, qc, gc = clustered(1)
    q64, g64 = torch.from_numpy(q * 1e200), torch.from_numpy(g * 1e200)
    ref = evaluate_rank(float64_reference(q, g, "euclidean"), qp, gp, qc, gc, max_rank=20)
    r = evaluate(q64, g64, qp, gp, qc, gc, max_rank=20)
    np.testing.assert_allclose(r.ap, ref.ap, rtol=0, atol=1e-12)


def test_conditioned_evaluate_equals_pairwise_distance():
    q, g, qp, gp, qc, gc = clustered(2)
    for metric in ("euclidean", "cosine"):
        q32 = torch.from_numpy((q + 500.0).astype(np.float32))
        g32 = torch.from_numpy((g + 500.0).astype(np.float32))
        full = evaluate_rank(pairwise_distance(q32, g32, metric), qp, gp, qc, gc, max_rank=20)
        r = evaluate(q32, g32, qp, gp, qc, gc, metric=metric, max_rank=20, chunk_size=3)
        np.testing.assert_array_equal(r.ap, full.ap)
        np.testing.assert_array_equal(r.cmc, full.cmc)


def test_pairwise_distance_conditioned_values():
    rng = np.random.default_rng(3)
    q, g = rng.standard_normal((5, 16)), rng.standard_normal((7, 16))
    for metric in ("euclidean", "cosine"):
        ref = float64_reference(q + 1000.0, g + 1000.0, metric)
        got = pairwise_distance(torch.from_numpy(q + 1000.0), torch.from_numpy(g + 1000.0), metric)
        assert got.dtype == torch.float32
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-4, atol=0)
    # rescaled euclidean comes back in the original units (float32 range permitting)
    got = pairwise_distance(torch.from_numpy(q * 1e-20), torch.from_numpy(g * 1e-20))
    np.testing.assert_allclose(got.numpy(), float64_reference(q, g, "euclidean") * 1e-40,
                               rtol=1e-5)
    # a zero vector is at cosine distance 1 in both kernels
    g0 = np.vstack([g + 1000.0, np.zeros(16)])
    got = pairwise_distance(torch.from_numpy(q + 1000.0), torch.from_numpy(g0), "cosine")
    np.testing.assert_allclose(got[:, -1].numpy(), 1.0, atol=1e-6)
    got = pairwise_distance(torch.from_numpy(q), torch.zeros(1, 16), "cosine")
    np.testing.assert_allclose(got.numpy(), 1.0)


def test_huge_max_rank_on_small_gallery():
    q, g, qp, gp, qc, gc = make(4, nq=5, ng=10)
    r = evaluate(q, g, qp, gp, qc, gc, max_rank=10**9)
    assert r.cmc.shape == (10,)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_reused_chunk_buffer_is_float32_whatever_the_default_dtype(metric, monkeypatch):
    """The chunk buffer is float32 even under torch.set_default_dtype(torch.float64)."""
    q, g, qp, gp, qc, gc = make(3)
    want = evaluate(q, g, qp, gp, qc, gc, metric=metric, chunk_size=5)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        got = evaluate(q, g, qp, gp, qc, gc, metric=metric, chunk_size=5)
    finally:
        torch.set_default_dtype(old)
    np.testing.assert_array_equal(got.ap, want.ap)
    np.testing.assert_array_equal(got.first_match, want.first_match)
