"""Market-1501 retrieval protocol (CMC, mAP, mINP) on a query x gallery distance matrix.

The numbers are those of torchreid's ``eval_market1501`` (and fast-reid's mINP):

* for each query, gallery items with the same pid **and** the same camid are removed;
* a query with no remaining true match is skipped and counted in ``num_skipped``;
* ``cmc[r]`` is the fraction of valid queries whose first true match is at rank ``<= r``;
  the curve has ``min(max_rank, num_gallery)`` entries (as torchreid, which truncates
  ``max_rank`` to the gallery size); a valid query's curve stays at 1 after its first match,
  so when a query keeps fewer gallery items than that its curve is padded with 1;
* AP is the mean, over the true matches, of the precision at each match position;
* INP = ``num_rel / (rank of the hardest true match)`` (1-based, Ye et al. 2021);
* ties are broken by gallery index (a *stable* sort), so results are deterministic.
  torchreid uses numpy's unstable default sort, whose tie order is unspecified.

The implementation never argsorts a row: the rank of the k-th true match (0-based, in
distance order) is ``k + #{kept negatives that sort before it}``; only the items not farther
than a row's hardest match can count, and those are sorted by value (numpy's SIMD sort) and
searched. Distances that are not exactly float32, or rows with very many true matches, use a
stable ``argsort`` of the row instead. Both paths are exact.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .._checks import INT64_MAX, INT64_MIN, check_bool, check_int, check_label, is_int
from ._kernels import _compiled, _PidIndex, _ranks_by_count, _ranks_by_sort, check_kernel

__all__ = ["RankResult", "evaluate_rank"]

# Elements of a (rows, gallery) working array processed at once; bounds memory per block.
_BLOCK_ELEMS = 1 << 22
# Above this many true matches in a row, sorting the row is cheaper than counting.
_MAX_POS_FOR_COUNT = 2048
# Ranking threads; None: torch.get_num_threads() (os.cpu_count() without torch).
_THREADS: int | None = None


@dataclass(frozen=True, eq=False)
class RankResult:
    """Outcome of a Market-1501 style evaluation.

    Attributes:
        cmc: ``(min(max_rank, G),)`` float64, ``cmc[r]`` = share of valid queries matched
            within rank r+1.
        mAP: mean average precision over valid queries.
        mINP: mean inverse negative penalty over valid queries.
        num_valid_queries: queries with at least one true match left after camera filtering.
        num_skipped: queries without any, excluded from every average.
        ap: ``(Q,)`` per-query AP, NaN for skipped queries.
        inp: ``(Q,)`` per-query INP, NaN for skipped queries.
        first_match: ``(Q,)`` int64 0-based rank of each query's first true match (after
            camera filtering), -1 for skipped queries; ``first_match == 0`` is a Rank-1 hit.
            With ``ap`` it lets anyone redo statistics per query (paired bootstraps).
        camera_pairs: with ``camera_pairs=True``, ``{(query camid, gallery camid): result}``:
            the queries of one camera against the gallery images of another, each a
            :class:`RankResult` under the same protocol (its per-query arrays cover that
            camera's queries, in their order). Pairs where no query has a true match (every
            same-camera pair, under this protocol) are absent. ``None`` otherwise.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid_queries: int
    num_skipped: int
    ap: np.ndarray = field(repr=False)
    inp: np.ndarray = field(repr=False)
    first_match: np.ndarray = field(repr=False)
    camera_pairs: dict[tuple[int, int], RankResult] | None = field(default=None, repr=False)

    @property
    def rank1(self) -> float:
        """Top-1 accuracy, ``cmc[0]``."""
        return float(self.cmc[0])

    def rank(self, k: int) -> float:
        """Rank-k accuracy (1-based), ``cmc[k - 1]``."""
        if not 1 <= k <= len(self.cmc):
            raise ValueError(f"k must be in [1, {len(self.cmc)}], got {k}")
        return float(self.cmc[k - 1])

    def __repr__(self) -> str:
        return (
            f"RankResult(rank1={self.rank1:.4f}, mAP={self.mAP:.4f}, mINP={self.mINP:.4f}, "
            f"num_valid_queries={self.num_valid_queries}, num_skipped={self.num_skipped})"
        )


# ----------------------------------------------------------------------------- validation
# whole floats above this may have lost the digits that told two labels apart
_EXACT_FLOAT_INT = 2**53


def _as_labels(x, name: str) -> np.ndarray:
    """``x`` as an int64 array of exact integer labels, or an error naming the bad entry.

    Integer arrays pass; unsigned ones must fit int64; whole floats are accepted only where
    a float holds every integer (``|x| <= 2**53``), since ``2.0**63`` and ``2.0**63 + 1`` are
    the same float and would merge two identities; Python ints beyond int64, non-integral
    floats, bools and strings are refused (:func:`sureid._checks.check_label`'s wording).
    """
    try:
        import torch

        if isinstance(x, torch.Tensor):
            x = x.detach().cpu()
            x = (x.double() if x.is_floating_point() else x).numpy()
    except ImportError:  # pragma: no cover
        pass
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if not arr.size:
        return arr.astype(np.int64)
    kind = arr.dtype.kind
    if kind == "i":
        return arr.astype(np.int64)
    if kind == "u":
        bad = np.flatnonzero(arr > INT64_MAX)
    elif kind == "f":
        bad = np.flatnonzero(~(np.isfinite(arr) & (arr == np.round(arr))
                               & (np.abs(arr) <= _EXACT_FLOAT_INT)))
    elif kind == "O":  # Python ints beyond int64, or mixed objects
        bad = [i for i, v in enumerate(arr.tolist())
               if not (is_int(v) and INT64_MIN <= v <= INT64_MAX)]
    else:  # bool, str, complex, ...
        bad = [0]
    if len(bad):
        i = int(bad[0])
        value = arr[i].item() if isinstance(arr[i], np.generic) else arr[i]
        try:
            check_label(f"{name}[{i}]", value)  # raises for every entry found bad
        except (TypeError, ValueError) as err:
            raise type(err)(f"{name} must hold integers, got dtype {arr.dtype}: {err} "
                            "(labels must be exact int64 values; whole floats only up to "
                            "2**53)") from None
    return arr.astype(np.int64)


def _check_labels(q_pids, g_pids, q_camids, g_camids, num_q: int | None, num_g: int | None):
    qp, gp = _as_labels(q_pids, "q_pids"), _as_labels(g_pids, "g_pids")
    qc, gc = _as_labels(q_camids, "q_camids"), _as_labels(g_camids, "g_camids")
    if len(qp) != len(qc):
        raise ValueError(f"q_pids and q_camids differ in length: {len(qp)} vs {len(qc)}")
    if len(gp) != len(gc):
        raise ValueError(f"g_pids and g_camids differ in length: {len(gp)} vs {len(gc)}")
    if num_q is not None and len(qp) != num_q:
        raise ValueError(f"q_pids has length {len(qp)} but there are {num_q} queries")
    if num_g is not None and len(gp) != num_g:
        raise ValueError(f"g_pids has length {len(gp)} but the gallery has {num_g} items")
    if len(qp) == 0:
        raise ValueError("the query set is empty")
    if len(gp) == 0:
        raise ValueError("the gallery is empty")
    return qp, gp, qc, gc


def _as_distmat(distmat) -> np.ndarray:
    try:
        import torch

        if isinstance(distmat, torch.Tensor):
            distmat = distmat.detach().cpu()
            if distmat.dtype in (torch.float16, torch.bfloat16):
                distmat = distmat.float()
            distmat = distmat.numpy()
    except ImportError:  # pragma: no cover
        pass
    d = np.asarray(distmat)
    if d.ndim != 2:
        raise ValueError(f"distmat must be 2-D (num_query, num_gallery), got shape {d.shape}")
    if d.dtype == np.float16:
        d = d.astype(np.float32)
    elif np.issubdtype(d.dtype, np.integer) or d.dtype == np.bool_:
        d = d.astype(np.float64)
    elif not np.issubdtype(d.dtype, np.floating):
        raise TypeError(f"distmat must hold real numbers, got dtype {d.dtype}")
    return d


def _reject_nan_block(d: np.ndarray, what: str) -> None:
    """NaN is an error; ``inf`` is a legal distance (a pair ruled out, ranked last) and passes."""
    if d.size and np.isnan(d.min()):  # min propagates NaN, without a boolean temporary
        raise ValueError(f"{what} contains NaN")


def _num_workers() -> int:
    if _THREADS is not None:
        return max(1, _THREADS)
    try:
        import torch

        return max(1, torch.get_num_threads())
    except ImportError:  # pragma: no cover
        return os.cpu_count() or 1


def _block_stats(d, qp, qc, gp, gc, pidx: _PidIndex, strategy: str, kernel: str = "auto"):
    """First-match rank, AP and INP for a block of query rows ``d`` (B, G); ``kernel`` picks
    the count (:data:`sureid.metrics._kernels.KERNELS`)."""
    rows, cols, npos = pidx.matches(qp, qc)
    pmax = int(npos.max()) if len(npos) else 0
    b = d.shape[0]
    first = np.full(b, -1, dtype=np.int64)
    ap = np.full(b, np.nan)
    inp = np.full(b, np.nan)
    if pmax == 0:
        return first, ap, inp
    d32 = None
    if strategy != "sort" and pmax <= _MAX_POS_FOR_COUNT:
        if d.dtype == np.float32:
            d32 = d
        else:
            with np.errstate(over="ignore"):  # beyond float32's range: not exact, sort instead
                cast = d.astype(np.float32)
            if np.array_equal(cast, d):  # exact in float32, so the packed keys are exact
                d32 = cast
    if strategy == "count" and d32 is None:
        raise ValueError("strategy='count' needs float32-representable distances")
    if d32 is not None:
        ranks = _ranks_by_count(d32, qp, gp, pidx, rows, cols, npos, pmax, kernel)
    else:
        ranks = _ranks_by_sort(d, qp, qc, gp, gc, npos, pmax)
    valid = npos > 0
    k = np.arange(pmax)
    inside = k[None, :] < npos[:, None]
    prec = np.where(inside, (k[None, :] + 1.0) / (ranks + 1.0), 0.0)
    rv, nv = ranks[valid], npos[valid]
    first[valid] = rv[:, 0]
    # sequential sum: padding zeros at the end cannot change it, so blocks don't matter
    ap[valid] = np.cumsum(prec[valid], axis=1)[:, -1] / nv
    inp[valid] = nv / (rv[np.arange(len(rv)), nv - 1] + 1.0)
    return first, ap, inp


def _summarise(first: np.ndarray, ap: np.ndarray, inp: np.ndarray,
               max_rank: int) -> RankResult | None:
    """The :class:`RankResult` of per-query stats (``None`` when no query is valid)."""
    valid = first >= 0
    num_valid = int(valid.sum())
    if num_valid == 0:
        return None
    hits = np.bincount(np.minimum(first[valid], max_rank), minlength=max_rank + 1)[:max_rank]
    return RankResult(
        cmc=np.cumsum(hits) / num_valid,
        mAP=float(np.mean(ap[valid])),
        mINP=float(np.mean(inp[valid])),
        num_valid_queries=num_valid,
        num_skipped=len(first) - num_valid,
        ap=ap,
        inp=inp,
        first_match=first,
    )


class _CameraPairs:
    """Per-query stats against each gallery camera's images, from the rows ``_run`` fetches.

    Restricting the gallery to camera ``b`` is taking its columns; the stats of those columns
    are the query's result on that camera (same protocol, same tie order, since a stable
    sort of a subset keeps the subset's order). One distance pass serves both results.
    """

    def __init__(self, qp, gp, qc, gc, kernel: str = "auto"):
        self.kernel = kernel
        self.qp, self.qc = qp, qc
        self.gp, self.gc = gp, gc
        self.cols = {int(b): np.flatnonzero(gc == b) for b in np.unique(gc)}
        self.pidx = {b: _PidIndex(gp[c], gc[c]) for b, c in self.cols.items()}
        n = len(qp)
        self.stats = {b: (np.full(n, -1, dtype=np.int64), np.full(n, np.nan), np.full(n, np.nan))
                      for b in self.cols}

    def add(self, fetch: np.ndarray, rows: np.ndarray, what: str) -> None:
        block = max(1, _BLOCK_ELEMS // rows.shape[1])
        for t in range(0, len(fetch), block):
            idx, d = fetch[t : t + block], rows[t : t + block]
            _reject_nan_block(d, what)
            for b, cols in self.cols.items():
                first, ap, inp = self.stats[b]
                first[idx], ap[idx], inp[idx] = _block_stats(
                    d[:, cols], self.qp[idx], self.qc[idx], self.gp[cols], self.gc[cols],
                    self.pidx[b], "auto", self.kernel)

    def results(self, max_rank: int) -> dict[tuple[int, int], RankResult]:
        out = {}
        for a in np.unique(self.qc).tolist():
            mine = self.qc == a
            for b, cols in self.cols.items():
                first, ap, inp = self.stats[b]
                r = _summarise(first[mine], ap[mine], inp[mine], min(max_rank, len(cols)))
                if r is not None:
                    out[(int(a), b)] = r
        return out


def _run(
    get_rows: Callable[[np.ndarray], np.ndarray],
    qp,
    gp,
    qc,
    gc,
    max_rank: int,
    rows_per_fetch: int,
    strategy: str,
    what: str,
    camera_pairs: bool = False,
    kernel: str = "auto",
) -> RankResult:
    """Drive the kernels over query blocks; ``get_rows(idx)`` returns distances ``(len(idx), G)``.

    Queries are visited in order of their number of true matches, so each block pads its
    match table to a similar width. Every row of a fetch is ranked before ``get_rows`` is
    called again, so it may return the same buffer each time. Per-query results land at
    their original index, so the outcome does not depend on the block sizes. With
    ``camera_pairs`` each fetch is also ranked against every gallery camera's columns.
    ``kernel`` picks the count (:data:`sureid.metrics._kernels.KERNELS`).
    """
    if strategy not in ("auto", "count", "sort"):
        raise ValueError(f"strategy must be 'auto', 'count' or 'sort', got {strategy!r}")
    num_q, num_g = len(qp), len(gp)
    max_rank = min(max_rank, num_g)  # every valid query is matched within num_g ranks
    pidx = _PidIndex(gp, gc)
    pairs = _CameraPairs(qp, gp, qc, gc, kernel) if camera_pairs else None
    npos = pidx.num_positives(qp, qc)
    order = np.argsort(npos, kind="stable")
    first = np.full(num_q, -1, dtype=np.int64)
    ap = np.full(num_q, np.nan)
    inp = np.full(num_q, np.nan)
    block = max(1, _BLOCK_ELEMS // num_g)
    _compiled(check_kernel(kernel), num_g)  # compile once here, not in every ranking thread

    def work(fetch: np.ndarray, rows: np.ndarray, t: int) -> None:
        idx = fetch[t : t + block]
        d = rows[t : t + block]
        _reject_nan_block(d, what)
        f, a, i = _block_stats(d, qp[idx], qc[idx], gp, gc, pidx, strategy, kernel)
        first[idx], ap[idx], inp[idx] = f, a, i  # disjoint indices per block

    # numpy releases the GIL in the heavy kernels, so blocks of rows rank in parallel
    with ThreadPoolExecutor(max_workers=_num_workers()) as pool:
        for s in range(0, num_q, rows_per_fetch):
            fetch = order[s : s + rows_per_fetch]
            rows = get_rows(fetch)
            if pairs is not None:
                pairs.add(fetch, rows, what)
            steps = range(0, len(fetch), block)
            for _ in pool.map(lambda t, f=fetch, r=rows: work(f, r, t), steps):
                pass
    result = _summarise(first, ap, inp, max_rank)
    if result is None:
        raise ValueError(
            "no query has a true match in the gallery once same-pid same-camera items are "
            "removed; check the pids and camids"
        )
    if pairs is None:
        return result
    return dataclasses.replace(result, camera_pairs=pairs.results(max_rank))


def evaluate_rank(
    distmat,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    max_rank: int = 50,
    *,
    strategy: str = "auto",
    camera_pairs: bool = False,
    kernel: str = "auto",
) -> RankResult:
    """CMC, mAP and mINP under the Market-1501 protocol (see the module docstring).

    Args:
        distmat: ``(Q, G)`` distances (numpy array or tensor; smaller is closer). NaN is an error;
            ``inf`` is allowed.
        q_pids, q_camids: ``(Q,)`` integer query identities and cameras.
        g_pids, g_camids: ``(G,)`` integer gallery identities and cameras.
        max_rank: length of the returned CMC curve (capped at the gallery size).
        strategy: ``"auto"`` (default), ``"count"`` or ``"sort"``; all give the same numbers,
            the choice only changes speed (exposed for tests and benchmarks).
        camera_pairs: also fill ``result.camera_pairs``, the metrics of each query camera
            against each gallery camera (about twice the ranking work).
        kernel: the exact count used where ``strategy`` counts: ``"auto"`` (default, the
            cheapest per row), ``"numpy"`` (never the compiled one), or one count,
            ``"sorted"``, ``"direct"``, ``"bucketed"`` or ``"fused"``, wherever it is valid
            for a row. Same numbers; for tests and benchmarks (docs/evaluation.md).

    Returns:
        :class:`RankResult`.

    Raises:
        ValueError: wrong shapes, mismatched lengths, empty query or gallery, NaN distances,
            ``max_rank < 1``, or no query with a true match.
        TypeError: non-numeric distances, non-integer labels.

    Example:
        >>> import numpy as np
        >>> d = np.array([[0.1, 0.5, 0.3]])
        >>> r = evaluate_rank(d, [1], [1, 1, 2], [0], [1, 2, 1], max_rank=3)
        >>> r.cmc.tolist(), round(r.mAP, 4)
        ([1.0, 1.0, 1.0], 0.8333)
    """
    max_rank = check_int("max_rank", max_rank, low=1)
    check_bool("camera_pairs", camera_pairs)
    d = _as_distmat(distmat)
    qp, gp, qc, gc = _check_labels(q_pids, g_pids, q_camids, g_camids, d.shape[0], d.shape[1])
    # a few blocks per fetch (one per ranking thread), never a full-size copy
    rows = max(1, _num_workers() * _BLOCK_ELEMS // d.shape[1])
    return _run(lambda idx: d[idx], qp, gp, qc, gc, max_rank, rows, strategy, what="distmat",
                camera_pairs=camera_pairs, kernel=kernel)
