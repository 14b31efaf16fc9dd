"""FLOPs per image of a model's inference forward, with ``torch.utils.flop_counter``.

Counts what ``FlopCounterMode`` counts: matrix products, convolutions and attention, at 2
FLOPs per multiply-add. Normalisation, activations, top-k and gathers are not counted (they
are a few percent of a ViT). Papers that quote fvcore (DynamicViT: DeiT-S 4.6 "GFLOPs")
count one per multiply-add: divide by 2 to compare.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._checks import is_int

__all__ = ["count_flops"]


def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    # aten._scaled_dot_product_flash_attention_for_cpu has no formula in torch's registry:
    # Q K^T and A V, 2 FLOPs per multiply-add, as torch counts the CUDA kernels
    b, h, s_q, d_q = query_shape
    s_k, d_v = key_shape[-2], value_shape[-1]
    return 2 * b * h * s_q * s_k * (d_q + d_v)


def _custom_mapping() -> dict:
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {op: _cpu_sdpa_flops} if op is not None else {}


def count_flops(
    model: nn.Module,
    input_size: Sequence[int] | None = None,
    *,
    batch_size: int = 1,
    device: str | torch.device | None = None,
    example_input: torch.Tensor | None = None,
) -> float:
    """GFLOPs per image of ``model``'s eval-mode forward (HTS models: on the kept tokens).

    Args:
        model: any module; run in eval mode under ``torch.no_grad`` (its mode is restored).
        input_size: ``(H, W)`` (3 channels), or the full per-sample shape, e.g. ``(3, H, W)``
            or ``(D,)``. Default: the model's input size (:func:`sureid.hub.resolve_data_config`).
        batch_size: samples in the counted forward; the result is divided by it.
        device: where to run (default: the model's parameters' device).
        example_input: count on this batch instead (first dim = batch), for models whose
            input is not an image, e.g. tokens ``(B, T, C)``; ``input_size`` is then ignored.

    Returns:
        ``total FLOPs / batch_size / 1e9``.

    Example:
        >>> count_flops(nn.Linear(8, 4), (8,)) * 1e9  # 2 * 8 * 4
        64.0
    """
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else "cpu"
    if example_input is not None:
        x = example_input.to(device)
        batch_size = int(x.shape[0])
    else:
        if input_size is None:
            from .hub import resolve_data_config

            input_size = resolve_data_config(model).input_size
        shape = tuple(int(s) for s in input_size)
        if len(shape) == 2:
            shape = (3, *shape)
        if not is_int(batch_size) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        x = torch.zeros((batch_size, *shape), device=device)
    was_training = model.training
    model.eval()
    # imported here: torch.utils.flop_counter imports triton where it is installed, which would
    # add about a tenth of a second to every ``import sureid``
    from torch.utils.flop_counter import FlopCounterMode

    try:
        counter = FlopCounterMode(display=False, custom_mapping=_custom_mapping())
        with counter, torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / batch_size / 1e9
