"""The bucketed count of :mod:`sureid.metrics.rank` as one compiled pass (optional numba).

``rank._below_bucketed`` needs about ten numpy passes over a row (subtract, scale, clip, cast,
``bincount``, flag lookup, ...), about 5 ns per item. The same count in one loop over the row,
compiled with numba and run without the GIL, is what this module provides when numba is
installed (``pip install 'sureid[fast]'``); without numba :func:`fused_below` is ``None`` and
the numpy kernels are used. Same numbers either way (``tests/metrics/test_rank.py`` forces
every path against the reference loop).

The count, for one row ``x (G,)`` and its matches sorted by ``(distance, index)`` key: every
item gets a bucket ``trunc(clip((x - base) * inv_w, 0, m + 1))``, computed in float32 by one
function for items and matches alike (monotone in ``x``, so an item in a lower bucket than a
match sorts before it, one in a higher bucket after it); a histogram counts the items per
bucket, and only the items that share a bucket with a match are compared by their exact key.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["fused_below"]

_KERNEL: Callable | None = None
_TRIED = False
_FLAG = 1 << 30  # offset marking a match's bucket in the histogram (rows hold < 2**30 items)


def _compile() -> Callable | None:
    try:
        import numba
    except ImportError:
        return None

    @numba.njit(nogil=True, cache=False, inline="always")
    def bucket(v, base, inv_w, top):
        t = (v - base) * inv_w  # float32 throughout (float32 operands)
        return np.int64(min(max(t, np.float32(0.0)), top))  # clip (also +-inf), truncate

    @numba.njit(nogil=True, cache=False, inline="always")
    def key(bits, v, j):
        # the order-preserving (distance, index) key of rank._packed_keys
        b = np.int64(0) if v == 0 else np.int64(bits)  # -0.0 ties with +0.0
        mono = b ^ ((b >> 31) & 0x7FFFFFFF)
        return (mono << 32) | j

    @numba.njit(
        "int64[:](float32[:], int32[:], int64[:], int64[:], float32, float32, int64, int64[:])",
        nogil=True, cache=False,
    )
    def below(row, bits, pc, pkey, base, inv_w, m, near):
        p = pc.shape[0]
        top = np.float32(m + 1)
        pb = np.empty(p, np.int64)
        first = np.full(m + 2, -1, np.int64)  # first match (in key order) of each bucket
        hist = np.zeros(m + 2, np.int32)
        for k in range(p):
            b = bucket(row[pc[k]], base, inv_w, top)
            pb[k] = b
            if first[b] < 0:
                first[b] = k
                hist[b] = -_FLAG  # a match's bucket: negative while counting
        n_near = 0
        for j in range(row.shape[0]):  # the hot loop: one bucket, one histogram access
            b = bucket(row[j], base, inv_w, top)
            h = hist[b]
            hist[b] = h + 1
            if h < 0:
                near[n_near] = j
                n_near += 1
        for k in range(p):
            if hist[pb[k]] < 0:
                hist[pb[k]] += _FLAG
        cum = np.zeros(m + 2, np.int64)  # cum[b] = items in buckets < b
        for b in range(1, m + 2):
            cum[b] = cum[b - 1] + hist[b - 1]
        out = np.empty(p, np.int64)
        for k in range(p):
            out[k] = cum[pb[k]]
        for i in range(n_near):  # items sharing a bucket with a match: exact keys
            j = near[i]
            b = bucket(row[j], base, inv_w, top)
            kj = key(bits[j], row[j], j)
            k = first[b]
            while k < p and pb[k] == b:  # the matches of bucket b are consecutive
                if kj < pkey[k]:
                    out[k] += 1
                k += 1
        return out

    return below


def fused_below() -> Callable | None:
    """The compiled kernel, or ``None`` without numba (compiled on first use, once)."""
    global _KERNEL, _TRIED
    if not _TRIED:
        _KERNEL, _TRIED = _compile(), True
    return _KERNEL
