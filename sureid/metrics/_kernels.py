"""The exact counting kernels behind :func:`sureid.metrics.evaluate_rank`.

The rank of a query's k-th true match (0-based, in distance order) is
``k + #{kept negatives that sort before it}``. Per row, one of four exact counts gives the
number of items below each match: gather and sort, direct, bucketed, and the bucketed count
compiled with numba (:mod:`sureid.metrics._fused`); rows whose distances are not exactly
float32, or that have very many matches, use a stable argsort (:func:`_ranks_by_sort`).
All give the same numbers. docs/evaluation.md ("How it is fast and exact") describes them,
with the measured costs behind the choice (``benchmarks/rank_kernels.py`` measures them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from ._fused import fused_below

__all__ = ["KERNELS", "check_kernel"]

# "auto": the cheapest count per row; "numpy": the same without the compiled count; a count's
# name: that count wherever it is valid for a row (tests and benchmarks; same numbers).
KERNELS = ("auto", "numpy", "sorted", "direct", "bucketed", "fused")
# Histogram buckets per true match in the bucketed count (few items share a match's bucket).
_BUCKETS_PER_MATCH = 512
# Cost per gallery item of each count, measured by benchmarks/rank_kernels.py (figures in
# docs/evaluation.md): sorted a + b * share of candidates, direct c * matches, bucketed flat.
_COST_SORTED = (0.3, 7.5)
_COST_DIRECT = 0.32
_COST_BUCKETED = 4.2
_COST_FUSED = 1.8
# Galleries smaller than this keep the numpy kernels: compiling the fused one (once per
# process) costs more than it saves on them.
_FUSED_MIN_GALLERY = 1 << 14
# Its histogram flags a match's bucket with a 2**30 offset in int32: larger rows use numpy.
_FUSED_MAX_GALLERY = 1 << 30


def check_kernel(kernel: str) -> str:
    """``kernel`` if it is one of :data:`KERNELS`, else ``ValueError`` quoting it."""
    if not isinstance(kernel, str) or kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(map(repr, KERNELS))}, got {kernel!r}")
    return kernel


_scratch = threading.local()


def _workspace(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """This thread's float32, intp and bool row buffers of length ``n``, reused row after row.

    Fresh row-sized arrays (``astype``, boolean masks) cost a page fault per 4 KiB once they
    are larger than malloc's mmap threshold; reused buffers are already mapped and cached.
    """
    bufs = getattr(_scratch, "bufs", None)
    if bufs is None or len(bufs[0]) < n:
        bufs = (np.empty(n, np.float32), np.empty(n, np.intp), np.empty(n, np.bool_))
        _scratch.bufs = bufs
    return bufs[0][:n], bufs[1][:n], bufs[2][:n]


class _PidIndex:
    """Gallery indices grouped by pid (ascending), to list a query's matches without a scan."""

    def __init__(self, gp: np.ndarray, gc: np.ndarray):
        order = np.argsort(gp, kind="stable")
        uniq, starts, counts = np.unique(gp[order], return_index=True, return_counts=True)
        self.gc = gc
        self._groups = {
            int(p): order[s : s + c] for p, s, c in zip(uniq.tolist(), starts, counts, strict=True)
        }
        self._empty = np.zeros(0, dtype=np.int64)

    def same_pid(self, pid: int) -> np.ndarray:
        return self._groups.get(int(pid), self._empty)

    def num_positives(self, qp: np.ndarray, qc: np.ndarray) -> np.ndarray:
        """Per query: gallery items with the same pid and another camera, ``(Q,)``."""
        return np.array(
            [np.count_nonzero(self.gc[self.same_pid(p)] != c) for p, c in zip(qp, qc, strict=True)],
            dtype=np.int64,
        )

    def matches(self, qp: np.ndarray, qc: np.ndarray):
        """Row-major ``(rows, cols)`` of the true matches of a query block, and ``npos``."""
        cols = [(g := self.same_pid(p))[self.gc[g] != c] for p, c in zip(qp, qc, strict=True)]
        npos = np.array([len(x) for x in cols], dtype=np.int64)
        rows = np.repeat(np.arange(len(cols)), npos)
        return rows, np.concatenate(cols) if cols else self._empty, npos


def _packed_keys(d32: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Order-preserving int64 keys of ``(distance, gallery index)`` pairs (float32 distances).

    Comparing keys equals comparing ``(distance, index)`` lexicographically, i.e. the
    stable sort order, with one integer comparison.
    """
    d32 = d32 + np.float32(0.0)  # -0.0 -> +0.0, so it ties with +0.0 like a float compare
    bits = d32.view(np.int32)
    mono = bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))  # negative floats: reverse order
    keys = mono.astype(np.int64) << 32
    keys |= cols
    return keys


def _compiled(kernel: str, num_gallery: int) -> Callable | None:
    """The compiled count, when ``kernel`` lets rows of ``num_gallery`` items use it."""
    if kernel == "numpy" or num_gallery >= _FUSED_MAX_GALLERY:
        return None
    if num_gallery >= _FUSED_MIN_GALLERY or kernel == "fused":
        return fused_below()
    return None


def _ranks_by_count(d32, qp, gp, pidx, rows, cols, npos, pmax, kernel: str = "auto"):
    """Kept-list ranks of each row's true matches, sorted, ``(B, pmax)`` (padding arbitrary).

    rank of match k = k + #negatives whose (distance, index) key is smaller. Only items not
    farther than the row's hardest match can count. Same-pid items (matches or removed, never
    negatives) are subtracted with exact key comparisons. :func:`_below_sorted`,
    :func:`_below_direct`, :func:`_below_bucketed` and :func:`_below_fused` count the items
    below each match (same numbers). ``kernel`` (one of :data:`KERNELS`): ``"auto"`` uses the
    cheapest for the row, ``"numpy"`` the cheapest but the compiled one, a kernel's name that
    kernel wherever it is valid for the row (the cheapest elsewhere).
    """
    b = d32.shape[0]
    fused = _compiled(kernel, d32.shape[1])
    starts = np.concatenate(([0], np.cumsum(npos)[:-1]))
    ranks = np.zeros((b, pmax), dtype=np.int64)
    for i in range(b):
        p = int(npos[i])
        if p == 0:
            continue
        row = d32[i]
        pc = cols[starts[i] : starts[i] + p]
        pkey = _packed_keys(row[pc], pc)
        order = np.argsort(pkey, kind="stable")
        pkey, pc = pkey[order], pc[order]
        pd = row[pc]
        lo, hi = pd[0], pd[-1]
        # pick the cheapest exact count from the share of candidates (a strided estimate)
        sample = row[:: max(1, len(row) // 4096)]
        frac = np.count_nonzero(sample <= hi) / len(sample)
        cost = {"sorted": _COST_SORTED[0] + _COST_SORTED[1] * frac, "direct": _COST_DIRECT * p}
        with np.errstate(all="ignore"):  # inf - inf, overflowing spans: not bucketed
            span = hi - lo
            finite = np.isfinite(np.float32(_BUCKETS_PER_MATCH * p) / span + (lo - span))
        if p > 1 and lo < hi and np.isfinite(span) and finite:  # base >= lo - span
            cost["bucketed"] = _COST_BUCKETED
            if fused is not None:
                cost["fused"] = _COST_FUSED
        path = kernel if kernel in cost else min(cost, key=cost.get)
        if path == "fused":
            below = _below_fused(fused, row, pd, pc, pkey)
        elif path == "bucketed":
            below = _below_bucketed(row, pd, pc, pkey)
        elif path == "direct":
            below = _below_direct(row, pd, pc)
        else:
            below = _below_sorted(row, pd, pc)
        same = pidx.same_pid(qp[i])
        below -= np.count_nonzero(_packed_keys(row[same], same)[None, :] < pkey[:, None], axis=1)
        ranks[i, :p] = below + np.arange(p)
    return ranks


def _below_sorted(row, pd, pc) -> np.ndarray:
    """Items (any pid) whose (distance, index) key is below each match's: gather and sort.

    Cheap when few items are within the hardest match's distance (a good model).
    """
    mask = _workspace(len(row))[2]
    cand = row[np.less_equal(row, pd[-1], out=mask)]  # NaN never passes (blocks are checked)
    cand.sort()
    below = np.searchsorted(cand, pd, side="left")
    tied = np.searchsorted(cand, pd, side="right") - below > 1
    for k in np.flatnonzero(tied):  # other items at exactly this distance: lower index first
        below[k] += np.count_nonzero(np.flatnonzero(row == pd[k]) < pc[k])
    return below


def _below_direct(row, pd, pc) -> np.ndarray:
    """Same as :func:`_below_sorted` with two counting passes per match (few matches)."""
    below = np.array([np.count_nonzero(row < t) for t in pd], dtype=np.int64)
    at = np.array([np.count_nonzero(row <= t) for t in pd], dtype=np.int64) - below
    for k in np.flatnonzero(at > 1):  # other items at exactly this distance: lower index first
        below[k] += np.count_nonzero(np.flatnonzero(row == pd[k]) < pc[k])
    return below


def _bucket_grid(pd: np.ndarray) -> tuple[int, np.float32, np.float32]:
    """``(m, base, inv_w)``: ``m`` buckets per row over the matches' range ``pd[0]..pd[-1]``.

    lo lands in bucket 1 (not 0, which collects everything closer) and hi in m - 1 (not
    m + 1, which collects everything farther); rounding moves them by at most one bucket.
    """
    m = _BUCKETS_PER_MATCH * len(pd)
    lo, hi = np.float32(pd[0]), np.float32(pd[-1])
    inv_w = np.float32((m - 2) / (hi - lo))
    base = np.float32(lo - (hi - lo) / np.float32(m / 2))
    return m, base, inv_w


def _below_fused(kernel, row, pd, pc, pkey) -> np.ndarray:
    """:func:`_below_bucketed` in one compiled pass (:mod:`sureid.metrics._fused`)."""
    m, base, inv_w = _bucket_grid(pd)
    near = _workspace(len(row))[1]
    return kernel(row, row.view(np.int32), pc, pkey, base, inv_w, m, near)


def _below_bucketed(row, pd, pc, pkey) -> np.ndarray:
    """Same as :func:`_below_sorted` without sorting, for rows where most items are candidates.

    Every item gets a bucket ``trunc(clip((x - base) * inv_w, 0, M + 1))`` on a uniform grid
    over the matches' range. Each step is monotone in ``x``, so an item in a lower bucket
    than a match is closer and one in a higher bucket is farther: a histogram counts them.
    Only the few items sharing a bucket with some match are compared exactly, by key.
    """
    m, base, inv_w = _bucket_grid(pd)
    t, idx, _ = _workspace(len(row))
    with np.errstate(over="ignore"):  # an overflow gives inf, clipped like any far item
        np.subtract(row, base, out=t)
        t *= inv_w
        np.clip(t, 0, m + 1, out=t)
        np.copyto(idx, t, casting="unsafe")  # truncation, as astype
        pb = np.clip(((pd - base) * inv_w).astype(np.float32), 0, m + 1).astype(np.intp)
    hist = np.bincount(idx, minlength=m + 2)
    cum = np.concatenate(([0], np.cumsum(hist)))  # cum[b] = items in buckets < b
    below = cum[pb]
    flags = np.zeros(m + 2, dtype=bool)
    flags[pb] = True
    near = np.flatnonzero(np.take(flags, idx))  # items sharing a bucket with some match
    # near items in a lower bucket than match k are below it, in a higher one above, so
    # #near{key < key_k} - #near{bucket < bucket_k} = #near{same bucket, key < key_k}
    nkey = np.sort(_packed_keys(row[near], near))
    nbucket = np.sort(idx[near])
    below += np.searchsorted(nkey, pkey) - np.searchsorted(nbucket, pb)
    return below


def _ranks_by_sort(d, qp, qc, gp, gc, npos, pmax) -> np.ndarray:
    """Same as :func:`_ranks_by_count`, via a stable argsort of every row."""
    order = np.argsort(d, axis=1, kind="stable")
    same_pid = gp[order] == qp[:, None]
    pos = same_pid & (gc[order] != qc[:, None])
    kept = ~same_pid | pos
    kept_rank = np.cumsum(kept, axis=1) - 1
    rows, cols = np.nonzero(pos)  # row-major: columns ascend, i.e. matches in rank order
    starts = np.concatenate(([0], np.cumsum(npos)[:-1]))
    ranks = np.zeros((d.shape[0], pmax), dtype=np.int64)
    ranks[rows, np.arange(len(rows)) - starts[rows]] = kept_rank[rows, cols]
    return ranks
