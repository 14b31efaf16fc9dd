"""Feature-level evaluation that never holds more than a chunk of the distance matrix."""

from __future__ import annotations

import numpy as np
import torch

from .._checks import check_bool, check_int
from .distance import _check_finite, _check_pair, _Kernel
from .qe import _check_qe, _expand
from .rank import RankResult, _check_labels, _run
from .retrieval import _reranker

__all__ = ["evaluate"]

# Default distance chunk: about this many float32 elements (256 MB).
_CHUNK_ELEMS = 1 << 26


@torch.no_grad()
def evaluate(
    query_feats,
    gallery_feats,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    *,
    metric: str = "euclidean",
    max_rank: int = 50,
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
    rerank: bool = False,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    aqe: bool = False,
    aqe_k: int = 5,
    aqe_alpha: float = 3.0,
    aqe_times: int = 1,
    camera_pairs: bool = False,
    kernel: str = "auto",
) -> RankResult:
    """CMC / mAP / mINP from features, computing distances one query chunk at a time.

    Gives the same numbers as ``evaluate_rank(pairwise_distance(q, g, metric), ...)`` while the
    peak extra memory is one ``(chunk_size, G)`` float32 block plus small working arrays.
    Ill-conditioned features (huge or tiny norms, a large common offset) are rescaled or
    centred first (see :mod:`sureid.metrics.distance`), which costs a float32 gallery copy.

    Args:
        query_feats: ``(Q, D)`` tensor or array.
        gallery_feats: ``(G, D)`` tensor or array.
        q_pids, q_camids: ``(Q,)`` integer labels.
        g_pids, g_camids: ``(G,)`` integer labels.
        metric: ``"euclidean"`` (squared, see :func:`pairwise_distance`) or ``"cosine"``.
        max_rank: length of the CMC curve (capped at the gallery size).
        chunk_size: query rows per distance chunk; default ``2**26 // G`` (about 256 MB).
        device: where distances are computed (default: the features' device); ranking runs
            on the CPU.
        rerank: rank by k-reciprocal re-ranked distances (Zhong et al. 2017) with ``k1``,
            ``k2``, ``lambda_value``, in bounded memory (:mod:`sureid.metrics.rerank`).
        aqe: alpha query expansion first, as fast-reid's ``aqe``: every query and gallery
            feature becomes the mean of its ``aqe_k`` most cosine-similar features (itself
            included) weighted by similarity ** ``aqe_alpha``, ``aqe_times`` times
            (:func:`sureid.metrics.alpha_query_expansion`; defaults are fast-reid's). Holds
            a float32 copy of the ``Q + G`` features. Combines with ``rerank`` (QE first).
        camera_pairs: also fill ``result.camera_pairs``: the metrics of each query camera
            against each gallery camera's images (:class:`RankResult`; about twice the
            ranking work, no extra distances).
        kernel: the exact count of the ranking, as in :func:`sureid.metrics.evaluate_rank`
            (same numbers; for tests and benchmarks).

    Returns:
        :class:`RankResult`.

    Raises:
        ValueError: bad shapes, mismatched lengths or dims, empty sets, unknown metric,
            non-finite features, no valid query, ``aqe_k < 1``, ``aqe_alpha < 0``,
            ``aqe_times < 1``.
        TypeError: non-float features, non-integer labels or chunk_size, non-bool ``rerank``
            / ``aqe`` / ``camera_pairs``.

    Example:
        >>> q, g = torch.randn(4, 8), torch.randn(10, 8)
        >>> r = evaluate(q, g, [0, 1, 2, 3], list(range(4)) * 2 + [0, 1], [0] * 4, [1] * 10)
        >>> len(r.cmc)  # max_rank=50 capped at the 10-image gallery
        10
    """
    max_rank = check_int("max_rank", max_rank, low=1)
    for name, flag in (("rerank", rerank), ("aqe", aqe), ("camera_pairs", camera_pairs)):
        check_bool(name, flag)  # "no" is truthy: it would re-rank
    aqe_k, aqe_alpha, aqe_times = _check_qe(aqe_k, aqe_alpha, aqe_times, "aqe_")
    q, g = _check_pair(query_feats, gallery_feats, metric)
    qp, gp, qc, gc = _check_labels(q_pids, g_pids, q_camids, g_camids, q.shape[0], g.shape[0])
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_ELEMS // g.shape[0])
    else:
        chunk_size = check_int("chunk_size", chunk_size, low=1)
    dev = torch.device(device) if device is not None else g.device
    if aqe:
        _check_finite(q, "query_feats")
        _check_finite(g, "gallery_feats")
        both = _expand(torch.cat([q.to(dev, torch.float32), g.to(dev, torch.float32)]),
                       aqe_k, aqe_alpha, aqe_times, dev)
        q, g = both[: q.shape[0]], both[q.shape[0]:]
    if rerank:
        rr = _reranker(q, g, metric, dev, k1=k1, k2=k2, lambda_value=lambda_value)
        return _run(rr.rows, qp, gp, qc, gc, max_rank, chunk_size, "auto",
                    what="distances", camera_pairs=camera_pairs, kernel=kernel)

    # per-gallery constants computed once; well-conditioned (G, D) features are never copied
    dist = _Kernel.build(q, g, metric, dev)

    # one chunk buffer for the whole run: ``_run`` ranks every row of a fetch before it asks
    # for the next one, so the buffer is free again when it is overwritten
    buf = torch.empty((min(chunk_size, q.shape[0]), g.shape[0]), dtype=torch.float32,
                      device=dev)

    def rows(idx: np.ndarray) -> np.ndarray:
        return dist.rows(torch.from_numpy(idx).to(dev), out=buf[: len(idx)]).cpu().numpy()

    return _run(rows, qp, gp, qc, gc, max_rank, chunk_size, "auto", what="distances",
                camera_pairs=camera_pairs, kernel=kernel)
