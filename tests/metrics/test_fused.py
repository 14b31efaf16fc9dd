import sys

import numpy as np
import pytest

from sureid.metrics import _fused, _kernels, evaluate_rank

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
    real = _kernels._below_fused
    monkeypatch.setattr(_kernels, "_below_fused", lambda *a: calls.append(1) or real(*a))
    d, qp, gp, qc, gc = _case(1)
    evaluate_rank(d, qp, gp, qc, gc, 20)
    assert not calls  # a small gallery keeps the numpy kernels (no compile for it)
    monkeypatch.setattr(_kernels, "_FUSED_MIN_GALLERY", 100)
    r = evaluate_rank(d, qp, gp, qc, gc, 20)  # random distances: matches spread everywhere
    assert calls
    off = evaluate_rank(d, qp, gp, qc, gc, 20, kernel="numpy")
    np.testing.assert_array_equal(r.ap, off.ap)
    np.testing.assert_array_equal(r.first_match, off.first_match)


_CALL = """
import numpy as np
from sureid.metrics._fused import fused_below
k = fused_below()
print(sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values()))
"""


def test_the_kernel_is_cached_across_processes(tmp_path):
    """The second process loads the machine code the first wrote (no compile)."""
    pytest.importorskip("numba")
    import os
    import subprocess

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", _CALL], env=env, capture_output=True,
                           text=True, check=True).stdout.split() for _ in range(2)]
    assert runs[0] == ["0", "1"]  # compiled and written
    assert runs[1] == ["1", "0"]  # loaded from the cache
    assert any(p.suffix == ".nbi" for p in tmp_path.rglob("*"))


def test_without_a_writable_cache_the_kernel_still_compiles(monkeypatch):
    numba = pytest.importorskip("numba")
    from sureid.metrics import _fused_kernel

    real = numba.njit

    def refusing(*args, cache=False, **kwargs):
        if cache:
            raise RuntimeError("cannot cache function 'f': no locator available for file")
        return real(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", refusing)

    @_fused_kernel._njit("int64(int64)")
    def double(x):
        return 2 * x

    assert double(21) == 42
