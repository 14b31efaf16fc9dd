"""The fused decision stages against the eager ones on trained models: tokens, features, ranks.

``HTSViT(fused_decision=True)`` scores tokens to a few 1e-6 of the eager decision modules, not bit
for bit, so two tokens whose keep scores tie that closely may swap. This script measures how
often that happens on the models a Table IV run saved (``<run>/models/*.pt``, written by
``ReIDModel.save``) and what it does to the results: for every query and gallery image it
extracts the features and kept token indices both ways (``sureid.FeatureExtractor``, float32,
CPU) and reports, per model,

* the images whose kept-token set differs at each stage, and the images whose feature differs
  at all (bit for bit) and by how much (max absolute difference);
* Rank-1 and mAP both ways, the paired difference fused - eager with its 95 % bootstrap
  interval over queries (``sureid.ablation.stats``), and the queries whose first true match
  moved to another rank.

    python benchmarks/fused_agreement.py runs/table4-quick
    python benchmarks/fused_agreement.py runs/table4-quick --rows hts --output agree.md

Needs a C++ compiler for the kernel's first build (``sureid.models.fused_decision``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import sureid
from sureid.ablation.stats import contrast_interval, per_query
from sureid.data import build_dataset
from sureid.metrics import evaluate

ROWS = ("hts", "hts_npkd", "hts_npkd_noda")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="output folder of examples/reproduce_table4.py")
    p.add_argument("--rows", nargs="+", default=list(ROWS),
                   help=f"HTS model files in <run>/models (default: {' '.join(ROWS)})")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward")
    p.add_argument("--output", type=Path, help="also write the table as Markdown")
    return p.parse_args(argv)


def extract(model, paths: list[str], fused: bool, batch_size: int):
    """``(features (N, C), kept indices per stage)`` of ``model`` with the fused stages on or
    off (restored afterwards)."""
    hts = model.backbone
    before = hts.fused_decision
    hts.fused_decision = fused
    try:
        out = sureid.FeatureExtractor(model, batch_size=batch_size, kept_indices=True,
                                      progress=False)(paths)
    finally:
        hts.fused_decision = before
    return out.features, out.kept


def compare(model, data, batch_size: int) -> dict:
    """One model's agreement numbers (see the module docstring)."""
    records = {"query": data.query, "gallery": data.gallery}
    feats, kept = {}, {}
    for fused in (False, True):
        for part, recs in records.items():
            feats[part, fused], kept[part, fused] = extract(
                model, [r.path for r in recs], fused, batch_size)
    images = sum(len(r) for r in records.values())
    stages = len(kept["query", False])
    moved = [sum(int((~(kept[part, False][s] == kept[part, True][s]).all(dim=1)).sum())
                 for part in records) for s in range(stages)]
    diff = [feats[part, False] != feats[part, True] for part in records]
    changed = sum(int(d.any(dim=1).sum()) for d in diff)
    max_abs = max(float((feats[part, False] - feats[part, True]).abs().max()) for part in records)
    pids = {part: [r.pid for r in recs] for part, recs in records.items()}
    cams = {part: [r.camid for r in recs] for part, recs in records.items()}
    results = {}
    for fused in (False, True):
        r = evaluate(feats["query", fused], feats["gallery", fused], pids["query"],
                     pids["gallery"], cams["query"], cams["gallery"])
        results[fused] = (r, per_query(r.first_match, r.ap))
    first_moved = int((results[False][0].first_match != results[True][0].first_match).sum())
    row = {"images": images, "kept_set_differs": moved, "feature_differs": changed,
           "max_abs_feature_diff": max_abs, "queries": len(data.query),
           "first_match_moved": first_moved}
    for name, (r, _) in (("eager", results[False]), ("fused", results[True])):
        row[f"{name}_rank1"], row[f"{name}_mAP"] = 100 * r.rank1, 100 * r.mAP
    for metric in ("rank1", "mAP"):
        est, lo, hi = contrast_interval(
            [results[True][1][metric][None], results[False][1][metric][None]], [1, -1])
        row[f"diff_{metric}"] = (est, lo, hi)
    return row


def markdown(rows: dict[str, dict]) -> str:
    lines = ["| model | images | kept set differs, per stage | feature differs (max abs) "
             "| eager Rank-1 / mAP | fused Rank-1 / mAP | fused - eager Rank-1 [95 % CI] "
             "| mAP [95 % CI] | first true match moved |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        diffs = [f"{e:+.2f} [{lo:+.2f}, {hi:+.2f}]" for e, lo, hi in
                 (r["diff_rank1"], r["diff_mAP"])]
        lines.append(
            f"| {name} | {r['images']} | {' / '.join(map(str, r['kept_set_differs']))} "
            f"| {r['feature_differs']} ({r['max_abs_feature_diff']:.2g}) "
            f"| {r['eager_rank1']:.2f} / {r['eager_mAP']:.2f} "
            f"| {r['fused_rank1']:.2f} / {r['fused_mAP']:.2f} | {diffs[0]} | {diffs[1]} "
            f"| {r['first_match_moved']} of {r['queries']} |")
    return "\n".join(lines)


def main(argv=None) -> dict[str, dict]:
    args = parse_args(argv)
    data = build_dataset("auto", args.run / "data")
    rows = {}
    for name in args.rows:
        model = sureid.load(args.run / "models" / f"{name}.pt").eval()
        rows[name] = compare(model, data, args.batch_size)
        print(f"{name}: done", flush=True)
    table = markdown(rows)
    print(f"\n{len(data.query)} queries, {len(data.gallery)} gallery images, float32 CPU, "
          f"{torch.get_num_threads()} threads\n\n{table}")
    if args.output is not None:
        args.output.write_text(table + "\n")
        print(f"wrote {args.output}")
    return rows


if __name__ == "__main__":
    main()
