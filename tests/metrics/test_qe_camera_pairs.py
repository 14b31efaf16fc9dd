"""alpha query expansion and per-camera-pair metrics, against brute-force references."""

import numpy as np
import pytest
import torch

from sureid.metrics import alpha_query_expansion, evaluate, evaluate_rank, pairwise_distance, rerank

from .reference import float64_reference, reference_eval


def aqe_reference(q, g, k, alpha, times):
    """fast-reid's aqe written out: a loop over items in float64, ties by index."""
    feats = np.concatenate([np.asarray(q, np.float64), np.asarray(g, np.float64)])
    n = len(feats)
    k = min(k, n)
    for _ in range(times):
        unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
        new = np.zeros_like(feats)
        for i in range(n):
            sims = [float(unit[i] @ unit[j]) for j in range(n)]
            top = sorted(range(n), key=lambda j: (-sims[j], j))[:k]
            total = np.zeros(feats.shape[1])
            for j in top:
                s = sims[j]
                if float(alpha).is_integer():
                    w = s ** int(alpha)  # fast-reid's np.power: defined for negative s
                else:
                    w = max(s, 0.0) ** alpha  # fast-reid: NaN; sureid: weight 0
                total += w * feats[j]
            new[i] = total / k
        feats = new
    return feats[: len(q)], feats[len(q):]


def make(seed, nq=12, ng=50, dim=8, cams=3, ids=6):
    rng = np.random.default_rng(seed)
    q = torch.from_numpy(rng.standard_normal((nq, dim)).astype(np.float32))
    g = torch.from_numpy(rng.standard_normal((ng, dim)).astype(np.float32))
    return (q, g, rng.integers(0, ids, nq), rng.integers(0, ids, ng),
            rng.integers(0, cams, nq), rng.integers(0, cams, ng))


@pytest.mark.parametrize("k, alpha, times", [(5, 3.0, 1), (1, 3.0, 1), (3, 0.0, 1),
                                             (4, 1.0, 2), (62, 3.0, 1), (62, 2.0, 1),
                                             (62, 2.5, 1), (100, 3.0, 2)])
def test_alpha_query_expansion_equals_the_brute_force_reference(k, alpha, times):
    q, g, *_ = make(0)
    eq, eg = alpha_query_expansion(q, g, k=k, alpha=alpha, times=times)
    rq, rg = aqe_reference(q, g, k, alpha, times)  # k = 62 = Q + G: negative similarities
    assert eq.dtype == torch.float32 and eq.shape == q.shape and eg.shape == g.shape
    np.testing.assert_allclose(eq.numpy(), rq, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(eg.numpy(), rg, rtol=1e-5, atol=1e-6)


def test_alpha_query_expansion_ties_input_and_k_one():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    g = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]])  # exact ties with the queries
    eq, eg = alpha_query_expansion(q, g, k=2, alpha=1.0)
    rq, rg = aqe_reference(q, g, 2, 1.0, 1)
    np.testing.assert_allclose(eq.numpy(), rq, atol=1e-6)
    np.testing.assert_allclose(eg.numpy(), rg, atol=1e-6)
    before = q.clone()
    same_q, same_g = alpha_query_expansion(q.numpy(), g.numpy().astype(np.float64), k=1)
    assert torch.equal(q, before)  # input untouched
    torch.testing.assert_close(same_q, q)  # k=1: the most similar, weight 1
    # exact ties go to the lower index (queries first): each gallery item takes a query
    torch.testing.assert_close(same_g, torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    q2, g2 = make(6)[:2]
    torch.testing.assert_close(alpha_query_expansion(q2, g2, k=1), (q2, g2))  # no ties: itself


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_evaluate_with_aqe_ranks_the_reference_expanded_features(metric):
    q, g, qp, gp, qc, gc = make(1)
    rq, rg = aqe_reference(q, g, 5, 3.0, 1)
    cmc, m_ap, m_inp, n_valid, ap = reference_eval(float64_reference(rq, rg, metric),
                                                   qp, gp, qc, gc, 20)
    r = evaluate(q, g, qp, gp, qc, gc, metric=metric, max_rank=20, aqe=True, chunk_size=5)
    np.testing.assert_allclose(r.cmc, cmc, atol=1e-12)
    np.testing.assert_allclose(r.ap, ap, atol=1e-9)
    assert r.mAP == pytest.approx(m_ap, abs=1e-9) and r.mINP == pytest.approx(m_inp, abs=1e-9)
    plain = evaluate(q, g, qp, gp, qc, gc, metric=metric, max_rank=20)
    assert not np.allclose(plain.ap, r.ap, equal_nan=True)  # it changed something


def test_aqe_then_rerank_and_options():
    q, g, qp, gp, qc, gc = make(2)
    eq, eg = alpha_query_expansion(q, g, k=3, alpha=2.0, times=2)
    a = evaluate(q, g, qp, gp, qc, gc, aqe=True, aqe_k=3, aqe_alpha=2.0, aqe_times=2,
                 rerank=True, k1=6, k2=3)
    b = evaluate_rank(rerank(eq, eg, k1=6, k2=3), qp, gp, qc, gc)
    np.testing.assert_array_equal(a.ap, b.ap)
    np.testing.assert_array_equal(a.cmc, b.cmc)


def test_aqe_bad_arguments():
    q, g, qp, gp, qc, gc = make(3)
    with pytest.raises(ValueError, match="aqe_k must be >= 1, got 0"):
        evaluate(q, g, qp, gp, qc, gc, aqe=True, aqe_k=0)
    with pytest.raises(ValueError, match=r"aqe_alpha must be in \[0, inf\], got -1"):
        evaluate(q, g, qp, gp, qc, gc, aqe=True, aqe_alpha=-1)
    with pytest.raises(TypeError, match="aqe_times must be an int"):
        evaluate(q, g, qp, gp, qc, gc, aqe=True, aqe_times=1.5)
    with pytest.raises(TypeError, match="aqe must be a bool, got 'yes'"):
        evaluate(q, g, qp, gp, qc, gc, aqe="yes")
    with pytest.raises(TypeError, match="camera_pairs must be a bool"):
        evaluate(q, g, qp, gp, qc, gc, camera_pairs=1)
    with pytest.raises(ValueError, match="k must be >= 1"):
        alpha_query_expansion(q, g, k=0)
    bad = g.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="gallery_feats must be finite"):
        evaluate(q, bad, qp, gp, qc, gc, aqe=True)


# ----------------------------------------------------------------------------- camera pairs
def camera_pairs_reference(d, qp, gp, qc, gc, max_rank):
    """Each (query camera, gallery camera): the reference evaluator on that sub-matrix."""
    out = {}
    for a in sorted(set(qc.tolist())):
        for b in sorted(set(gc.tolist())):
            rows, cols = np.flatnonzero(qc == a), np.flatnonzero(gc == b)
            try:
                out[(a, b)] = reference_eval(d[np.ix_(rows, cols)], qp[rows], gp[cols],
                                             qc[rows], gc[cols], min(max_rank, len(cols)))
            except ValueError:  # no valid query in this pair
                pass
    return out


def check_pairs(result, ref):
    assert sorted(result.camera_pairs) == sorted(ref)
    for pair, (cmc, m_ap, m_inp, n_valid, ap) in ref.items():
        r = result.camera_pairs[pair]
        np.testing.assert_allclose(r.cmc, cmc, atol=1e-12, err_msg=str(pair))
        np.testing.assert_allclose(r.ap, ap, atol=1e-12, err_msg=str(pair))
        assert r.mAP == pytest.approx(m_ap, abs=1e-12) and r.mINP == pytest.approx(m_inp, abs=1e-12)
        assert r.num_valid_queries == n_valid and r.num_skipped == len(ap) - n_valid
    assert all(a != b for a, b in result.camera_pairs)  # same-camera pairs hold no match


@pytest.mark.parametrize("strategy", ["auto", "sort"])
def test_camera_pairs_of_evaluate_rank_equal_the_reference(strategy):
    q, g, qp, gp, qc, gc = make(4, nq=30, ng=120, cams=4)
    d = float64_reference(q, g, "euclidean").astype(np.float32)
    d[:, ::7] = d[:, 3:4]  # ties inside and across cameras
    r = evaluate_rank(d, qp, gp, qc, gc, max_rank=40, strategy=strategy, camera_pairs=True)
    check_pairs(r, camera_pairs_reference(d, qp, gp, qc, gc, 40))
    plain = evaluate_rank(d, qp, gp, qc, gc, max_rank=40, strategy=strategy)
    np.testing.assert_array_equal(r.ap, plain.ap)  # the overall result is unchanged
    assert plain.camera_pairs is None
    assert all(len(x.cmc) <= 40 for x in r.camera_pairs.values())


@pytest.mark.parametrize("chunk_size", [1, 7, None])
def test_camera_pairs_of_evaluate_and_with_rerank_and_aqe(chunk_size):
    q, g, qp, gp, qc, gc = make(5, nq=25, ng=90, cams=3)
    r = evaluate(q, g, qp, gp, qc, gc, max_rank=10, chunk_size=chunk_size, camera_pairs=True)
    check_pairs(r, camera_pairs_reference(pairwise_distance(q, g).numpy(), qp, gp, qc, gc, 10))
    rr = evaluate(q, g, qp, gp, qc, gc, max_rank=10, chunk_size=chunk_size, rerank=True,
                  k1=5, k2=2, aqe=True, camera_pairs=True)
    eq, eg = alpha_query_expansion(q, g)
    check_pairs(rr, camera_pairs_reference(rerank(eq, eg, k1=5, k2=2), qp, gp, qc, gc, 10))


def test_camera_pair_with_small_gallery_caps_its_curve():
    d = np.array([[0.1, 0.5, 0.3, 0.2], [0.4, 0.2, 0.6, 0.1]], dtype=np.float32)
    r = evaluate_rank(d, [1, 2], [1, 2, 1, 2], [0, 0], [1, 1, 2, 2], max_rank=50,
                      camera_pairs=True)
    assert sorted(r.camera_pairs) == [(0, 1), (0, 2)]
    assert len(r.camera_pairs[(0, 1)].cmc) == 2  # two gallery images on camera 1
    assert r.camera_pairs[(0, 1)].rank1 == 1.0 and r.camera_pairs[(0, 2)].rank1 == 0.5
