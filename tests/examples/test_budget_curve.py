"""examples/budget_curve.py on Table IV folders made here."""

import json

import numpy as np
import pytest

from . import load_example

ROWS = ("vanilla", "+HTS", "+HTS+NPKD", "+HTS+NPKD+NODA")


def write_run(folder, epochs, rng, seeds=(0, 1), queries=60, shift=0.0):
    folder.mkdir(parents=True)
    rows = {}
    for i, name in enumerate(ROWS):
        p_hit = np.clip(0.6 - 0.1 * i + shift, 0, 1)
        rows[name] = [{"seed": s, "first_match": np.where(rng.random(queries) < p_hit, 0,
                                                         2).tolist(),
                       "ap": rng.random(queries).round(3).tolist()} for s in seeds]
    (folder / "table4_per_query.json").write_text(json.dumps(rows))
    meta = {"epochs": epochs, "teacher": {"rank1": 70.0, "mAP": 60.0}}
    (folder / "table4.json").write_text(json.dumps({"rows": [], "claims": [], "meta": meta}))
    return folder, rows


def test_budgets_are_judged_on_shared_seeds_and_rendered(tmp_path):
    script = load_example("budget_curve")
    rng = np.random.default_rng(0)
    a, rows_a = write_run(tmp_path / "a", 2, rng, seeds=(0, 1, 2))
    b, rows_b = write_run(tmp_path / "b", 10, rng, shift=0.2)
    out = tmp_path / "out"
    assert script.main([str(b), str(a), "--output-dir", str(out), "--resamples", "200"]) == 0
    summary = json.loads((out / "budget.json").read_text())
    assert summary["seeds"] == [0, 1]  # seed 2 is only in one run
    assert [x["epochs"] for x in summary["budgets"]] == [2, 10]  # sorted by budget
    # the first claim (+HTS - vanilla, Rank-1) at 2 epochs, by hand over seeds 0 and 1
    hit = {n: np.array([np.array(r["first_match"]) == 0 for r in rows_a[n][:2]]) * 100.0
           for n in ROWS}
    claim = summary["budgets"][0]["claims"][0]
    assert claim["metric"] == "rank1" and "HTS alone" in claim["claim"]
    assert claim["estimate"] == pytest.approx((hit["+HTS"] - hit["vanilla"]).mean())
    assert summary["budgets"][0]["rows"]["vanilla"]["rank1"] == pytest.approx(
        hit["vanilla"].mean())
    md = (out / "budget.md").read_text()
    assert "| row | 2 ep | 10 ep |" in md
    verdicts = sum(md.count(f"**{v}**") for v in ("reproduced", "contradicted", "inconclusive"))
    assert verdicts == 2 * len(summary["budgets"][0]["claims"])
    assert (out / "budget.png").stat().st_size > 1000


def test_refuses_runs_without_epochs_and_duplicate_budgets(tmp_path):
    script = load_example("budget_curve")
    rng = np.random.default_rng(1)
    a, _ = write_run(tmp_path / "a", 2, rng)
    b, _ = write_run(tmp_path / "b", 2, rng)
    with pytest.raises(SystemExit, match="same budget"):
        script.main([str(a), str(b), "--output-dir", str(tmp_path / "o")])
    (b / "table4.json").write_text(json.dumps({"meta": {}}))
    with pytest.raises(SystemExit, match="epochs"):
        script.main([str(b), "--output-dir", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match="not found"):
        script.main([str(tmp_path / "none"), "--output-dir", str(tmp_path / "o")])
