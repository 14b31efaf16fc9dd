"""Table IV's speed verdict, with and without the slicing bound timed beside the rows."""

import pytest

from sureid.ablation.report import BOUND, speed_verdict


def table_and_throughputs(hts_speedups, bound_speedups):
    """Two seeds: vanilla at 100 img/s, one HTS row and the bound at the given speed-ups."""
    tputs = [{"vanilla": 100.0, "+HTS": 100.0 * h, BOUND: 100.0 * b}
             for h, b in zip(hts_speedups, bound_speedups, strict=True)]
    table = [{"name": "vanilla", "hts": False},
             {"name": "+HTS", "hts": True, "speedup": sum(hts_speedups) / 2,
              "speedup_range": [min(hts_speedups), max(hts_speedups)]}]
    return table, tputs


@pytest.mark.parametrize(("hts", "verdict"), [((1.45, 1.5), "reproduced"),
                                              ((1.3, 1.45), "inconclusive"),
                                              ((1.2, 1.3), "contradicted")])
def test_the_paper_claim_without_a_bound(hts, verdict):
    table, _ = table_and_throughputs(hts, (2.0, 2.0))
    v = speed_verdict(table)
    assert v["verdict"] == verdict and v["threshold"] == 1.4 and v["ci95"] == list(hts)
    assert "slicing_bound" not in v


def test_a_bound_above_the_target_keeps_the_paper_claim_and_reports_the_share():
    table, tputs = table_and_throughputs((1.5, 1.52), (1.6, 1.6))
    v = speed_verdict(table, tputs)
    assert v["claim"] == "HTS rows keep >= 1.4x the throughput of vanilla"
    assert v["verdict"] == "reproduced"
    b = v["slicing_bound"]
    assert b["speedup"] == 1.6 and b["speedup_range"] == [1.6, 1.6]
    assert b["hts_share_range"] == [round(1.5 / 1.6, 3), round(1.52 / 1.6, 3)]


@pytest.mark.parametrize(("hts", "verdict"), [((1.2, 1.21), "reproduced"),
                                              ((1.0, 1.21), "inconclusive"),
                                              ((1.0, 1.1), "contradicted")])
def test_a_bound_below_the_target_judges_the_share_of_the_bound(hts, verdict):
    # the Intel figure: HTS 1.23x while no token dropping could reach 1.4x
    table, tputs = table_and_throughputs(hts, (1.25, 1.26))
    v = speed_verdict(table, tputs)
    assert v["claim"].startswith("HTS rows keep >= 0.95 of the slicing bound (1.25x vanilla")
    assert v["metric"] == "throughput / slicing bound" and v["threshold"] == 0.95
    assert v["ci95"] == [round(hts[0] / 1.25, 3), round(hts[1] / 1.26, 3)]
    assert v["verdict"] == verdict


def test_a_bound_straddling_the_target_keeps_the_paper_claim():
    table, tputs = table_and_throughputs((1.3, 1.35), (1.38, 1.42))
    v = speed_verdict(table, tputs)
    assert v["threshold"] == 1.4 and v["verdict"] == "contradicted"
