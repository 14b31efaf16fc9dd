"""Paired statistics over queries and seeds, and the verdicts of the paper's claims.

Every row of an ablation is trained with the same seeds and evaluated on the same queries, so
two rows are compared per query: a query's value of a row is its Rank-1 hit (1 or 0) or its AP,
averaged over the seeds. A claim is a contrast of rows (``+NPKD - +HTS``, or a difference of
differences) and its 95 % interval comes from a paired bootstrap over queries
(``scipy.stats.bootstrap``). A verdict is read from the interval, never from the point
estimate: **reproduced** when the whole interval is on the claimed side of the threshold,
**contradicted** when the whole interval is on the other side, **inconclusive** otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Claim",
    "ClaimResult",
    "contrast_interval",
    "judge",
    "per_query",
    "per_seed_contrast",
    "seed_summary",
    "verdict",
]


def per_query(first_match: np.ndarray, ap: np.ndarray) -> dict[str, np.ndarray]:
    """``{"rank1": (Q,), "mAP": (Q,)}`` in percent from a :class:`~sureid.metrics.RankResult`'s
    ``first_match`` and ``ap`` (skipped queries, ``first_match == -1``, are dropped)."""
    first_match, ap = np.asarray(first_match), np.asarray(ap, dtype=np.float64)
    if first_match.shape != ap.shape or first_match.ndim != 1:
        raise ValueError(f"first_match and ap must be equal-length 1-D arrays, got shapes "
                         f"{first_match.shape} and {ap.shape}")
    valid = first_match >= 0
    return {"rank1": 100.0 * (first_match[valid] == 0), "mAP": 100.0 * ap[valid]}


def seed_summary(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0 for one seed) of per-seed scores."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty 1-D sequence, got shape {v.shape}")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def contrast_interval(
    rows: Sequence[np.ndarray], weights: Sequence[float], *, confidence: float = 0.95,
    n_resamples: int = 2000, seed: int = 0,
) -> tuple[float, float, float]:
    """Point estimate and paired bootstrap interval of ``mean_q sum_i w_i x_i[s, q]``.

    Args:
        rows: one ``(S, Q)`` array per row: per-seed, per-query values, the same seeds and
            queries in the same order in every row.
        weights: the contrast, e.g. ``(1, -1)`` for "row 0 minus row 1".
        confidence, n_resamples, seed: of the percentile bootstrap over queries (resampling
            whole queries keeps the pairing across rows and seeds).

    Returns:
        ``(estimate, low, high)``.
    """
    from scipy import stats  # a core dependency, imported where it is used

    # per query: the contrast averaged over seeds; the bootstrap resamples queries
    c = _contrast(rows, weights).mean(axis=0)
    estimate = float(c.mean())
    if np.ptp(c) == 0:  # every query agrees: the bootstrap distribution is a point
        return estimate, estimate, estimate
    res = stats.bootstrap((c,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                          method="percentile", rng=np.random.default_rng(seed))
    return estimate, float(res.confidence_interval.low), float(res.confidence_interval.high)


def per_seed_contrast(rows: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """``(S,)``: the contrast ``mean_q sum_i w_i x_i[s, q]`` of each seed on its own.

    The bootstrap interval resamples queries with the seeds fixed; these per-seed values show
    the part it does not: how much the contrast moves from one training seed to the next.
    """
    return _contrast(rows, weights).mean(axis=1)


def _contrast(rows: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """``(S, Q)``: ``sum_i w_i x_i[s, q]``, after checking the rows (same shape, finite)."""
    if len(rows) != len(weights) or not rows:
        raise ValueError(f"rows and weights must have the same non-zero length, got "
                         f"{len(rows)} and {len(weights)}")
    arrs = [np.atleast_2d(np.asarray(r, dtype=np.float64)) for r in rows]
    if len({a.shape for a in arrs}) != 1:
        raise ValueError(f"every row must have the same (seeds, queries) shape, got "
                         f"{[a.shape for a in arrs]}")
    if not all(np.isfinite(a).all() for a in arrs):
        raise ValueError("rows must be finite (drop skipped queries first)")
    return sum(w * a for w, a in zip(weights, arrs, strict=True))


def verdict(low: float, high: float, *, direction: str, threshold: float = 0.0) -> str:
    """``"reproduced"``, ``"contradicted"`` or ``"inconclusive"`` from an interval.

    ``direction=">"`` claims the quantity exceeds ``threshold``, ``"<"`` that it is below it.
    """
    if direction not in (">", "<"):
        raise ValueError(f"direction must be '>' or '<', got {direction!r}")
    above, below = low > threshold, high < threshold
    if direction == "<":
        above, below = below, above
    return "reproduced" if above else "contradicted" if below else "inconclusive"


@dataclass(frozen=True)
class Claim:
    """A claim of the paper as a contrast of table rows: ``sum_i w_i row_i  <direction>  t``."""

    text: str
    terms: tuple[tuple[str, float], ...]  # (row name, weight)
    direction: str = ">"
    threshold: float = 0.0


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    metric: str
    estimate: float
    low: float
    high: float
    verdict: str
    per_seed: tuple[float, ...] = ()

    @property
    def seeds_agree(self) -> bool:
        """Every seed's own contrast is on the verdict's side of the threshold (always False
        for an inconclusive verdict): a decided verdict that the seeds do not all share rests
        on the queries of a few lucky seeds and deserves more seeds."""
        if self.verdict == "inconclusive" or not self.per_seed:
            return False
        t = self.claim.threshold
        claimed = [v > t if self.claim.direction == ">" else v < t for v in self.per_seed]
        return all(claimed) if self.verdict == "reproduced" else not any(claimed)


def judge(
    claims: Sequence[Claim], values: Mapping[str, Mapping[str, np.ndarray]], *,
    metrics: Sequence[str] = ("rank1", "mAP"), n_resamples: int = 2000, seed: int = 0,
) -> list[ClaimResult]:
    """Each claim whose rows are all in ``values`` (``row -> metric -> (S, Q)``), per metric."""
    out = []
    for claim in claims:
        if not all(name in values for name, _ in claim.terms):
            continue
        for m in metrics:
            rows, weights = [values[n][m] for n, _ in claim.terms], [w for _, w in claim.terms]
            est, lo, hi = contrast_interval(rows, weights, n_resamples=n_resamples, seed=seed)
            out.append(ClaimResult(claim, m, est, lo, hi,
                                   verdict(lo, hi, direction=claim.direction,
                                           threshold=claim.threshold),
                                   tuple(float(v) for v in per_seed_contrast(rows, weights))))
    return out
