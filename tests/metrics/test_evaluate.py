import numpy as np
import pytest
import torch

from sureid.metrics import evaluate, evaluate_rank, pairwise_distance

from .reference import reference_eval


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
