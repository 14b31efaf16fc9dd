"""Paired per-query contrasts: decision width C // 4 minus C // 2, same queries and seeds."""

import json

import numpy as np

from sureid.ablation.stats import contrast_interval, per_query, per_seed_contrast

wide = json.load(open("runs/table4-quick/table4_per_query.json"))  # C // 2 (the default)
narrow = json.load(open("runs/table4-quick-c4/table4_per_query.json"))  # C // 4


def scores(run, row, metric):
    seeds = sorted(run[row], key=lambda s: s["seed"])
    return np.stack([per_query(s["first_match"], s["ap"])[metric] for s in seeds])


print("| row | metric | C//4 | C//2 | C//4 - C//2 [95 % CI] | per seed |")
print("|---|---|---:|---:|---:|---:|")
for row in ["vanilla", "+HTS", "+HTS+NPKD", "+HTS+NPKD+NODA"]:
    for metric in ["rank1", "mAP"]:
        x, y = scores(narrow, row, metric), scores(wide, row, metric)
        est, lo, hi = contrast_interval([x, y], (1, -1))
        seeds = " / ".join(f"{p:+.1f}" for p in per_seed_contrast([x, y], (1, -1)))
        print(f"| {row} | {metric} | {x.mean():.2f} | {y.mean():.2f} | "
              f"{est:+.2f} [{lo:+.2f}, {hi:+.2f}] | {seeds} |")
