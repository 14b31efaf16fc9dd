"""Paired comparison of two runs of ``reproduce_table4.py``: run A minus run B, row by row.

Both runs must have evaluated the same queries with the same seeds (same preset and data,
one setting changed, e.g. ``--keep-score attention`` against the default). For every row
both runs share, Rank-1 and mAP are contrasted per query and pooled over seeds
(:func:`sureid.ablation.stats.contrast_interval`, the intervals of the Table IV verdicts),
with the per-seed differences beside them.

Usage::

    python examples/compare_runs.py runs/table4-quick-attn runs/table4-quick \\
        --labels attention decision [--table 4] [--output compare.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from sureid.ablation.stats import contrast_interval, per_query, per_seed_contrast


def load(run: Path, table: str) -> dict[str, dict[int, dict[str, np.ndarray]]]:
    """``{row: {seed: {"rank1": (Q,), "mAP": (Q,)}}}`` from a run's per-query file."""
    path = run / f"table{table}_per_query.json"
    if not path.is_file():
        raise SystemExit(f"error: {path} not found (is {run} an output folder of "
                         f"reproduce_table4.py --table {table}?)")
    rows = json.loads(path.read_text())
    return {name: {s["seed"]: per_query(np.asarray(s["first_match"]), np.asarray(s["ap"]))
                   for s in seeds} for name, seeds in rows.items()}


def compare(a: dict, b: dict, labels: tuple[str, str],
            pairs: list[tuple[str, str]] | None = None) -> str:
    """Markdown table of ``a - b`` for the rows and seeds both runs have, or for the given
    ``(row of a, row of b)`` pairs."""
    la, lb = labels
    lines = [f"| row | metric | {la} | {lb} | {la} − {lb} [95 % CI] | per seed |",
             "|---|---|---:|---:|---:|---:|"]
    if pairs is None:
        pairs = [(r, r) for r in a if r in b]
    for row_a, row_b in pairs:
        seeds = sorted(set(a[row_a]) & set(b[row_b]))
        if not seeds:
            continue
        row = row_a if row_a == row_b else f"{row_a} − {row_b}"
        for metric in ("rank1", "mAP"):
            x = np.stack([a[row_a][s][metric] for s in seeds])
            y = np.stack([b[row_b][s][metric] for s in seeds])
            if x.shape != y.shape:
                raise SystemExit(f"error: row {row!r}: the runs evaluated different query sets "
                                 f"({x.shape[1]} vs {y.shape[1]} queries)")
            est, lo, hi = contrast_interval([x, y], (1, -1))
            per_seed = " / ".join(f"{d:+.1f}" for d in per_seed_contrast([x, y], (1, -1)))
            lines.append(f"| {row} | {metric} | {x.mean():.2f} | {y.mean():.2f} | "
                         f"{est:+.2f} [{lo:+.2f}, {hi:+.2f}] | {per_seed} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_a", type=Path)
    p.add_argument("run_b", type=Path)
    p.add_argument("--labels", nargs=2, default=("A", "B"), metavar=("A", "B"))
    p.add_argument("--table", default="4", help="which table's files to read (default 4)")
    p.add_argument("--output", type=Path, help="also write the table to this Markdown file")
    p.add_argument("--rows", nargs=2, metavar=("ROW_A", "ROW_B"),
                   help="compare row ROW_A of run A with row ROW_B of run B (default: every "
                        "row both runs have, by name)")
    args = p.parse_args(argv)
    a, b = load(args.run_a, args.table), load(args.run_b, args.table)
    pairs = None
    if args.rows:
        row_a, row_b = args.rows
        for name, run, rows in ((row_a, args.run_a, a), (row_b, args.run_b, b)):
            if name not in rows:
                raise SystemExit(f"error: {run} has no row {name!r} (rows: {sorted(rows)})")
        pairs = [(row_a, row_b)]
    elif not set(a) & set(b):
        raise SystemExit(f"error: the runs share no row ({sorted(a)} vs {sorted(b)})")
    md = compare(a, b, tuple(args.labels), pairs)
    sys.stdout.write(md)
    if args.output is not None:
        args.output.write_text(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
