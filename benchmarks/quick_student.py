"""Where the time goes in the quick preset's student, and how steady the throughput ratio is.

Backs the speed figures quoted in docs/reproduce.md, README and ``measure_throughput``:

1. HTS (p = 0.7) vs vanilla throughput of the quick-preset student (random init, batch 32)
   with 1 thread and with all threads, via ``sureid.engine.measure_throughput``.
2. A breakdown of one batch-32 forward (median ms over interleaved repeats): the stem +
   position embedding, the 12 blocks at the dense token count and at HTS's token counts, the
   three decision modules and the three top-k gathers.
3. Estimator stability: the HTS/vanilla ratio from ``measure_throughput`` (turns of one
   forward, median) against the older "fastest of 10 forwards in a row", repeated.

The header names the CPU (model, AVX2 / AVX-512 / VNNI). HTS against its slicing bound (the
same blocks on the kept tokens, no decision cost): ``benchmarks/throughput.py --models quick``.

Usage::

    python benchmarks/quick_student.py            # ~2 min on 2 cores
    python benchmarks/quick_student.py --repeats 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import sureid
from sureid.ablation import PRESETS, Preset, build_backbone
from sureid.engine import cpu_line, measure_throughput
from sureid.models.hts import select_topk_tokens
from sureid.models.timm_adapter import embed_tokens


def build(preset: Preset, keep_ratio: float) -> sureid.HTSViT:
    """The preset's student (random init, seed 0), pruning when ``keep_ratio < 1``."""
    torch.manual_seed(0)
    return build_backbone(preset.student, preset.img_size, keep_ratio=keep_ratio,
                          prune=keep_ratio < 1).eval()


def median_ms(fns: dict, repeats: int = 60) -> dict[str, float]:
    """Median wall time of each callable, the callables taking turns (order flipping)."""
    times = {k: [] for k in fns}
    items = list(fns.items())
    for r in range(repeats):
        for k, f in items if r % 2 == 0 else items[::-1]:
            start = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - start)
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


def best_of_runs(models: dict, x: torch.Tensor, rounds: int = 5, iters: int = 10) -> dict:
    """The older estimator: rounds of ``iters`` forwards in a row per model, fastest kept."""
    best = dict.fromkeys(models, float("inf"))
    for _ in range(rounds):
        for k, m in models.items():
            for _ in range(iters):
                start = time.perf_counter()
                m(x)
                best[k] = min(best[k], time.perf_counter() - start)
    return {k: x.shape[0] / v for k, v in best.items()}


def token_plan(
    hts: sureid.HTSViT, n: int
) -> tuple[list[int], list[tuple[int, int, int]]]:
    """What ``hts.forward_features`` runs on ``n`` patch tokens: the tokens entering each
    block (prefix included), and per pruning ``(stage, patch tokens entering it, kept)``."""
    stage_at = {block: s for s, block in enumerate(hts.prune_layers)}
    counts, pruned, kept = [], [], n
    for block, k in enumerate(hts.kept_per_block(n)):
        if k is not None:
            pruned.append((stage_at[block], kept, k))
            kept = k
        counts.append(hts.num_prefix_tokens + kept)
    return counts, pruned


@torch.inference_mode()
def breakdown(hts: sureid.HTSViT, x: torch.Tensor) -> dict[str, float]:
    vit, p = hts.backbone, hts.num_prefix_tokens
    tokens = embed_tokens(vit, x)
    n = tokens.shape[1] - p
    counts, pruned = token_plan(hts, n)
    inputs = {t: torch.randn(x.shape[0], t, vit.embed_dim) for t in {*counts, p + n}}
    scores = {m: torch.randn(x.shape[0], m) for _, m, _ in pruned}

    def blocks(ts):
        for blk, t in zip(vit.blocks, ts, strict=True):
            blk(inputs[t])

    # each decision module and gather on the tokens entering its stage, as in forward_features
    return median_ms({
        "stem + pos embed": lambda: embed_tokens(vit, x),
        "blocks, dense tokens": lambda: blocks([p + n] * len(vit.blocks)),
        "blocks, HTS tokens": lambda: blocks(counts),
        "decision modules": lambda: [hts.decision[s](inputs[p + m][:, p:]) for s, m, _ in pruned],
        "top-k gathers": lambda: [select_topk_tokens(inputs[p + m], scores[m], k, p)
                                  for _, m, k in pruned],
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=4, help="repeats of the estimator comparison")
    args = ap.parse_args()
    preset = PRESETS["quick"]
    dense, hts = build(preset, 1.0), build(preset, preset.keep_ratio)
    # One training step first, as in the example (which measures after training): it makes
    # glibc raise its mmap threshold, after which activations come from the heap. In a fresh
    # process every large activation is a new mmap with page faults, which slowed the dense
    # forward ~2x in a measurement here and inflated the HTS speed-up.
    dense.train()(torch.randn(64, 3, *preset.img_size)).features.sum().backward()
    dense.eval().zero_grad(set_to_none=True)
    models = {"vanilla": dense, "hts": hts}
    shape = (3, *preset.img_size)
    x = torch.randn(32, *shape)
    all_threads = torch.get_num_threads()
    print(cpu_line())
    print(f"quick student {preset.student}, input {preset.img_size}, p = {preset.keep_ratio}, "
          f"batch 32, torch {torch.__version__}")

    for threads in sorted({1, all_threads}):
        t = measure_throughput(models, shape, rounds=6, num_threads=threads)
        print(f"{threads} thread(s): vanilla {t['vanilla']:.0f} img/s, HTS {t['hts']:.0f} img/s, "
              f"speed-up {t['hts'] / t['vanilla']:.2f}x")

    ms = breakdown(hts, x)
    print(f"\nbreakdown of one forward, {all_threads} thread(s), median ms:")
    for k, v in ms.items():
        print(f"  {k:22s} {v:7.2f}")
    blocks_ratio = ms["blocks, dense tokens"] / ms["blocks, HTS tokens"]
    print(f"  blocks alone: dense / HTS = {blocks_ratio:.2f}x")

    print(f"\nHTS/vanilla ratio, {args.repeats} repeats in this process ({all_threads} threads):")
    med, best = [], []
    with torch.inference_mode():
        for _ in range(args.repeats):
            t = measure_throughput(models, shape, rounds=6)
            med.append(t["hts"] / t["vanilla"])
            b = best_of_runs(models, x)
            best.append(b["hts"] / b["vanilla"])
    for name, r in (("measure_throughput (median)", med), ("fastest of 10 in a row", best)):
        print(f"  {name:28s} {' '.join(f'{v:.2f}' for v in r)}  spread {max(r) - min(r):.2f}")


if __name__ == "__main__":
    main()
