"""Inference throughput of HTSViT vs the dense model and the slicing bound, per model.

Models (``--models``, default both; random init, seed 0):

* ``deit_s``: timm ``deit_small_patch16_224`` at 256x128, the paper's student (128 patch
  tokens), at p in {0.5, ..., 0.9};
* ``quick``: the quick preset's student (``sureid.ablation.PRESETS["quick"]``: 64-d, 12 blocks,
  conv stem, 96x48, 72 patch tokens) as ``sureid.ablation.build_backbone`` builds it for
  Table IV, at the same p and the preset's keep ratio.

Paths, per model and batch size, timed interleaved in one run (one call of each per round,
minimum over rounds):

* ``dense``: the backbone alone, ``vit.forward_features(x)[:, 0]``.
* ``HTS keep 1.0``: ``HTSViT(vit, keep_ratio=1.0)``: the wrapper's own cost.
* ``HTS p``: ``HTSViT`` at ``keep_ratio = p`` with decision modules (the paper's path;
  stages before blocks 3, 6, 9 keep p, p^2, p^3).
* ``HTS p attention`` (``--attention``): ``keep_score="attention"``, the class token's
  attention ranks the tokens, no decision modules (not in the paper).
* ``HTS p H=h`` (``--decision-hidden-dim h``): decision modules of hidden width h.
* ``HTS p fused`` (CPU, float32; ``--no-fused`` skips it): ``fused_decision=True``, each
  stage's decision module, top-k and gather in one compiled call
  (``sureid.models.fused_decision``; compiled on first use, about 30 s).
* ``HTS p given score``: the decision modules replaced by a free score (the tokens' second
  channel): top-k, gathers and the wrapper alone, the floor any decision module starts from.
* ``slice p``: the *slicing bound* (``sureid.engine.SlicingBound``): the same blocks on the
  same token counts, tokens simply sliced off with no decision module, top-k or gather.

The attention, fused, given-score and ``H=h`` paths are timed at p = 0.7 (the paper's and the quick
preset's ratio), the others at every p. Each row gives img/s, the ratio to ``dense`` and, for
a row at a ratio p, to ``slice p``: ``HTS p / slice p`` is what the decision modules and
gathers cost.
The decision modules and top-k gathers at p = 0.7 are also timed alone, on inputs of the stage
shapes, and counted (``sureid.flops.count_flops``): the HTS model's FLOPs against its bound's
give the *arithmetic ceiling*, the HTS / bound ratio if the decision modules ran at the
blocks' arithmetic efficiency and top-k and gathers were free.
Then one training step (forward + backward, batch 32) of HTSViT at p = 0.7 (Gumbel
decisions, masked attention, ratio loss) vs dense, per model.

The header names the CPU (model, AVX2 / AVX-512 / VNNI) and the threads; ``--output`` also
writes the tables as Markdown (``.md``) or JSON (any path ending ``.json``).

Usage::

    # issue 28, idle: both models at batch 32 and 1, decision and attention paths
    python benchmarks/throughput.py --no-train --attention --batch-sizes 32 1 --rounds 30 \\
        --output throughput.md throughput.json
    python benchmarks/throughput.py            # full run, with the training steps
    python benchmarks/throughput.py --quick    # a short smoke run
    python benchmarks/throughput.py --models quick --no-train --batch-sizes 1 --rounds 30
    python benchmarks/throughput.py --device cuda --amp fp16 --batch-sizes 64  # mixed precision
    python benchmarks/throughput.py --no-train --decision-hidden-dim 96   # a narrower decision MLP
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import timm
import torch

from sureid import HTSViT, RatioLoss
from sureid._amp import autocast_to
from sureid.ablation import PRESETS, Arch, build_backbone
from sureid.engine import SlicingBound, cpu_line, describe_cpu
from sureid.engine.trainer import _amp_dtype
from sureid.flops import count_flops
from sureid.models.fused_decision import fused_stages
from sureid.models.hts import num_kept_tokens, select_topk_tokens
from sureid.models.timm_adapter import embed_tokens

_QUICK = PRESETS["quick"]
# name -> (architecture, input size (H, W), the keep ratio the variants are timed at)
MODELS: dict[str, tuple[Arch, tuple[int, int], float]] = {
    "deit_s": (Arch(timm_name="deit_small_patch16_224"), (256, 128), 0.7),
    "quick": (_QUICK.student, _QUICK.img_size, _QUICK.keep_ratio),
}


class GivenScore(torch.nn.Module):
    """Stands in for a decision module at no cost: the tokens' second channel is the keep
    score (``HTSViT`` ranks by ``decision(x)[..., 1]``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., :2]


def given_score(vit: torch.nn.Module, p: float) -> HTSViT:
    """HTSViT at ``p`` whose decision modules are :class:`GivenScore`: the top-k, gathers and
    wrapper without any scoring, the floor of every decision module."""
    m = HTSViT(vit, keep_ratio=p)
    for s in range(len(m.decision)):
        m.decision[s] = GivenScore()
    return m


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def interleaved(
    fns: dict[str, Callable[[], object]],
    rounds: int,
    device: torch.device,
    clock: Callable[[], float],
    warmup: int = 1,
) -> dict[str, list[float]]:
    """Seconds of each fn's call in every round, calling them in turn every round.

    Read with :func:`fastest` (the least-disturbed call on a shared machine) or
    :func:`paired_ratio` (two paths compared round by round).
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            sync(device)
            t0 = clock()
            fn()
            sync(device)
            times[name].append(clock() - t0)
    return times


def fastest(times: dict[str, list[float]]) -> dict[str, float]:
    return {name: min(ts) for name, ts in times.items()}


def paired_ratio(slow: list[float], fast: list[float]) -> tuple[float, float, float]:
    """Median and quartiles over rounds of ``fast[r] / slow[r]``: two paths timed a few
    milliseconds apart share the machine's state of that moment, so the ratio of each round
    moves less than the ratio of two minima taken from different rounds."""
    q25, q50, q75 = np.quantile(np.asarray(fast) / np.asarray(slow), [0.25, 0.5, 0.75])
    return float(q50), float(q25), float(q75)


def decision_cost(m: HTSViT, stage_in: list[torch.Tensor], counts: list[int]) -> None:
    """``m``'s decision modules and top-k gathers alone: stage ``s`` scores ``stage_in[s]``
    ``(B, P + counts[s], C)`` and keeps ``counts[s + 1]`` patch tokens."""
    pre = m.num_prefix_tokens
    # the fused stages as the forward binds them (once per call, after its can_fuse check)
    fused = fused_stages(m.decision) if m.fused_decision else None
    for s, dec in enumerate(m.decision):
        if fused is not None:
            fused[s](stage_in[s], counts[s + 1], pre)
        else:
            score = dec(stage_in[s][:, pre:])[..., 1]
            select_topk_tokens(stage_in[s], score, counts[s + 1], pre)


def arithmetic_ceiling(name: str, m: HTSViT) -> dict:
    """``m``'s GFLOPs per image and its slicing bound's (``sureid.flops.count_flops``): the
    decision modules are the difference, so ``bound / hts`` is the HTS / bound ratio that
    decision modules running at the blocks' arithmetic efficiency, with free top-k and
    gathers, would reach. Measured ratios above it are noise; the gap below it is overhead."""
    _, img_size, _ = MODELS[name]
    hts, bound = count_flops(m, img_size), count_flops(SlicingBound(m), img_size)
    return {"model": name, "p": float(m.keep_ratios[0]), "hts_gflops": hts,
            "bound_gflops": bound, "ceiling": bound / hts}


def backbone(name: str, device: torch.device) -> torch.nn.Module:
    """The model's ViT (random init, seed 0), as ``build_backbone`` builds it."""
    arch, img_size, _ = MODELS[name]
    torch.manual_seed(0)
    return build_backbone(arch, img_size).backbone.to(device)


def inference(
    name: str, ps: tuple[float, ...], batches: list[int], rounds: int, args, device, clock,
    precision,
) -> tuple[list[dict], list[dict], list[dict]]:
    """One model's inference rows ``{model, batch, path, img_s, vs_dense, vs_bound}``, the
    overhead rows ``{model, batch, what, p, ms, of_bound}`` at every batch size and its
    arithmetic ceiling (:func:`arithmetic_ceiling`, one row)."""
    _, img_size, focus = MODELS[name]
    ps = tuple(sorted({*ps, focus}))
    vit = backbone(name, device).eval()
    pre = vit.num_prefix_tokens
    models = {1.0: HTSViT(vit, keep_ratio=1.0).to(device).eval()}
    for p in ps:
        models[p] = HTSViT(vit, keep_ratio=p).to(device).eval()
    # variants at the focus ratio, timed beside its default: label -> model
    variants: dict[str, HTSViT] = {}
    if args.decision_hidden_dim is not None:
        variants[f"H={args.decision_hidden_dim}"] = HTSViT(
            vit, keep_ratio=focus, decision_hidden_dim=args.decision_hidden_dim
        ).to(device).eval()
    if args.attention:
        variants["attention"] = HTSViT(vit, keep_ratio=focus, keep_score="attention").to(
            device).eval()
    if args.fused and device.type == "cpu" and args.amp is None:
        variants["fused"] = HTSViT(vit, keep_ratio=focus, fused_decision=True).eval()
    variants["given score"] = given_score(vit, focus).to(device).eval()
    ceilings = [arithmetic_ceiling(name, models[focus])]
    rows: list[dict] = []
    overheads: list[dict] = []
    for batch in batches:
        x = torch.randn(batch, 3, *img_size, device=device)
        # path -> (the ratio whose bound it is compared with, or None; the call); each lambda
        # binds this batch's x (default arguments), not the loop variable
        fns: dict[str, tuple[float | None, Callable[[], object]]] = {
            "dense": (None, lambda x=x: vit.forward_features(x)[:, 0]),
            "HTS keep 1.0": (None, lambda x=x: models[1.0](x)),
        }
        for p in ps:
            bound = SlicingBound(models[p])
            fns[f"HTS p={p}"] = (p, lambda m=models[p], x=x: m(x))
            if p == focus:
                for label, v in variants.items():
                    fns[f"HTS p={p} {label}"] = (p, lambda m=v, x=x: m(x))
            fns[f"slice p={p}"] = (p, lambda b=bound, x=x: b(x))
        # the extra work of HTS at the focus ratio on its own: decision modules + top-k
        # gathers on inputs of the stage shapes (a direct measurement, less noisy than a
        # difference); attention scores come out of a block's own forward: nothing to time
        n = embed_tokens(vit, x[:1]).shape[1] - pre
        counts = [n] + [num_kept_tokens(n, r) for r in models[focus].keep_ratios]
        dim = models[1.0].embed_dim
        stage_in = [torch.randn(batch, pre + c, dim, device=device) for c in counts]

        extra = {"decision modules": models[focus]}
        extra |= {label if label == "given score" else f"{label} decision modules": v
                  for label, v in variants.items() if len(v.decision)}
        calls = {path: fn for path, (_, fn) in fns.items()}
        calls |= {f"{what} alone": lambda m=m, t=stage_in, k=counts: decision_cost(m, t, k)
                  for what, m in extra.items()}
        with torch.inference_mode(), precision():
            times = interleaved(calls, rounds if batch > 1 else rounds * 5, device, clock)
        sec = fastest(times)
        dense = sec["dense"]
        for path, (p, _) in fns.items():
            rows.append({
                "model": name, "batch": batch, "path": path, "img_s": batch / sec[path],
                "vs_dense": dense / sec[path],
                "vs_bound": None if p is None else sec[f"slice p={p}"] / sec[path],
                "vs_bound_paired": None if p is None else paired_ratio(
                    times[path], times[f"slice p={p}"]),
            })
        for what in extra:
            t = sec[f"{what} alone"]
            overheads.append({"model": name, "batch": batch, "what": f"{what} + top-k gathers",
                              "p": focus, "ms": 1000 * t, "of_bound": t / sec[f"slice p={focus}"]})
        print(inference_markdown(name, batch, rows, overheads, ceilings), flush=True)
    return rows, overheads, ceilings


def inference_markdown(
    name: str, batch: int, rows: list[dict], overheads: list[dict], ceilings: list[dict]
) -> str:
    """The Markdown table of one model at one batch size."""
    _, img_size, _ = MODELS[name]
    lines = [f"\n{name} {img_size[0]}x{img_size[1]}, batch {batch}: img/s, x dense, "
             "x the slicing bound at the same p (from the fastest rounds; and the median over "
             "rounds of the round's own ratio, with its quartiles)",
             "| path | img/s | vs dense | vs bound | vs bound, paired (IQR) |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        if (r["model"], r["batch"]) == (name, batch):
            bound = paired = ""
            if r["vs_bound"] is not None:
                med, lo, hi = r["vs_bound_paired"]
                bound, paired = f"{r['vs_bound']:.3f}", f"{med:.3f} ({lo:.3f}-{hi:.3f})"
            lines.append(f"| {r['path']} | {r['img_s']:.1f} | {r['vs_dense']:.3f} | {bound} "
                         f"| {paired} |")
    for o in overheads:
        if (o["model"], o["batch"]) == (name, batch):
            lines.append(f"{o['what']} alone at p={o['p']}: {o['ms']:.2f} ms per batch "
                         f"= {100 * o['of_bound']:.1f}% of the slicing bound")
    for c in ceilings:
        if c["model"] == name:
            lines.append(
                f"arithmetic ceiling at p={c['p']}: HTS {c['hts_gflops']:.4f} GFLOPs, bound "
                f"{c['bound_gflops']:.4f}; decision modules at the blocks' efficiency and free "
                f"gathers would give HTS / bound = {c['ceiling']:.3f}")
    return "\n".join(lines)


def training(name: str, rounds: int, device, clock, precision) -> list[dict]:
    """One training step (batch 32) of dense vs HTSViT at the focus ratio."""
    _, img_size, focus = MODELS[name]
    x = torch.randn(32, 3, *img_size, device=device)
    dense = backbone(name, device).train()
    hts = HTSViT(backbone(name, device), keep_ratio=focus).to(device).train()
    ratio_loss = RatioLoss(hts.keep_ratios)

    def step_dense() -> None:
        dense.zero_grad(set_to_none=True)
        with precision():  # the forward only, as torch.autocast recommends
            loss = dense.forward_features(x)[:, 0].float().square().mean()
        loss.backward()

    def step_hts() -> None:
        hts.zero_grad(set_to_none=True)
        with precision():
            out = hts(x)
            loss = out.features.float().square().mean() + 2.0 * ratio_loss(out.keep_masks)
        loss.backward()

    sec = fastest(interleaved({"dense": step_dense, f"HTS p={focus}": step_hts}, rounds, device,
                              clock))
    return [{"model": name, "path": path, "ms": 1000 * s, "vs_dense": s / sec["dense"]}
            for path, s in sec.items()]


def training_markdown(rows: list[dict], precision: str) -> str:
    lines = [f"\ntraining step (forward + backward), batch 32, {precision}",
             "| model | path | ms/step | vs dense |", "|---|---|---:|---:|"]
    lines += [f"| {r['model']} | {r['path']} | {r['ms']:.0f} | {r['vs_dense']:.3f} |"
              for r in rows]
    return "\n".join(lines)


def batch_sizes(values: list[str]) -> list[int]:
    """``["32", "1"]`` or ``["32,1"]`` -> ``[32, 1]``."""
    out = [int(b) for v in values for b in v.split(",") if b.strip()]
    if not out or min(out) < 1:
        raise ValueError(f"batch sizes must be positive integers, got {values}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--models", nargs="+", choices=tuple(MODELS), default=list(MODELS),
        help="models to time (default: all of them)",
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="a short smoke run: 2 rounds, p in {0.5, 0.7} (which models: --models)",
    )
    parser.add_argument(
        "--rounds", type=int, default=None,
        help="timing rounds at batch > 1 (default 10, quick 2); batch 1 runs 5x as many",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--clock", choices=("cpu", "wall"), default=None,
        help="cpu: process CPU time (default on CPU with 1 thread; robust to other jobs "
        "sharing the cores); wall: perf_counter (default otherwise)",
    )
    parser.add_argument("--no-train", action="store_true", help="skip the training-step timing")
    parser.add_argument(
        "--batch-sizes", nargs="+", default=["32", "1"], metavar="B",
        help="inference batch sizes, space- or comma-separated (default 32 1); batch 1 runs "
        "5x the rounds",
    )
    parser.add_argument(
        "--decision-hidden-dim", type=int, default=None, metavar="H",
        help="also time HTS p=0.7 with decision modules of hidden width H (default C // 2)",
    )
    parser.add_argument(
        "--attention", action="store_true",
        help="also time HTS p=0.7 with keep_score='attention' (class-token attention scores, "
        "no decision modules)",
    )
    parser.add_argument(
        "--no-fused", dest="fused", action="store_false",
        help="skip HTS p=0.7 with fused_decision=True (the compiled stage kernel; CPU, float32)",
    )
    parser.add_argument(
        "--amp", "--dtype", choices=("fp16", "bf16"), default=None,
        help="run every path (and the training steps) under torch.autocast with this dtype "
        "(default: float32, the paper's Table IV setting)",
    )
    parser.add_argument(
        "--output", nargs="+", type=Path, default=[], metavar="PATH",
        help="also write the tables: JSON to a path ending .json, Markdown to any other",
    )
    args = parser.parse_args()
    try:
        batches = batch_sizes(args.batch_sizes)
    except ValueError as e:
        parser.error(str(e))

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    clock_name = args.clock or ("cpu" if device.type == "cpu" and args.threads == 1 else "wall")
    clock = time.process_time if clock_name == "cpu" else time.perf_counter
    amp_dtype = _amp_dtype(args.amp, device)  # the Trainer's check: refuses what cannot run

    def precision() -> contextlib.AbstractContextManager:
        return autocast_to(device.type, amp_dtype)

    rounds = args.rounds or (2 if args.quick else 10)
    ps = (0.5, 0.7) if args.quick else (0.5, 0.6, 0.7, 0.8, 0.9)
    meta = {
        "command": shlex.join(["python", *sys.argv]), "cpu": describe_cpu(),
        "torch": torch.__version__, "timm": timm.__version__, "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "threads": torch.get_num_threads(), "clock": clock_name, "rounds": rounds,
        "precision": args.amp or "float32",
    }
    gpu = f" ({meta['gpu']})" if meta["gpu"] else ""
    header = [
        meta["command"], cpu_line(),
        f"torch {meta['torch']}, timm {meta['timm']}, device {device}{gpu}, threads "
        f"{meta['threads']}, clock {clock_name}, rounds {rounds} (batch 1: {5 * rounds}), "
        f"precision {meta['precision']}",
    ]
    print("\n".join(header), flush=True)

    rows: list[dict] = []
    overheads: list[dict] = []
    ceilings: list[dict] = []
    for name in dict.fromkeys(args.models):  # each once, in the order given
        r, o, c = inference(name, ps, batches, rounds, args, device, clock, precision)
        rows += r
        overheads += o
        ceilings += c
    train_rows: list[dict] = []
    if not args.no_train:
        for name in dict.fromkeys(args.models):
            train_rows += training(name, max(2, rounds // 2), device, clock, precision)
        print(training_markdown(train_rows, meta["precision"]), flush=True)

    for path in args.output:
        if path.suffix == ".json":
            result = {"meta": meta, "inference": rows, "overhead": overheads,
                      "ceiling": ceilings, "training": train_rows}
            path.write_text(json.dumps(result, indent=2) + "\n")
        else:
            tables = [inference_markdown(n, b, rows, overheads, ceilings)
                      for n in dict.fromkeys(args.models) for b in batches]
            if train_rows:
                tables.append(training_markdown(train_rows, meta["precision"]))
            path.write_text("\n".join(header + tables) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
