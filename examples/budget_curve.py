"""Table IV against the training budget: the same claims judged at several student epochs.

Each budget is an ordinary ``reproduce_table4.py`` run with ``--epochs N`` into its own folder
(resumable: rerunning a command reuses every finished row and resumes an interrupted one
from its last epoch checkpoint). This script reads the folders, judges every Table IV claim
on the seeds all of them share (paired bootstrap intervals over queries, as the table does)
and writes ``budget.md`` (Rank-1 / mAP per row and budget, each claim's verdict per budget)
and ``budget.png`` (Rank-1 against epochs, and each contrast with its interval)::

    T=runs/table4-quick/teacher.pt
    for E in 5 10 20; do
        python examples/reproduce_table4.py --preset quick --epochs $E --seeds 2 \\
            --teacher-checkpoint $T --output-dir runs/budget/e$E
    done
    python examples/budget_curve.py runs/table4-quick runs/budget/e5 runs/budget/e10 \\
        runs/budget/e20 --output-dir docs/results/budget
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from sureid.ablation import CLAIMS
from sureid.ablation.plot import Panel, render_panels
from sureid.ablation.stats import judge, per_query

ROWS = ("vanilla", "+HTS", "+HTS+NPKD", "+HTS+NPKD+NODA")


def load_run(folder: Path) -> tuple[int, dict, dict]:
    """``(epochs, meta, {row: {seed: {"rank1": (Q,), "mAP": (Q,)}}})`` of one Table IV run."""
    table = folder / "table4.json"
    per_query_file = folder / "table4_per_query.json"
    for path in (table, per_query_file):
        if not path.is_file():
            raise SystemExit(f"error: {path} not found (is {folder} an output folder of "
                             "reproduce_table4.py --table 4?)")
    meta = json.loads(table.read_text())["meta"]
    if "epochs" not in meta:
        raise SystemExit(f"error: {table} does not record its epochs (written by an older "
                         "reproduce_table4.py); rerun the command into the folder")
    rows = json.loads(per_query_file.read_text())
    values = {name: {r["seed"]: per_query(np.asarray(r["first_match"]), np.asarray(r["ap"]))
                     for r in runs} for name, runs in rows.items()}
    return int(meta["epochs"]), meta, values


def contrast_label(claim) -> str:
    """``"a - b"`` from a claim's weighted rows (``"+HTS - vanilla"``)."""
    plus = [n for n, w in claim.terms if w > 0]
    minus = [n for n, w in claim.terms if w < 0]
    return " + ".join(plus) + (" - " + " - ".join(minus) if minus else "")


def summarize(runs: list[tuple[int, dict, dict]], n_resamples: int = 2000) -> dict:
    """Per budget: each row's mean Rank-1/mAP over the shared seeds and the judged claims."""
    seeds = sorted(set.intersection(*[set(v[ROWS[0]]) for _, _, v in runs]))
    if not seeds:
        raise SystemExit("error: the runs share no seed")
    budgets = []
    for epochs, meta, values in sorted(runs, key=lambda r: r[0]):
        missing = [r for r in ROWS if r not in values or not set(seeds) <= set(values[r])]
        if missing:
            raise SystemExit(f"error: the {epochs}-epoch run lacks rows/seeds {missing}")
        stacked = {r: {m: np.stack([values[r][s][m] for s in seeds]) for m in ("rank1", "mAP")}
                   for r in ROWS}
        claims = judge(CLAIMS[4], stacked, n_resamples=n_resamples)
        budgets.append({
            "epochs": epochs, "teacher": meta.get("teacher"),
            "rows": {r: {m: float(stacked[r][m].mean()) for m in ("rank1", "mAP")}
                     | {"per_seed_rank1": [float(x) for x in stacked[r]["rank1"].mean(1)]}
                     for r in ROWS},
            "claims": [{"claim": c.claim.text, "contrast": contrast_label(c.claim),
                        "metric": c.metric, "estimate": c.estimate,
                        "ci95": [c.low, c.high], "verdict": c.verdict,
                        "seeds_agree": c.seeds_agree} for c in claims],
        })
    return {"seeds": seeds, "budgets": budgets}


def markdown(summary: dict) -> str:
    budgets = summary["budgets"]
    head = " | ".join(f"{b['epochs']} ep" for b in budgets)
    lines = [f"Table IV against the student's training budget (synthetic benchmark, quick "
             f"preset otherwise; seeds {summary['seeds']}, 2000 queries). Rank-1 / mAP in %, "
             "mean over seeds.", "",
             f"| row | {head} |", "|---|" + "---:|" * len(budgets)]
    for r in ROWS:
        cells = " | ".join(f"{b['rows'][r]['rank1']:.1f} / {b['rows'][r]['mAP']:.1f}"
                           for b in budgets)
        lines.append(f"| {r} | {cells} |")
    teachers = [b["teacher"] for b in budgets if b["teacher"]]
    if teachers:
        lines.append("| teacher | " + " | ".join(
            f"{b['teacher']['rank1']:.1f} / {b['teacher']['mAP']:.1f}" if b["teacher"] else "-"
            for b in budgets) + " |")
    lines += ["", "Verdict of each claim of the paper per budget: paired difference in "
              "points [95 % bootstrap interval over queries], verdict read from the interval "
              "(\u2020: the seeds disagree on the sign).", "",
              f"| claim | metric | {head} |", "|---|---|" + "---|" * len(budgets)]
    for i, c in enumerate(budgets[0]["claims"]):
        cells = []
        for b in budgets:
            x = b["claims"][i]
            lo, hi = x["ci95"]
            mark = "\u2020" if x["verdict"] != "inconclusive" and not x["seeds_agree"] else ""
            cells.append(f"{x['estimate']:+.2f} [{lo:+.2f}, {hi:+.2f}] **{x['verdict']}**{mark}")
        lines.append(f"| {c['claim']} | {c['metric']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path) -> None:
    budgets = summary["budgets"]
    x = [b["epochs"] for b in budgets]
    rows = {r: ([b["rows"][r]["rank1"] for b in budgets], None, None) for r in ROWS}
    contrasts = {}
    for i, c in enumerate(budgets[0]["claims"]):
        if c["metric"] != "rank1":
            continue
        label = c["contrast"]
        got = [b["claims"][i] for b in budgets]
        contrasts[label] = ([g["estimate"] for g in got], [g["ci95"][0] for g in got],
                            [g["ci95"][1] for g in got])
    render_panels([
        Panel("Rank-1 (%) of each Table IV row against the student's epochs", x, rows,
              x_label="student epochs (log scale)", y_label="Rank-1 %"),
        Panel("Each claim's contrast (Rank-1 points) with its 95 % paired interval", x,
              contrasts, x_label="student epochs (log scale)", y_label="points",
              zero_line=True),
    ], path, width=1000)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="reproduce_table4.py output folders")
    p.add_argument("--output-dir", type=Path, required=True)
    p.add_argument("--resamples", type=int, default=2000)
    args = p.parse_args(argv)
    runs = [load_run(r) for r in args.runs]
    epochs = [e for e, _, _ in runs]
    if len(set(epochs)) != len(epochs):
        raise SystemExit(f"error: two runs have the same budget: epochs {sorted(epochs)}")
    summary = summarize(runs, n_resamples=args.resamples)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "budget.json").write_text(json.dumps(summary, indent=2) + "\n")
    md = markdown(summary)
    (args.output_dir / "budget.md").write_text(md)
    plot(summary, args.output_dir / "budget.png")
    sys.stdout.write(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
