"""Retrieval front ends: re-ranked distances and the top-k gallery items of each query.

:func:`rerank` and :func:`rerank_distmat` give whole ``(Q, G)`` k-reciprocal re-ranked
matrices (the algorithm is :class:`sureid.metrics.rerank.KReciprocalReranker`);
:func:`rank_gallery` keeps only each query's ``topk`` closest gallery items, in bounded
memory, by the plain or the re-ranked distances; :func:`ranked_lists` does the same with
the Market-1501 rule (a query's own pid seen by its own camera is left out) when labels
are given, and says which items share the query's pid.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

import numpy as np
import torch

from .._checks import check_bool, check_int
from .distance import _check_finite, _check_pair, _Kernel
from .rank import _check_labels
from .rerank import _CHUNK_ELEMS, KReciprocalReranker, _smallest_k

__all__ = ["RankedLists", "rank_gallery", "ranked_lists", "rerank", "rerank_distmat"]


def _feature_rows(query_feats, gallery_feats, metric: str, device):
    """``get_rows(idx)`` over the stacked features, with evaluate()'s (conditioned) kernel.

    The rows are the kernel's, ``scale * distance``: the re-ranking divides every row by its
    maximum, and ``scale`` is a power of two, so they normalise to the same float32 values
    as the distances themselves, and stay finite where those would overflow float32.
    """
    q, g = _check_pair(query_feats, gallery_feats, metric)
    dev = torch.device(device) if device is not None else g.device
    _check_finite(q, "query_feats")
    _check_finite(g, "gallery_feats")
    dtype = torch.promote_types(q.dtype, g.dtype)  # float64 features stay float64
    x = torch.cat([q.to(dev, dtype), g.to(dev, dtype)])
    kernel = _Kernel.build(x, x, metric, dev, names=None)

    def get_rows(idx: np.ndarray) -> np.ndarray:
        return kernel.rows(torch.from_numpy(idx).to(dev)).cpu().numpy()

    return get_rows, q.shape[0], x.shape[0]


def _reranker(query_feats, gallery_feats, metric, device, *, k1, k2, lambda_value):
    """The :class:`KReciprocalReranker` of the features (``rows(idx)``: ``(len(idx), G)``)."""
    get_rows, nq, n = _feature_rows(query_feats, gallery_feats, metric, device)
    return KReciprocalReranker(get_rows, nq, n, k1=k1, k2=k2, lambda_value=lambda_value)


def _plain_blocks(query_feats, gallery_feats, metric, device):
    """``(block, unscale, Q, G)`` for ranking by the metric's own distances.

    ``block(s, e)`` gives the kernel rows ``(e - s, G)`` of queries ``s..e-1`` (rescaled
    when the features were, see :class:`_Kernel`), at most ``2**24 // G`` rows at a time;
    ``unscale`` turns values picked from them into :func:`pairwise_distance`'s.
    """
    q, g = _check_pair(query_feats, gallery_feats, metric)
    dev = torch.device(device) if device is not None else g.device
    kernel = _Kernel.build(q, g, metric, dev)
    nq, ng = q.shape[0], g.shape[0]
    # one buffer for every block: each is ranked before the next one overwrites it
    buf = torch.empty((min(nq, max(1, _CHUNK_ELEMS // ng)), ng), dtype=torch.float32,
                      device=dev)

    def block(s: int, e: int) -> np.ndarray:
        idx = torch.arange(s, e, device=dev)
        return kernel.rows(idx, out=buf[: e - s]).cpu().numpy()

    def unscale(d: np.ndarray) -> np.ndarray:
        return kernel.unscale(torch.from_numpy(d)).numpy()

    return block, unscale, nq, ng


@torch.no_grad()
def rerank(
    query_feats,
    gallery_feats,
    *,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    metric: str = "euclidean",
    device: torch.device | str | None = None,
) -> np.ndarray:
    """k-reciprocal re-ranked query x gallery distances (Zhong et al. 2017, Eq. 12).

    The ``(Q, G)`` result is returned whole; for large galleries use
    ``evaluate(..., rerank=True)`` or :func:`rank_gallery`, which never hold it.

    Args:
        query_feats: ``(Q, D)``; gallery_feats: ``(G, D)`` (tensors or arrays).
        k1, k2, lambda_value: neighbourhood size, query-expansion size, weight of the original
            distance (the paper's 20, 6, 0.3).
        metric: original distance, ``"euclidean"`` (squared) or ``"cosine"``.
        device: where the distances are computed (default: the features' device).

    Returns:
        ``(Q, G)`` float32 numpy array; smaller is closer.

    Example:
        >>> d = rerank(torch.randn(3, 8), torch.randn(30, 8))
        >>> d.shape
        (3, 30)
    """
    rr = _reranker(query_feats, gallery_feats, metric, device, k1=k1, k2=k2,
                   lambda_value=lambda_value)
    return rr.rows(np.arange(rr.num_query))


def rerank_distmat(
    q_g_dist, q_q_dist, g_g_dist, *, k1: int = 20, k2: int = 6, lambda_value: float = 0.3
) -> np.ndarray:
    """:func:`rerank` on precomputed distances (torchreid's ``re_ranking`` arguments).

    Unlike torchreid, the distances are used as given (torchreid squares them first; pass
    ``q_g_dist ** 2`` etc. to reproduce it).

    Args:
        q_g_dist: ``(Q, G)``; q_q_dist: ``(Q, Q)``; g_g_dist: ``(G, G)`` distances.

    Returns:
        ``(Q, G)`` float32 re-ranked distances.
    """
    qg = np.asarray(q_g_dist, dtype=np.float32)
    qq = np.asarray(q_q_dist, dtype=np.float32)
    gg = np.asarray(g_g_dist, dtype=np.float32)
    nq, ng = qg.shape if qg.ndim == 2 else (0, 0)
    if qg.ndim != 2 or qq.shape != (nq, nq) or gg.shape != (ng, ng):
        raise ValueError(
            f"expected q_g_dist (Q, G), q_q_dist (Q, Q), g_g_dist (G, G), got "
            f"{qg.shape}, {qq.shape}, {gg.shape}"
        )
    if not (np.isfinite(qg).all() and np.isfinite(qq).all() and np.isfinite(gg).all()):
        raise ValueError("distances must be finite (found NaN or inf)")

    top = np.concatenate([qq, qg], axis=1)  # dense inputs: the (N, N) matrix is small anyway

    def get_rows(idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), nq + ng), dtype=np.float32)
        isq = idx < nq
        out[isq] = top[idx[isq]]
        gi = idx[~isq] - nq
        out[~isq] = np.concatenate([qg[:, gi].T, gg[gi]], axis=1)
        return out

    rr = KReciprocalReranker(get_rows, nq, nq + ng, k1=k1, k2=k2, lambda_value=lambda_value)
    return rr.rows(np.arange(nq))


@torch.no_grad()
def rank_gallery(
    query_feats,
    gallery_feats,
    *,
    topk: int = 10,
    metric: str = "euclidean",
    rerank: bool = False,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``topk`` closest gallery items of every query, in bounded memory.

    Distances come from the kernel of :func:`sureid.metrics.evaluate` (ill-conditioned
    features are conditioned first, see :mod:`sureid.metrics.distance`), one block of about
    ``2**24`` distances at a time. Ties are broken by gallery index, as in
    :func:`sureid.metrics.evaluate`.

    Args:
        query_feats: ``(Q, D)``; gallery_feats: ``(G, D)`` (tensors or arrays, not empty).
        topk: items kept per query (an int ``>= 1``; numpy integers too).
        metric: ``"euclidean"`` (squared) or ``"cosine"``.
        rerank, k1, k2, lambda_value: rank by k-reciprocal re-ranked distances
            (:func:`rerank`).
        device: where the distances are computed (default: the features' device).

    Returns:
        ``(indices (Q, k) int64, distances (Q, k) float32)`` with ``k = min(topk, G)``;
        distances are :func:`sureid.metrics.pairwise_distance`'s values (``inf`` beyond
        float32's range, while the ranking uses their rescaled values), re-ranked ones when
        ``rerank``.

    Raises:
        ValueError: ``topk < 1``, bad shapes, an empty set, NaN or inf, unknown metric.
        TypeError: non-integer ``topk`` (bools too), non-bool ``rerank``, non-float features.

    Example:
        >>> idx, dist = rank_gallery(torch.randn(2, 8), torch.randn(20, 8), topk=5)
        >>> idx.shape
        (2, 5)
    """
    topk = check_int("topk", topk, low=1)
    if check_bool("rerank", rerank):
        rr = _reranker(query_feats, gallery_feats, metric, device, k1=k1, k2=k2,
                       lambda_value=lambda_value)
        nq, ng = rr.num_query, rr.num_gallery

        def block(s: int, e: int) -> np.ndarray:
            return rr.rows(np.arange(s, e))

        def unscale(d: np.ndarray) -> np.ndarray:
            return d  # re-ranked distances: nothing to undo
    else:
        block, unscale, nq, ng = _plain_blocks(query_feats, gallery_feats, metric, device)
    k = min(topk, ng)
    chunk = max(1, _CHUNK_ELEMS // ng)
    idx = np.empty((nq, k), dtype=np.int64)
    dist = np.empty((nq, k), dtype=np.float32)
    for s in range(0, nq, chunk):
        d = block(s, min(s + chunk, nq))
        top = _smallest_k(d, k)
        idx[s : s + len(d)] = top
        dist[s : s + len(d)] = unscale(np.take_along_axis(d, top, axis=1))
    return idx, dist


class RankedLists(NamedTuple):
    """Each query's closest gallery items, as :func:`ranked_lists` gives them.

    Attributes:
        indices: ``(Q, k)`` int64 gallery indices, closest first; ``-1`` pads a row whose
            query has fewer than ``k`` gallery items left.
        distances: ``(Q, k)`` float32 distances of those items; ``inf`` where padded.
        matches: ``(Q, k)`` bool, the item has the query's pid (``False`` where padded);
            ``None`` without labels.
    """

    indices: np.ndarray
    distances: np.ndarray
    matches: np.ndarray | None


def ranked_lists(
    query_feats,
    gallery_feats,
    *,
    topk: int = 10,
    q_pids=None,
    g_pids=None,
    q_camids=None,
    g_camids=None,
    metric: str = "euclidean",
    rerank: bool = False,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    device: torch.device | str | None = None,
) -> RankedLists:
    """The ``topk`` closest gallery items of every query, leaving out, as evaluation does,
    the gallery items with the query's pid and camera.

    The ranking is :func:`rank_gallery`'s (ties by gallery index). With labels, each
    query's list skips the gallery items of its own pid seen by its own camera and goes on
    to the next ones; without labels (all four ``None``) nothing is left out.

    Args:
        query_feats: ``(Q, D)``; gallery_feats: ``(G, D)`` (tensors or arrays, not empty).
        topk: items per query (an int ``>= 1``).
        q_pids, q_camids: ``(Q,)``; g_pids, g_camids: ``(G,)`` integer labels; all four or
            none.
        metric, rerank, k1, k2, lambda_value, device: as for :func:`rank_gallery`.

    Returns:
        :class:`RankedLists` of ``(Q, k)`` arrays, ``k = min(topk, G)``.

    Raises:
        TypeError: some labels given and others not, non-integer labels or ``topk``, and
            what :func:`rank_gallery` refuses.
        ValueError: label lengths that do not fit the features, and what
            :func:`rank_gallery` refuses.

    Example:
        >>> g = torch.tensor([[0.0], [1.0], [2.0]])
        >>> r = ranked_lists(torch.tensor([[0.0]]), g, topk=2, q_pids=[7], q_camids=[0],
        ...                  g_pids=[7, 7, 3], g_camids=[0, 1, 0])
        >>> r.indices.tolist(), r.matches.tolist()  # gallery 0: pid 7 by camera 0, left out
        ([[1, 2]], [[True, False]])
    """
    topk = check_int("topk", topk, low=1)
    kwargs = dict(metric=metric, rerank=rerank, k1=k1, k2=k2, lambda_value=lambda_value,
                  device=device)
    given = [x is not None for x in (q_pids, g_pids, q_camids, g_camids)]
    if not any(given):
        idx, dist = rank_gallery(query_feats, gallery_feats, topk=topk, **kwargs)
        return RankedLists(idx, dist, None)
    if not all(given):
        raise TypeError("q_pids, g_pids, q_camids and g_camids go together: give all four "
                        "or none")
    q, g = _check_pair(query_feats, gallery_feats, metric)
    qp, gp, qc, gc = _check_labels(q_pids, g_pids, q_camids, g_camids, q.shape[0], g.shape[0])
    # room for the items left out: no query loses more than the largest (pid, camera) group
    group = Counter(zip(gp.tolist(), gc.tolist(), strict=True))
    extra = max(group.get(key, 0) for key in zip(qp.tolist(), qc.tolist(), strict=True))
    idx, dist = rank_gallery(q, g, topk=topk + extra, **kwargs)
    left_out = (gp[idx] == qp[:, None]) & (gc[idx] == qc[:, None])
    # the items kept first, each part in rank order (a stable sort of the flags)
    order = np.argsort(left_out, axis=1, kind="stable")[:, : min(topk, g.shape[0])]
    pad = np.take_along_axis(left_out, order, axis=1)
    indices = np.where(pad, -1, np.take_along_axis(idx, order, axis=1))
    distances = np.where(pad, np.float32(np.inf), np.take_along_axis(dist, order, axis=1))
    matches = (gp[indices] == qp[:, None]) & ~pad
    return RankedLists(indices, distances, matches)
