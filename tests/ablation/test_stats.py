"""Paired statistics of the ablation against brute-force references."""

import numpy as np
import pytest

from sureid.ablation.stats import (
    Claim,
    ClaimResult,
    contrast_interval,
    judge,
    per_query,
    per_seed_contrast,
    seed_summary,
    verdict,
)
from sureid.metrics import evaluate_rank
from tests.metrics.reference import reference_eval


def brute_force_bootstrap(rows, weights, n, seed, confidence=0.95):
    """A plain loop: resample queries with replacement, recompute the contrast, percentiles."""
    rng = np.random.default_rng(seed)
    per_q = sum(w * np.asarray(r, float) for w, r in zip(weights, rows, strict=True)).mean(0)
    q = per_q.shape[0]
    stats = []
    for _ in range(n):
        idx = rng.integers(0, q, q)
        total = 0.0
        for i in idx:
            total += per_q[i]
        stats.append(total / q)
    a = (1 - confidence) / 2
    return per_q.mean(), np.quantile(stats, a), np.quantile(stats, 1 - a)


@pytest.mark.parametrize("seed", [0, 1])
def test_interval_matches_brute_force_bootstrap(seed):
    rng = np.random.default_rng(seed)
    base = rng.random((3, 400)) < 0.5
    a = 100.0 * base
    b = 100.0 * (base ^ (rng.random((3, 400)) < 0.2))  # paired: mostly the same queries
    est, lo, hi = contrast_interval([a, b], [1, -1], n_resamples=4000, seed=seed)
    ref_est, ref_lo, ref_hi = brute_force_bootstrap([a, b], [1, -1], 4000, seed + 100)
    assert est == pytest.approx(ref_est, abs=1e-12)
    # two independent Monte-Carlo bootstraps: their percentiles agree to Monte-Carlo error
    assert lo == pytest.approx(ref_lo, abs=0.5) and hi == pytest.approx(ref_hi, abs=0.5)
    assert lo < est < hi


def test_difference_of_differences_and_point_case():
    rng = np.random.default_rng(3)
    rows = [rng.random((2, 50)) * 100 for _ in range(4)]
    est, lo, hi = contrast_interval(rows, [1, -1, -1, 1], n_resamples=500)
    expected = np.mean([(rows[0][s] - rows[1][s] - rows[2][s] + rows[3][s]).mean()
                        for s in range(2)])
    assert est == pytest.approx(expected)
    same = np.full((3, 20), 100.0)
    assert contrast_interval([same, same * 0], [1, -1]) == (100.0, 100.0, 100.0)


def test_interval_half_width_shrinks_with_queries():
    rng = np.random.default_rng(0)
    widths = []
    for q in (200, 3200):
        a = 100.0 * (rng.random((3, q)) < 0.6)
        b = 100.0 * (rng.random((3, q)) < 0.5)
        _, lo, hi = contrast_interval([a, b], [1, -1], n_resamples=1000)
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 3  # ~ 1 / sqrt(16) = 1/4


def test_verdicts_read_the_interval():
    assert verdict(0.5, 2.0, direction=">") == "reproduced"
    assert verdict(-2.0, -0.5, direction=">") == "contradicted"
    assert verdict(-0.5, 2.0, direction=">") == "inconclusive"
    assert verdict(-2.0, -0.5, direction="<") == "reproduced"
    assert verdict(-2.5, -1.0, direction=">", threshold=-3.0) == "reproduced"
    with pytest.raises(ValueError, match="direction"):
        verdict(0, 1, direction="=")


def test_judge_skips_claims_whose_rows_are_missing():
    rng = np.random.default_rng(0)
    vals = {n: {"rank1": 100.0 * (rng.random((2, 300)) < p), "mAP": rng.random((2, 300)) * 100}
            for n, p in (("A", 0.9), ("B", 0.1))}
    claims = [Claim("A beats B", (("A", 1.0), ("B", -1.0))), Claim("C", (("C", 1.0), ("A", -1.0)))]
    out = judge(claims, vals, n_resamples=300)
    assert [(r.claim.text, r.metric) for r in out] == [("A beats B", "rank1"), ("A beats B", "mAP")]
    assert out[0].verdict == "reproduced" and out[0].low > 50


def test_per_query_values_come_from_the_rank_result():
    rng = np.random.default_rng(5)
    dist = rng.random((30, 60))
    qp, gp = rng.integers(0, 8, 30), rng.integers(0, 8, 60)
    qc, gc = rng.integers(0, 3, 30), rng.integers(0, 3, 60)
    r = evaluate_rank(dist, qp, gp, qc, gc)
    cmc, mAP, _, num_valid, ap_ref = reference_eval(dist, qp, gp, qc, gc)
    v = per_query(r.first_match, r.ap)
    assert len(v["rank1"]) == num_valid
    assert v["rank1"].mean() == pytest.approx(100 * cmc[0])
    assert v["mAP"].mean() == pytest.approx(100 * mAP)
    np.testing.assert_allclose(v["mAP"], 100 * ap_ref[~np.isnan(ap_ref)])


def test_first_match_against_a_loop():
    rng = np.random.default_rng(7)
    dist = rng.random((25, 40))
    qp, gp = rng.integers(0, 6, 25), rng.integers(0, 6, 40)
    qc, gc = rng.integers(0, 2, 25), rng.integers(0, 2, 40)
    r = evaluate_rank(dist, qp, gp, qc, gc)
    for i in range(25):
        order = np.argsort(dist[i], kind="stable")
        keep = ~((gp[order] == qp[i]) & (gc[order] == qc[i]))
        hits = np.flatnonzero(gp[order][keep] == qp[i])
        assert r.first_match[i] == (hits[0] if len(hits) else -1)


def test_seed_summary_and_bad_input():
    assert seed_summary([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert seed_summary([4.0]) == (4.0, 0.0)
    with pytest.raises(ValueError, match="same"):
        contrast_interval([np.zeros((2, 3)), np.zeros((2, 4))], [1, -1])
    with pytest.raises(ValueError, match="finite"):
        contrast_interval([np.full((1, 3), np.nan), np.zeros((1, 3))], [1, -1])
    with pytest.raises(ValueError, match="same non-zero length"):
        contrast_interval([np.zeros((1, 3))], [1, -1])


def test_per_seed_contrast_against_a_loop():
    rng = np.random.default_rng(3)
    rows, weights = [rng.random((3, 40)) for _ in range(3)], (1.0, -1.0, 0.5)
    got = per_seed_contrast(rows, weights)
    for s in range(3):
        ref = sum(sum(w * r[s, q] for w, r in zip(weights, rows, strict=True))
                  for q in range(40)) / 40
        assert got[s] == pytest.approx(ref)
    with pytest.raises(ValueError, match="same \\(seeds, queries\\) shape"):
        per_seed_contrast([rows[0], rows[1][:, :5]], (1.0, -1.0))


def test_judge_reports_per_seed_values_and_whether_the_seeds_agree():
    # seed 0: A far above B; seed 1: A slightly below B. Pooled over queries A wins clearly,
    # but the seeds do not agree, and the result says so.
    a = np.array([[100.0] * 200, [40.0] * 200])
    b = np.array([[0.0] * 200, [50.0] * 200])
    noise = np.random.default_rng(0).normal(0, 5, (2, 200))
    vals = {"A": {"rank1": a + noise}, "B": {"rank1": b}}
    (r,) = judge([Claim("A beats B", (("A", 1.0), ("B", -1.0)))], vals, metrics=("rank1",),
                 n_resamples=300)
    assert r.verdict == "reproduced" and len(r.per_seed) == 2
    assert r.per_seed[0] > 90 and r.per_seed[1] < 0
    assert not r.seeds_agree
    claim = Claim("x", (("A", 1.0),), "<", 1.0)
    assert ClaimResult(claim, "rank1", 0, -1, 0.5, "reproduced", (0.2, -0.5)).seeds_agree
    assert not ClaimResult(claim, "rank1", 0, -1, 0.5, "reproduced", (0.2, 1.5)).seeds_agree
    assert ClaimResult(claim, "rank1", 2, 1.5, 3, "contradicted", (2.0, 3.0)).seeds_agree
    assert not ClaimResult(claim, "rank1", 0, -1, 2, "inconclusive", (0.0, 0.0)).seeds_agree
