"""examples/compare_runs.py on per-query files made here."""

import json

import numpy as np
import pytest

from . import load_example


def _script():
    return load_example("compare_runs")


def write_run(folder, rows, table="4"):
    folder.mkdir(parents=True)
    (folder / f"table{table}_per_query.json").write_text(json.dumps(rows))
    return folder


def fake_rows(rng, names, seeds=(0, 1, 2), queries=50):
    skipped = np.arange(queries) % 7 == 3  # queries without a true match: the same everywhere
    return {name: [{"seed": s,
                    "first_match": np.where(skipped, -1, rng.integers(0, 4, queries)).tolist(),
                    "ap": rng.random(queries).round(3).tolist()} for s in seeds]
            for name in names}


def parse(md):
    """{(row, metric): (mean_a, mean_b, estimate, lo, hi, per_seed)} from the Markdown."""
    out = {}
    for line in md.splitlines()[2:]:
        row, metric, a, b, ci, seeds = [c.strip() for c in line.strip("|").split("|")]
        est, rest = ci.split(" [")
        lo, hi = rest.rstrip("]").split(", ")
        out[row, metric] = (float(a), float(b), float(est), float(lo), float(hi),
                            [float(v) for v in seeds.split(" / ")])
    return out


def test_contrasts_match_explicit_means(tmp_path):
    rng = np.random.default_rng(0)
    a_rows = fake_rows(rng, ["vanilla", "+HTS", "only in a"])
    b_rows = fake_rows(rng, ["vanilla", "+HTS"])
    a = write_run(tmp_path / "a", a_rows)
    b = write_run(tmp_path / "b", b_rows)
    out = tmp_path / "cmp.md"
    assert _script().main([str(a), str(b), "--labels", "new", "old", "--output", str(out)]) == 0
    md = out.read_text()
    assert "| row | metric | new | old | new − old [95 % CI] | per seed |" in md
    got = parse(md)
    assert {r for r, _ in got} == {"vanilla", "+HTS"}  # rows of both runs only
    for row in ("vanilla", "+HTS"):
        diffs_r1, diffs_ap = [], []
        for sa, sb in zip(a_rows[row], b_rows[row], strict=True):
            # brute force: both runs' valid queries in order (same query set in both)
            fa, fb = np.array(sa["first_match"]), np.array(sb["first_match"])
            va, vb = fa >= 0, fb >= 0
            diffs_r1.append(100 * ((fa[va] == 0).mean() - (fb[vb] == 0).mean()))
            diffs_ap.append(100 * (np.array(sa["ap"])[va].mean() - np.array(sb["ap"])[vb].mean()))
        _, _, est, lo, hi, per_seed = got[row, "rank1"]
        assert lo <= est <= hi
        assert per_seed == pytest.approx([round(d, 1) for d in diffs_r1], abs=0.051)
        assert est == pytest.approx(np.mean(diffs_r1), abs=0.006)
        assert got[row, "mAP"][2] == pytest.approx(np.mean(diffs_ap), abs=0.006)


def test_errors_name_the_problem(tmp_path, capsys):
    rng = np.random.default_rng(1)
    a = write_run(tmp_path / "a", fake_rows(rng, ["vanilla"]))
    with pytest.raises(SystemExit, match="table4_per_query.json not found"):
        _script().main([str(a), str(tmp_path / "missing")])
    c = write_run(tmp_path / "c", fake_rows(rng, ["other"]))
    with pytest.raises(SystemExit, match="share no row"):
        _script().main([str(a), str(c)])


def test_rows_option_compares_two_named_rows(tmp_path):
    script = _script()
    rng = np.random.default_rng(5)
    a = write_run(tmp_path / "a", fake_rows(rng, ["+HTS"]))
    b = write_run(tmp_path / "b", fake_rows(rng, ["vanilla", "+HTS"]))
    out = tmp_path / "c.md"
    assert script.main([str(a), str(b), "--rows", "+HTS", "vanilla", "--output", str(out)]) == 0
    got = parse(out.read_text())
    ra, rb = (json.loads((d / "table4_per_query.json").read_text()) for d in (a, b))
    hits = [[np.mean([f == 0 for f in s["first_match"] if f >= 0]) * 100 for s in r[n]]
            for r, n in ((ra, "+HTS"), (rb, "vanilla"))]
    est = got["+HTS − vanilla", "rank1"][2]
    assert est == pytest.approx(np.mean(hits[0]) - np.mean(hits[1]), abs=0.01)
    with pytest.raises(SystemExit, match="no row 'nope'"):
        script.main([str(a), str(b), "--rows", "nope", "vanilla"])
