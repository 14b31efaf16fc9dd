"""The compiled kernel of :mod:`sureid.metrics._fused` (imported only when numba is).

Compiled with ``cache=True``: numba writes the machine code next to this file or, where the
package folder is read-only, into the user's cache folder (``NUMBA_CACHE_DIR`` overrides), so
only the first process on a machine pays the compile. Where no cache folder is
writable at all, the kernel is compiled in every process, as without the cache.
"""

from __future__ import annotations

import numba
import numpy as np

_FLAG = 1 << 30  # offset marking a match's bucket in the histogram (rows hold < 2**30 items)


def _njit(*args, **kwargs):
    """``numba.njit(..., cache=True)``, or without the cache where no folder is writable."""
    def wrap(fn):
        try:
            return numba.njit(*args, cache=True, **kwargs)(fn)
        except RuntimeError:  # numba: "cannot cache function ...: no locator available"
            return numba.njit(*args, cache=False, **kwargs)(fn)
    return wrap


@_njit(nogil=True, inline="always")
def _bucket(v, base, inv_w, top):
    t = (v - base) * inv_w  # float32 throughout (float32 operands)
    return np.int64(min(max(t, np.float32(0.0)), top))  # clip (also +-inf), truncate


@_njit(nogil=True, inline="always")
def _key(bits, v, j):
    # the order-preserving (distance, index) key of _kernels._packed_keys
    b = np.int64(0) if v == 0 else np.int64(bits)  # -0.0 ties with +0.0
    mono = b ^ ((b >> 31) & 0x7FFFFFFF)
    return (mono << 32) | j


@_njit(
    "int64[:](float32[:], int32[:], int64[:], int64[:], float32, float32, int64, int64[:])",
    nogil=True,
)
def below(row, bits, pc, pkey, base, inv_w, m, near):
    p = pc.shape[0]
    top = np.float32(m + 1)
    pb = np.empty(p, np.int64)
    first = np.full(m + 2, -1, np.int64)  # first match (in key order) of each bucket
    hist = np.zeros(m + 2, np.int32)
    for k in range(p):
        b = _bucket(row[pc[k]], base, inv_w, top)
        pb[k] = b
        if first[b] < 0:
            first[b] = k
            hist[b] = -_FLAG  # a match's bucket: negative while counting
    n_near = 0
    for j in range(row.shape[0]):  # the hot loop: one bucket, one histogram access
        b = _bucket(row[j], base, inv_w, top)
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
        b = _bucket(row[j], base, inv_w, top)
        kj = _key(bits[j], row[j], j)
        k = first[b]
        while k < p and pb[k] == b:  # the matches of bucket b are consecutive
            if kj < pkey[k]:
                out[k] += 1
            k += 1
    return out
