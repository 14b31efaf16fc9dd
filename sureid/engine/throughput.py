"""Inference throughput measured the fair way: finely interleaved forwards, median kept."""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping

import torch
from torch import nn

from .._checks import check_int


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
    num_threads: int | None = None,
) -> dict[str, float]:
    """Images per second of each eval-mode model on the same random batch.

    The models take turns one forward at a time (A B C, C B A, A B C, ...: the order flips
    every step so no model always follows the same neighbour), and each model's throughput is
    ``batch_size`` over its median forward time. On a shared machine the background load
    comes and goes in bursts that last many forwards; taking turns this finely makes every
    model sample the same bursts, so the *ratios* between models are stable even when the
    absolute numbers are not (how stable: ``docs/hts.md``, "Measurements behind the
    docstrings"; across processes with different load both move more).
    Report ratios between models of one call rather than absolute numbers across calls.

    Args:
        models: name -> model; each is put in eval mode (and restored afterwards).
        input_shape: ``(C, H, W)`` of one image.
        batch_size: images per forward (the paper uses 32).
        rounds, iters: every model runs ``rounds * iters`` timed forwards.
        warmup: untimed forwards per model first.
        num_threads: CPU intra-op threads during the measurement (restored afterwards);
            ``None`` keeps ``torch.get_num_threads()``. ``1`` measures throughput per core, the
            figure that matters when a CPU server runs one single-threaded worker per core
            (small models scale poorly with threads; see ``docs/hts.md``).

    Returns:
        name -> images per second.
    """
    if not models:
        raise ValueError("models must name at least one model")
    for name, value in (("batch_size", batch_size), ("rounds", rounds), ("iters", iters),
                        ("num_threads", 1 if num_threads is None else num_threads)):
        check_int(name, value, low=1)
    device = torch.device(device)
    x = torch.randn(batch_size, *input_shape, device=device)
    modes = {name: m.training for name, m in models.items()}
    times: dict[str, list[float]] = {name: [] for name in models}
    order = list(models.items())
    threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        for m in models.values():
            m.eval()
            for _ in range(warmup):
                m(x)
        for step in range(rounds * iters):
            for name, m in order if step % 2 == 0 else order[::-1]:
                _sync(device)
                start = time.perf_counter()
                m(x)
                _sync(device)
                times[name].append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
        for name, m in models.items():
            m.train(modes[name])
    return {name: batch_size / statistics.median(t) for name, t in times.items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
