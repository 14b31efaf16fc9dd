"""The reproduction's report: the table with each row's mean ± std over seeds, the paper's
claims judged from paired intervals, the speed verdict and Fig. 6 (kept tokens)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from ..engine import format_cpu
from ..viz import render_kept_tokens
from .presets import CLAIMS, PAPER, Preset, Row
from .recipe import MEAN, STD
from .stats import judge, per_query, seed_summary

__all__ = ["BOUND", "SPEED_TARGET", "markdown_table", "render_fig6", "speed_verdict",
           "summarize"]

SPEED_TARGET = 1.4  # the paper's Table IV: 1585 / 1074 = 1.48x at p = 0.7
BOUND = "slicing bound"  # the throughput key of sureid.engine.SlicingBound, timed beside the rows
BOUND_SHARE = 0.95  # the share of the slicing bound HTS should reach where 1.4x is beyond it
BOUND_METRIC = "throughput / slicing bound"  # the speed claim's metric in that case


def _range(values: list[float]) -> list[float]:
    return [round(min(values), 3), round(max(values), 3)]


def speed_verdict(table: list[dict], throughputs: list[dict[str, float]] | None = None) -> dict:
    """HTS keeps >= 1.4x: read from the spread of the per-seed measurements, not one figure.

    With the slicing bound timed beside the rows (``throughputs[s]["slicing bound"]``: the
    HTS rows' blocks on the same token counts, tokens dropped for free), the verdict also
    carries the bound's speed-up and the HTS rows' share of it; where the bound itself stays
    below 1.4x on every seed, no scoring of tokens can reach 1.4x on this CPU, and the claim
    judged is that the HTS rows reach 0.95 of the bound.
    """
    base = table[0]["name"]
    hts = [r for r in table[1:] if r["hts"]]
    lo = min(r["speedup_range"][0] for r in hts)
    hi = max(r["speedup_range"][1] for r in hts)
    verdict = {"claim": f"HTS rows keep >= {SPEED_TARGET}x the throughput of {base}",
               "metric": "throughput",
               "estimate": round(float(np.mean([r["speedup"] for r in hts])), 2),
               "ci95": [lo, hi], "threshold": SPEED_TARGET, "direction": ">",
               "note": "range over the per-seed measurements"}
    if throughputs and all(BOUND in t for t in throughputs):
        ups = [t[BOUND] / t[base] for t in throughputs]
        shares = [t[r["name"]] / t[BOUND] for t in throughputs for r in hts]
        bound = {"speedup": round(float(np.mean(ups)), 3), "speedup_range": _range(ups),
                 "hts_share": round(float(np.mean(shares)), 3), "hts_share_range": _range(shares)}
        verdict["slicing_bound"] = bound
        if max(ups) < SPEED_TARGET:  # 1.4x is beyond any token dropping on this CPU
            verdict |= {"claim": f"HTS rows keep >= {BOUND_SHARE} of the slicing bound "
                                 f"({bound['speedup']:.2f}x {base}; the paper's {SPEED_TARGET}x "
                                 "is beyond the bound on this CPU)",
                        "metric": BOUND_METRIC, "estimate": round(bound["hts_share"], 2),
                        "ci95": bound["hts_share_range"], "threshold": BOUND_SHARE}
    (lo, hi), t = verdict["ci95"], verdict["threshold"]
    verdict["verdict"] = ("reproduced" if lo >= t else "contradicted" if hi < t
                          else "inconclusive")
    return verdict


def markdown_table(number: int | str, rows: list[dict], verdicts: list[dict], meta: dict) -> str:
    """``tableN.md``: the caption (data, preset, device, CPU, seeds, split sizes), one line per
    row beside the paper's numbers, the every-token-kept and all-core figures, the teacher and
    its margin, and the claims with their intervals and verdicts."""
    synthetic = meta["data"] == "synthetic"
    label = "synthetic occluded-ReID benchmark" if synthetic else "Occluded-DukeMTMC"
    threads = meta.get("throughput_threads")
    per = {None: "", 1: ", throughput per core (1 thread)"}.get(
        threads, f", throughput with {threads} threads")
    n = len(meta["seeds"])
    cpu = meta.get("cpu")
    if cpu:  # speed ratios differ between CPU kinds: name the one that measured them
        per += f" on {format_cpu(cpu)}"
    title = ("NPKD diagnostic (not a paper table)" if number == "npkd"
             else f"Table {number} reproduction")
    lines = [
        f"{title} ({label}, preset {meta['preset']!r}, {meta['device']}{per}; "
        f"{n} seed{'s' if n > 1 else ''}, {meta['num_queries']} queries, "
        f"{meta['num_gallery']} gallery images); Rank-1 / mAP in %, mean ± std over seeds; "
        "paper values: Occluded-DukeMTMC on an RTX 2080Ti."
        + (" **Tokens ranked by class-token attention (`--keep-score attention`), not the "
           "paper's decision modules.**" if meta.get("keep_score", "decision") != "decision"
           else ""),
        "",
        "| row | GFLOPs | throughput (img/s) | speed-up | Rank-1 | mAP | paper throughput "
        "| paper Rank-1 | paper mAP |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        pt, pr, pm = PAPER.get(number, {}).get(r["name"], (None, None, None))
        fmt = lambda v: "-" if v is None else f"{v}"  # noqa: E731
        lines.append(f"| {r['name']} | {r['gflops']:.3f} | {r['throughput']:.0f} | "
                     f"{r['speedup']:.2f}x | {r['rank1']:.1f} ± {r['rank1_std']:.1f} | "
                     f"{r['mAP']:.1f} ± {r['mAP_std']:.1f} | "
                     f"{fmt(pt)} | {fmt(pr)} | {fmt(pm)} |")
    allc = meta.get("throughput_all_cores")
    if allc:
        b = rows[0]["name"]
        ups = ", ".join(f"{r['name']} {allc[r['name']] / allc[b]:.2f}x" for r in rows[1:])
        lines += ["", f"With all {allc['threads']} threads on one forward: {allc[b]:.0f} img/s for "
                  f"{b}; speed-ups {ups}."]
    full = [r for r in rows if "rank1_all_tokens" in r]
    if full:
        lines += ["", "The same HTS models evaluated with every token kept (pruning off at "
                  "inference; what training did to the weights, without the cost of pruning): "
                  + ", ".join(f"{r['name']} Rank-1 {r['rank1_all_tokens']:.1f}" for r in full)
                  + "."]
    bound = verdicts[0].get("slicing_bound") if verdicts else None
    if bound:
        lo, hi = bound["speedup_range"]
        below = (f" **The bound itself is below the paper's {SPEED_TARGET}x on this CPU: the "
                 "speed claim is judged against the bound.**"
                 if verdicts[0]["metric"] == BOUND_METRIC else "")
        lines += ["", f"Slicing bound (the HTS rows' blocks on the same token counts, tokens "
                  f"dropped for free; no scoring can be faster): {bound['speedup']:.2f}x "
                  f"{rows[0]['name']} ({lo:.2f}-{hi:.2f}x over seeds); the HTS rows reach "
                  f"{bound['hts_share']:.3f} of it ({bound['hts_share_range'][0]:.3f}-"
                  f"{bound['hts_share_range'][1]:.3f}).{below}"]
    t = meta["teacher"]
    source = (f"the shipped `{t['file']}`, fine-tuned on the training split"
              if t.get("file") else "fine-tuned once by this run")
    dense = [r for r in rows if not r["hts"]]
    margin = (f"; {t['rank1'] - dense[0]['rank1']:+.1f} Rank-1 over {dense[0]['name']}"
              if dense else "")
    lines += ["", f"Teacher (dense, {source}): Rank-1 {t['rank1']:.1f}, mAP {t['mAP']:.1f}"
              f"{margin}. Total time {meta['seconds']:.0f} s.", ""]
    if verdicts:
        lines += [("Diagnostic contrasts" if number == "npkd" else "Claims of the paper")
                  + ", each as a paired difference over the same queries and "
                  "seeds (95 % bootstrap interval over queries); the verdict is read from the "
                  "interval. The interval holds the seeds fixed; the per-seed differences show "
                  "how far a contrast moves between training seeds, and a verdict that not "
                  "every seed shares is marked (seeds disagree):", "",
                  "| claim | metric | difference | 95 % CI | per seed | verdict |",
                  "|---|---|---:|---:|---:|---|"]
        for v in verdicts:
            lo, hi = v["ci95"]
            if v["metric"].startswith("throughput"):
                x = "" if v["metric"] == BOUND_METRIC else "x"  # a share, or a speed-up
                diff, ci = f"{v['estimate']:.2f}{x}", f"{lo:.2f}{x}-{hi:.2f}{x} (per-seed range)"
                seeds, mark = "", ""
            else:
                diff, ci = f"{v['estimate']:+.2f}", f"[{lo:+.2f}, {hi:+.2f}]"
                seeds = " / ".join(f"{x:+.1f}" for x in v["per_seed"])
                disagree = v["verdict"] != "inconclusive" and not v["seeds_agree"]
                mark = " (seeds disagree)" if disagree else ""
            lines.append(f"| {v['claim']} | {v['metric']} | {diff} | {ci} | {seeds} | "
                         f"**{v['verdict']}**{mark} |")
        lines.append("")
    return "\n".join(lines)


@torch.inference_mode()
def render_fig6(backbone, query_loader, path: Path, preset: Preset, n: int = 8) -> None:
    """Fig. 6: kept patches of the last row's model on the first query images."""
    images = next(iter(query_loader))[0][:n]
    backbone.eval()
    device = next(backbone.parameters()).device
    _, kept = backbone.forward_features(images.to(device), return_indices=True)
    if not kept:
        return
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    raw = ((images * std + mean).clamp(0, 1) * 255).round().to(torch.uint8)
    ps = backbone.backbone.patch_embed.patch_size
    patch = tuple(ps) if not isinstance(ps, int) else (ps, ps)
    render_kept_tokens(raw, [k.cpu() for k in kept], patch, path)


def summarize(table_id: int | str, rows: list[Row], per_seed: dict[str, list[dict]],
              throughputs: list[dict[str, float]], gflops: dict[str, float], *,
              n_resamples: int) -> tuple[list[dict], list[dict], dict[str, dict]]:
    """``(table, verdicts, values)`` from every row's per-seed results.

    Args:
        table_id: the paper table (4-7) or ``"npkd"``; picks the claims to judge.
        rows: the rows trained, the first being the one speed-ups are relative to.
        per_seed: ``{row name: [{"seed", "rank1", "mAP", "first_match", "ap", ...}]}`` with
            per-query ``first_match`` (Q,) and ``ap`` (Q,) (NaN written as -1).
        throughputs: one ``{row name: img/s}`` per seed, measured interleaved.
        gflops: each row's GFLOPs.
        n_resamples: bootstrap resamples of each claim's interval.

    Returns:
        the table rows (mean ± std, speed-up and its range over seeds, the row's settings),
        the verdicts (the speed claim first for Table IV against a dense first row) and the
        per-query values ``{row: {"rank1"|"mAP": (S, Q)}}`` the claims were judged on.
    """
    values = {name: {m: np.stack([per_query(np.asarray(r["first_match"]),
                                            np.asarray(r["ap"]))[m] for r in runs])
                     for m in ("rank1", "mAP")}
              for name, runs in per_seed.items()}
    base = rows[0].name
    table = []
    for row in rows:
        runs = per_seed[row.name]
        r1, r1_sd = seed_summary([r["rank1"] for r in runs])
        ap, ap_sd = seed_summary([r["mAP"] for r in runs])
        speedups = [t[row.name] / t[base] for t in throughputs]
        table.append({"name": row.name, "gflops": round(gflops[row.name], 4),
                      "throughput": round(float(np.mean([t[row.name] for t in throughputs])), 1),
                      "speedup": round(float(np.mean(speedups)), 3),
                      "speedup_range": [round(min(speedups), 3), round(max(speedups), 3)],
                      "rank1": round(r1, 2), "rank1_std": round(r1_sd, 2),
                      "mAP": round(ap, 2), "mAP_std": round(ap_sd, 2),
                      **({"rank1_all_tokens": round(seed_summary(
                          [r["rank1_all_tokens"] for r in runs])[0], 2)} if row.hts else {}),
                      "per_seed": [{k: r[k] for k in ("seed", "rank1", "mAP", "rank1_all_tokens",
                                                      "mAP_all_tokens") if k in r}
                                   for r in runs],
                      **{k: v for k, v in dataclasses.asdict(row).items() if k != "name"}})
    claims = judge(CLAIMS.get(table_id, ()), values, n_resamples=n_resamples)
    verdicts = [{"claim": c.claim.text, "metric": c.metric, "estimate": round(c.estimate, 2),
                 "ci95": [round(c.low, 2), round(c.high, 2)], "verdict": c.verdict,
                 "per_seed": [round(v, 2) for v in c.per_seed], "seeds_agree": c.seeds_agree,
                 "threshold": c.claim.threshold, "direction": c.claim.direction}
                for c in claims]
    if table_id == 4 and len(rows) > 1 and not rows[0].hts:  # against the dense row
        verdicts.insert(0, speed_verdict(table, throughputs))
    return table, verdicts, values
