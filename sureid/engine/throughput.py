"""Inference throughput measured the fair way: interleaved rounds, best round kept."""

from __future__ import annotations

import time
from collections.abc import Mapping

import torch
from torch import nn


@torch.inference_mode()
def measure_throughput(
    models: Mapping[str, nn.Module],
    input_shape: tuple[int, int, int],
    *,
    batch_size: int = 32,
    rounds: int = 5,
    iters: int = 10,
    warmup: int = 3,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Images per second of each eval-mode model on the same random batch.

    Models are timed in interleaved rounds (A B C, A B C, ...), every forward on its own, and
    each model's fastest forward is kept: background load on a shared machine only ever slows
    a forward down, so the minimum is the most repeatable estimate (as ``timeit`` advises) and
    hits all models alike. Report ratios between models of one call rather than absolute
    numbers across calls.

    Args:
        models: name -> model; each is put in eval mode (and restored afterwards).
        input_shape: ``(C, H, W)`` of one image.
        batch_size: images per forward (the paper uses 32).
        rounds, iters: ``rounds`` interleaved rounds of ``iters`` timed forwards per model.
        warmup: untimed forwards per model first.

    Returns:
        name -> images per second.
    """
    if not models:
        raise ValueError("models must name at least one model")
    for name, value in (("batch_size", batch_size), ("rounds", rounds), ("iters", iters)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    device = torch.device(device)
    x = torch.randn(batch_size, *input_shape, device=device)
    modes = {name: m.training for name, m in models.items()}
    best = dict.fromkeys(models, 0.0)
    try:
        for m in models.values():
            m.eval()
            for _ in range(warmup):
                m(x)
        for _ in range(rounds):
            for name, m in models.items():
                for _ in range(iters):
                    _sync(device)
                    start = time.perf_counter()
                    m(x)
                    _sync(device)
                    best[name] = max(best[name], batch_size / (time.perf_counter() - start))
    finally:
        for name, m in models.items():
            m.train(modes[name])
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
