import sys

import numpy as np
import pytest

from sureid.metrics import _fused, evaluate_rank
from sureid.metrics import rank as rank_mod

from .reference import reference_eval


def _case(seed=0, nq=20, ng=400):
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((nq, ng)).astype(np.float32)
    return d, rng.integers(0, 4, nq), rng.integers(0, 4, ng), rng.integers(0, 3, nq), \
        rng.integers(0, 3, ng)


def test_without_numba_the_numpy_kernels_give_the_same_numbers(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba -> ImportError
    monkeypatch.setattr(_fused, "_TRIED", False)
    monkeypatch.setattr(_fused, "_KERNEL", None)
    assert _fused.fused_below() is None
    d, qp, gp, qc, gc = _case()
    cmc, m_ap, m_inp, n_valid, _ = reference_eval(d, qp, gp, qc, gc, 20)
    r = evaluate_rank(d, qp, gp, qc, gc, 20)
    np.testing.assert_allclose(r.cmc, cmc, rtol=0, atol=1e-12)
    assert (r.mAP, r.mINP) == (pytest.approx(m_ap, abs=1e-12), pytest.approx(m_inp, abs=1e-12))
    assert r.num_valid_queries == n_valid


def test_fused_kernel_is_chosen_for_rows_where_most_items_are_candidates(monkeypatch):
    pytest.importorskip("numba")  # the test extra installs it
    calls = []
    real = rank_mod._below_fused
    monkeypatch.setattr(rank_mod, "_below_fused", lambda *a: calls.append(1) or real(*a))
    d, qp, gp, qc, gc = _case(1)
    evaluate_rank(d, qp, gp, qc, gc, 20)
    assert not calls  # a small gallery keeps the numpy kernels (no compile for it)
    monkeypatch.setattr(rank_mod, "_FUSED_MIN_GALLERY", 100)
    r = evaluate_rank(d, qp, gp, qc, gc, 20)  # random distances: matches spread everywhere
    assert calls
    monkeypatch.setattr(rank_mod, "_USE_FUSED", False)
    off = evaluate_rank(d, qp, gp, qc, gc, 20)
    np.testing.assert_array_equal(r.ap, off.ap)
    np.testing.assert_array_equal(r.first_match, off.first_match)
