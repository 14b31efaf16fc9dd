"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) with bounded memory.

The toolkits' version (torchreid, reid-strong-baseline/TransReID, fast-reid's numpy path)
builds dense ``(Q+G, Q+G)`` matrices: the distances, their full argsort and ``V``. That is
``(Q+G)^2`` floats and int32s several times over (about 30 GB at 52,000 items). Here only
these are ever held:

* the first ``max(k1 + 1, k2)`` neighbours of every item, ``(Q+G, k1+1)`` int64;
* ``V`` (and its query-expanded form) as a sparse matrix: a row has a few dozen entries;
* one block of distance rows at a time, ``(chunk, Q+G)`` float32, computed from the features
  with the same kernel as :func:`sureid.metrics.evaluate`, conditioned the same way (huge or
  tiny norms rescaled by a power of two, a large common offset removed; see
  :mod:`sureid.metrics.distance`), which costs a float32 copy of the ``Q+G`` features for
  such inputs.

The numbers are the toolkits' numbers. With ``d`` the original distance (sureid's ``metric``;
squared euclidean by default, the distance reid-strong-baseline and TransReID feed in) among
all ``N = Q + G`` items, queries first:

1. ``d_i <- d_i / max(d_i)``, each row by its maximum (the toolkits divide the columns of
   ``[[q_q, q_g], [q_g.T, g_g]]`` and transpose: the same when the matrix is symmetric,
   which floating-point distances are only up to rounding); ``rank_i`` = stable argsort of
   ``d_i`` (ties by item index, where the toolkits' default sort leaves them unspecified);
2. ``R(i, k)`` = items ``j`` in ``rank_i[:k+1]`` with ``i`` in ``rank_j[:k+1]``;
   ``R*(i) = R(i, k1)`` plus every ``R(c, round(k1/2))``, ``c`` in ``R(i, k1)``, sharing
   more than 2/3 of its items with ``R(i, k1)``;
3. ``V[i, j] = exp(-d_ij) / sum_{j' in R*(i)} exp(-d_ij')`` on ``R*(i)`` (Eq. 7);
4. local query expansion: ``V_i <- mean(V[rank_i[:k2]])`` (Eq. 11, when ``k2 > 1``);
5. ``d_J(i, j) = 1 - m / (2 - m)``, ``m = sum_k min(V_ik, V_jk)`` (Eq. 10);
6. ``d* = (1 - lambda) d_J + lambda d`` (Eq. 12), query rows, gallery columns.

Every floating-point step is done in float32 in the reference's order (sums over the
neighbours in rank order, the Jaccard sum over ``k`` ascending), so the result equals a
straightforward dense implementation on the ``(N, N)`` matrix of the same distances
(``tests/metrics/rerank_reference.py``) bit for bit on the CPU, ties included. ``V`` is
float32 as in torchreid (reid-strong-baseline stores it in float16). torchreid's
``re_ranking(q_g, q_q, g_g)`` squares the distances it is given (so on its squared euclidean
distance it re-ranks ``d^2``); to reproduce that, pass squared matrices to
:func:`sureid.metrics.rerank_distmat`. The front ends that take features or distance
matrices (:func:`~sureid.metrics.rerank`, :func:`~sureid.metrics.rerank_distmat`,
:func:`~sureid.metrics.rank_gallery`) live in :mod:`sureid.metrics.retrieval`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .._checks import check_int, check_real
from ._kernels import _packed_keys

__all__ = ["KReciprocalReranker"]

# Elements of a (rows, N) float32 distance block (64 MB); bounds every dense working array.
_CHUNK_ELEMS = 1 << 24
# Elements of the (rows, k1+1, k+1, ...) neighbour comparisons done at once.
_CMP_ELEMS = 1 << 24
# (query, gallery) pairs of the Jaccard sum gathered at once.
_PAIR_ELEMS = 1 << 23


def _check_params(k1: int, k2: int, lambda_value: float) -> tuple[int, int, float]:
    return (check_int("k1", k1, low=1), check_int("k2", k2, low=1),
            check_real("lambda_value", lambda_value, low=0.0, high=1.0))


def _smallest_k(d: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` smallest entries of each row of ``d`` ``(B, N)`` float32, in stable
    argsort order (ties by index): ``np.argsort(d, kind="stable")[:, :k]`` without the sort."""
    b, n = d.shape
    if k >= n:
        return np.argsort(d, axis=1, kind="stable")
    kth = torch.topk(torch.from_numpy(d), k, dim=1, largest=False, sorted=True).values[:, -1]
    cand = d <= kth.numpy()[:, None]  # every entry that can be among the k: >= k per row
    rows, cols = np.nonzero(cand)  # row-major: columns ascend within a row
    counts = np.bincount(rows, minlength=b)
    keys = _packed_keys(d[rows, cols], cols.astype(np.int64))
    if np.all(counts == k):  # no tie at the boundary (the usual case)
        keys = np.sort(keys.reshape(b, k), axis=1)
        return (keys & 0xFFFFFFFF).astype(np.int64)
    out = np.empty((b, k), dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)))
    for r in range(b):  # boundary ties: keep the lowest indices among them
        kr = np.sort(keys[starts[r] : starts[r + 1]])[:k]
        out[r] = kr & 0xFFFFFFFF
    return out


def _normalise_rows(d: np.ndarray) -> np.ndarray:
    m = d.max(axis=1, keepdims=True)
    m[m <= 0] = 1.0  # a row of zeros (all items identical) stays zero instead of NaN
    return np.divide(d, m, out=d)


def _reciprocal(rank: np.ndarray, k: int) -> np.ndarray:
    """``R(i, k)`` of every item as a ``(N, k+1)`` array in rank order, padded with -1."""
    n = rank.shape[0]
    fwd = rank[:, : k + 1]
    out = np.full_like(fwd, -1)
    step = max(1, _CMP_ELEMS // ((k + 1) * (k + 1)))
    for s in range(0, n, step):
        f = fwd[s : s + step]
        back = rank[f, : k + 1]  # (c, k+1, k+1)
        me = np.arange(s, s + len(f))[:, None, None]
        hit = (back == me).any(axis=2)
        out[s : s + step] = np.where(hit, f, -1)
    return out


def _expansion_sets(r1: np.ndarray, rh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``R*(i)`` of every item as CSR ``(indptr, indices)``, indices ascending per row."""
    n, w1 = r1.shape
    wh = rh.shape[1]
    parts, lengths = [], []
    step = max(1, _CMP_ELEMS // (w1 * wh * w1))
    for s in range(0, n, step):
        ri = r1[s : s + step]  # (c, w1)
        cand = np.where(ri[..., None] >= 0, rh[np.maximum(ri, 0)], -1)  # (c, w1, wh)
        valid = cand >= 0
        shared = ((cand[..., None] == ri[:, None, None, :]) & valid[..., None]).any(axis=3)
        n_c = valid.sum(axis=2)
        # the reference's test, in the same float arithmetic
        accept = (ri >= 0) & (shared.sum(axis=2) > 2.0 / 3 * n_c)
        members = np.concatenate(
            [ri, np.where(accept[..., None], cand, -1).reshape(len(ri), -1)], axis=1
        )
        members.sort(axis=1)
        keep = members >= 0
        keep[:, 1:] &= members[:, 1:] != members[:, :-1]
        lengths.append(keep.sum(axis=1))
        parts.append(members[keep])
    counts = np.concatenate(lengths)
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return indptr, np.concatenate(parts).astype(np.int64)


class KReciprocalReranker:
    """k-reciprocal re-ranked distances of queries to a gallery, row block by row block.

    Building the object does the work shared by all queries (neighbour lists and the sparse
    ``V`` of every item, two passes over the distances); :meth:`rows` then gives re-ranked
    ``(len(idx), G)`` float32 rows for any queries, in bounded memory. See the module
    docstring for the algorithm and its equality with the dense reference.

    Args:
        get_rows: ``get_rows(idx)`` returns the original distances of items ``idx`` (an int64
            array) to all ``N`` items (queries first), ``(len(idx), N)`` float32. A row must
            not depend on which other rows are asked for with it.
        num_query: ``Q``; items ``Q..N-1`` are the gallery.
        num_items: ``N = Q + G``.
        k1, k2, lambda_value: as in the paper (defaults 20, 6, 0.3).
        chunk_rows: distance rows per block (default ``2**24 // N``, 64 MB).
    """

    def __init__(
        self,
        get_rows: Callable[[np.ndarray], np.ndarray],
        num_query: int,
        num_items: int,
        *,
        k1: int = 20,
        k2: int = 6,
        lambda_value: float = 0.3,
        chunk_rows: int | None = None,
    ) -> None:
        self.k1, self.k2, self.lambda_value = _check_params(k1, k2, lambda_value)
        if not 0 < num_query < num_items:
            raise ValueError(
                f"need at least one query and one gallery item, got Q={num_query}, "
                f"N={num_items}"
            )
        self._get_rows = get_rows
        self.num_query = int(num_query)
        self.num_items = int(num_items)
        self.num_gallery = self.num_items - self.num_query
        n = self.num_items
        self._chunk = int(chunk_rows) if chunk_rows else max(1, _CHUNK_ELEMS // n)
        width = min(n, max(self.k1 + 1, self.k2))
        # pass 1: the first `width` neighbours of every item
        rank = np.empty((n, width), dtype=np.int64)
        for s in range(0, n, self._chunk):
            block = self._block(np.arange(s, min(s + self._chunk, n)))
            rank[s : s + len(block)] = _smallest_k(block, width)
        self._rank = rank
        kh = int(np.around(self.k1 / 2.0))
        r1 = _reciprocal(rank, min(self.k1, width - 1))
        rh = _reciprocal(rank, min(kh, width - 1))
        indptr, indices = _expansion_sets(r1, rh)
        # pass 2: Gaussian weights on R*(i) (Eq. 7), per row in the reference's order
        data = np.empty(len(indices), dtype=np.float32)
        for s in range(0, n, self._chunk):
            d = self._block(np.arange(s, min(s + self._chunk, n)))
            for r in range(d.shape[0]):
                a, b = indptr[s + r], indptr[s + r + 1]
                w = np.exp(-d[r, indices[a:b]])
                data[a:b] = w / np.sum(w)
        if self.k2 > 1:
            indptr, indices, data = self._query_expansion(indptr, indices, data)
        self._indptr, self._indices, self._data = indptr, indices, data
        # inverted index over the gallery rows: column k -> gallery rows j with V[j, k] != 0
        self._build_inverted_index()

    def _block(self, idx: np.ndarray) -> np.ndarray:
        """Normalised distance rows ``(len(idx), N)`` float32 (step 1)."""
        d = np.asarray(self._get_rows(idx), dtype=np.float32)
        if d.shape != (len(idx), self.num_items):
            raise ValueError(
                f"get_rows returned shape {d.shape}, expected {(len(idx), self.num_items)}"
            )
        return _normalise_rows(np.array(d, dtype=np.float32, copy=True))

    def _query_expansion(self, indptr, indices, data):
        """``V_i <- mean(V[rank_i[:k2]])``, summed in rank order as ``np.mean(axis=0)`` does."""
        n, k2 = self.num_items, self.k2
        lens = np.diff(indptr)
        new_ptr, new_idx, new_val = [np.zeros(1, dtype=np.int64)], [], []
        for s in range(0, n, self._chunk):
            nb = self._rank[s : s + self._chunk, :k2]  # (c, k2'), k2' = min(k2, N)
            c, kk = nb.shape
            src = nb.reshape(-1)  # row-major: per query, its neighbours in rank order
            ln = lens[src]
            owner = np.repeat(np.repeat(np.arange(c), kk), ln)
            pos = np.repeat(indptr[src] - np.cumsum(ln) + ln, ln) + np.arange(ln.sum())
            acc = np.zeros((c, n), dtype=np.float32)
            np.add.at(acc, (owner, indices[pos]), data[pos])  # sequential: rank order
            r, col = np.nonzero(acc)
            new_idx.append(col.astype(np.int64))
            new_val.append(acc[r, col] / np.float32(kk))
            new_ptr.append(np.bincount(r, minlength=c))
        counts = np.concatenate(new_ptr)
        return np.cumsum(counts), np.concatenate(new_idx), np.concatenate(new_val)

    def _build_inverted_index(self) -> None:
        q = self.num_query
        start = self._indptr[q]
        rows = np.repeat(np.arange(self.num_gallery), np.diff(self._indptr[q:]))
        cols = self._indices[start:]
        order = np.argsort(cols, kind="stable")  # per column, gallery rows ascending
        self._inv_rows = rows[order]
        self._inv_vals = self._data[start:][order]
        self._inv_ptr = np.concatenate(
            ([0], np.cumsum(np.bincount(cols, minlength=self.num_items)))
        ).astype(np.int64)

    def _jaccard(self, queries: np.ndarray) -> np.ndarray:
        """``(len(queries), G)`` Jaccard distances (Eq. 10), sums over ``k`` ascending."""
        g = self.num_gallery
        out = np.zeros((len(queries), g), dtype=np.float32)
        ptr, idx, val = self._indptr, self._indices, self._data
        lens = ptr[queries + 1] - ptr[queries]
        owner = np.repeat(np.arange(len(queries)), lens)
        pos = np.repeat(ptr[queries] - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
        ks, vq = idx[pos], val[pos]  # per query, its k ascending
        clen = self._inv_ptr[ks + 1] - self._inv_ptr[ks]
        bounds = np.concatenate(([0], np.cumsum(clen)))
        # split the (query, k) list so that each slice gathers at most _PAIR_ELEMS pairs
        s = 0
        while s < len(ks):
            e = int(np.searchsorted(bounds, bounds[s] + _PAIR_ELEMS, side="right")) - 1
            e = max(e, s + 1)
            cl = clen[s:e]
            gpos = np.repeat(self._inv_ptr[ks[s:e]] - np.cumsum(cl) + cl, cl) + np.arange(
                cl.sum()
            )
            m = np.minimum(np.repeat(vq[s:e], cl), self._inv_vals[gpos])
            np.add.at(out, (np.repeat(owner[s:e], cl), self._inv_rows[gpos]), m)
            s = e
        return 1 - out / (2.0 - out)

    def rows(self, queries) -> np.ndarray:
        """Re-ranked distances ``(len(queries), G)`` float32 of the given query indices."""
        queries = np.asarray(queries, dtype=np.int64).reshape(-1)
        if len(queries) and (queries.min() < 0 or queries.max() >= self.num_query):
            raise IndexError(f"query indices must be in [0, {self.num_query})")
        out = np.empty((len(queries), self.num_gallery), dtype=np.float32)
        lam = self.lambda_value
        for s in range(0, len(queries), self._chunk):
            qi = queries[s : s + self._chunk]
            d = self._block(qi)[:, self.num_query :]
            out[s : s + len(qi)] = self._jaccard(qi) * (1 - lam) + d * lam
        return out
