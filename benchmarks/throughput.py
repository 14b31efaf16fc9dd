"""Inference throughput of HTSViT vs the dense timm model and the slicing bound.

DeiT-S (timm ``deit_small_patch16_224``, random init) at 256x128, batch 32 (the paper's
setting) and batch 1. Variants, timed interleaved in one run (one call of each per round,
minimum over rounds):

* ``timm dense``: ``vit.forward_features(x)[:, 0]``.
* ``HTS keep 1.0``: ``HTSViT.from_timm(vit, keep_ratio=1.0)``.
* ``HTS p``: ``HTSViT`` at ``keep_ratio = p`` (stages before blocks 3, 6, 9 keep p, p^2, p^3).
* ``slice p``: the *slicing bound*: the same blocks on the same token counts, tokens simply
  sliced off with no decision module, top-k or gather. ``HTS p / slice p`` is what the
  decision modules and gathers cost.

Then one training step (forward + backward, batch 32) of HTSViT at p = 0.7 (Gumbel
decisions, masked attention, ratio loss) vs timm dense.

Usage::

    python benchmarks/throughput.py            # full run
    python benchmarks/throughput.py --quick    # a short smoke run
    python benchmarks/throughput.py --device cuda
    python benchmarks/throughput.py --device cuda --amp fp16 --batch-sizes 32,64  # mixed precision
    python benchmarks/throughput.py --no-train --decision-hidden-dim 96   # a narrower decision MLP
    python benchmarks/throughput.py --no-train --attention   # class-token attention scores
    python benchmarks/throughput.py --quick --no-train --attention --batch-sizes 1 --rounds 30
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable

import timm
import torch

from sureid import HTSViT, RatioLoss
from sureid._amp import autocast_to
from sureid.engine.trainer import _amp_dtype
from sureid.models.hts import num_kept_tokens, select_topk_tokens
from sureid.models.timm_adapter import embed_tokens


def slicing_bound(vit: torch.nn.Module, ratios: tuple[float, ...], layers: tuple[int, ...]):
    """Dense blocks on the token counts HTS keeps, with tokens sliced off for free."""
    p = vit.num_prefix_tokens
    stage_at = dict(zip(layers, ratios, strict=True))

    def run(x: torch.Tensor) -> torch.Tensor:
        x = embed_tokens(vit, x)
        n = x.shape[1] - p
        for i, blk in enumerate(vit.blocks):
            if i in stage_at:
                x = x[:, : p + num_kept_tokens(n, stage_at[i])]
            x = blk(x)
        return vit.norm(x)[:, 0]

    return run


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def interleaved(
    fns: dict[str, Callable[[], object]],
    rounds: int,
    device: torch.device,
    clock: Callable[[], float],
    warmup: int = 1,
) -> dict[str, float]:
    """Seconds per call of each fn (min over rounds), calling them in turn every round.

    The minimum, not the mean: on a shared machine it is the least-disturbed run.
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
    return {name: min(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few rounds, p in {0.5, 0.7}")
    parser.add_argument(
        "--rounds", type=int, default=None,
        help="timing rounds at batch 32 (default 10, quick 2); batch 1 runs 5x as many",
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
        "--batch-sizes", default="32,1", metavar="B,B",
        help="inference batch sizes, comma-separated (default 32,1); batch 1 runs 5x the rounds",
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
        "--amp", choices=("fp16", "bf16"), default=None,
        help="run every variant (and the training steps) under torch.autocast with this dtype "
        "(default: float32, the paper's Table IV setting)",
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    clock_name = args.clock or ("cpu" if device.type == "cpu" and args.threads == 1 else "wall")
    clock = time.process_time if clock_name == "cpu" else time.perf_counter
    amp_dtype = _amp_dtype(args.amp, device)  # the Trainer's check: refuses what cannot run

    def precision() -> contextlib.AbstractContextManager:
        return autocast_to(device.type, amp_dtype)
    rounds = args.rounds or (2 if args.quick else 10)
    ps = (0.5, 0.7) if args.quick else (0.5, 0.6, 0.7, 0.8, 0.9)  # 0.7 is required
    layers = (3, 6, 9)
    torch.manual_seed(0)

    vit = timm.create_model(
        "deit_small_patch16_224", pretrained=False, img_size=(256, 128), num_classes=0
    ).to(device).eval()
    models = {1.0: HTSViT.from_timm(vit, keep_ratio=1.0).to(device).eval()}
    for p in ps:
        models[p] = HTSViT.from_timm(vit, keep_ratio=p, prune_layers=layers).to(device).eval()
    # HTS p=0.7 variants timed beside the default: label -> model
    variants: dict[str, HTSViT] = {}
    if args.decision_hidden_dim is not None:
        variants[f"H={args.decision_hidden_dim}"] = HTSViT.from_timm(
            vit, keep_ratio=0.7, prune_layers=layers,
            decision_hidden_dim=args.decision_hidden_dim).to(device).eval()
    if args.attention:
        variants["attention"] = HTSViT.from_timm(
            vit, keep_ratio=0.7, prune_layers=layers, keep_score="attention").to(device).eval()
    print(
        f"torch {torch.__version__}, timm {timm.__version__}, device {device}, "
        f"threads {torch.get_num_threads()}, clock {clock_name}, rounds {rounds}, "
        f"precision {args.amp or 'float32'}"
    )

    for batch in (int(b) for b in args.batch_sizes.split(",")):
        x = torch.randn(batch, 3, 256, 128, device=device)
        # each lambda binds this batch's x (default arguments), not the loop variable
        fns: dict[str, Callable[[], object]] = {
            "timm dense": lambda x=x: vit.forward_features(x)[:, 0],
            "HTS keep 1.0": lambda x=x: models[1.0](x),
        }
        for p in ps:
            bound = slicing_bound(vit, models[p].keep_ratios, layers)
            fns[f"HTS p={p}"] = lambda m=models[p], x=x: m(x)
            fns[f"slice p={p}"] = lambda b=bound, x=x: b(x)
            if p == 0.7:
                for label, v in variants.items():
                    fns[f"HTS p=0.7 {label}"] = lambda m=v, x=x: m(x)
        # the extra work of HTS at p = 0.7 on its own: decision modules + top-k gathers on
        # inputs of the stage shapes (a direct measurement, less noisy than a difference)
        m7 = models[0.7]
        counts = [128] + [num_kept_tokens(128, r) for r in m7.keep_ratios]
        stage_in = [torch.randn(batch, 1 + n, vit.embed_dim, device=device) for n in counts]

        def overhead(m=m7, stage_in=stage_in, counts=counts) -> None:
            for s, dec in enumerate(m.decision):
                score = dec(stage_in[s][:, 1:])[..., 1]
                select_topk_tokens(stage_in[s], score, counts[s + 1], 1)

        fns["HTS p=0.7 overhead only"] = overhead
        # attention scores come out of a block's own forward: no separate overhead to time
        for label, v in variants.items():
            if len(v.decision):
                fns[f"{label} overhead only"] = lambda m=v, o=overhead: o(m)
        with torch.inference_mode(), precision():
            sec = interleaved(fns, rounds if batch > 1 else rounds * 5, device, clock)
        dense = sec["timm dense"]
        print(f"\nbatch {batch}: img/s (x dense; HTS / slicing bound)")
        print("| variant | img/s | vs dense | HTS / slice |\n|---|---:|---:|---:|")
        extra = {"default": sec.pop("HTS p=0.7 overhead only")}
        extra |= {label: sec.pop(f"{label} overhead only") for label in variants
                  if f"{label} overhead only" in sec}
        for name, s in sec.items():
            rel = ""
            if name.startswith("HTS p="):
                rel = f"{sec['slice ' + name[4:].split(' ')[0]] / s:.3f}"
            print(f"| {name} | {batch / s:.1f} | {dense / s:.3f} | {rel} |")
        for label, t in extra.items():
            what = "decision modules" if label == "default" else f"{label} decision modules"
            print(
                f"{what} + top-k gathers alone at p=0.7: {1000 * t:.2f} ms per batch "
                f"= {100 * t / sec['slice p=0.7']:.1f}% of the slicing bound"
            )

    if args.no_train:
        return
    batch = 32
    x = torch.randn(batch, 3, 256, 128, device=device)
    dense_train = timm.create_model(
        "deit_small_patch16_224", pretrained=False, img_size=(256, 128), num_classes=0
    ).to(device).train()
    hts = HTSViT.from_timm(
        timm.create_model(
            "deit_small_patch16_224", pretrained=False, img_size=(256, 128), num_classes=0
        ),
        keep_ratio=0.7,
    ).to(device).train()
    ratio_loss = RatioLoss(hts.keep_ratios)

    def step_dense() -> None:
        dense_train.zero_grad(set_to_none=True)
        with precision():  # the forward only, as torch.autocast recommends
            loss = dense_train.forward_features(x)[:, 0].float().square().mean()
        loss.backward()

    def step_hts() -> None:
        hts.zero_grad(set_to_none=True)
        with precision():
            out = hts(x)
            loss = out.features.float().square().mean() + 2.0 * ratio_loss(out.keep_masks)
        loss.backward()

    sec = interleaved(
        {"timm dense": step_dense, "HTS p=0.7": step_hts}, max(2, rounds // 2), device, clock
    )
    print(f"\ntraining step (forward + backward), batch 32, {args.amp or 'float32'}")
    print("| variant | ms/step | vs dense |\n|---|---:|---:|")
    for name, s in sec.items():
        print(f"| {name} | {1000 * s:.0f} | {s / sec['timm dense']:.3f} |")


if __name__ == "__main__":
    main()
