"""Learning-rate schedules."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .._checks import check_int, is_int


def cosine_with_warmup(
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    warmup_steps: int = 0,
    warmup_factor: float = 0.01,
    min_lr_ratio: float = 0.0,
    hold_steps: int | Sequence[int] = 0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from ``warmup_factor * lr`` to ``lr``, then cosine decay.

    The cosine ends at ``min_lr_ratio * lr``.
    Stepped once per iteration. Its state (``last_epoch``) is saved with the optimizer
    in checkpoints, so a resumed run continues on the same curve.

    Args:
        hold_steps: steps during which a parameter group's learning rate is 0 (the group is
            held), one int per ``optimizer.param_groups`` entry, or one int for every group.
            After its hold a group follows the common curve. With the backbone's group held
            and the new layers' not, this is DynamicViT's predictor warm-up: the decision
            modules learn to select tokens before the pretrained weights move.

    Example:
        >>> opt = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)]},
        ...                        {"params": [torch.zeros(1, requires_grad=True)]}], lr=1.0)
        >>> sched = cosine_with_warmup(opt, total_steps=10, hold_steps=[2, 0])
        >>> [g["lr"] for g in opt.param_groups]
        [0.0, 1.0]
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}), "
                         f"got {warmup_steps}")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return warmup_factor + (1.0 - warmup_factor) * step / warmup_steps
        t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))

    groups = len(optimizer.param_groups)
    holds = [hold_steps] * groups if is_int(hold_steps) else hold_steps
    if isinstance(holds, str) or not isinstance(holds, Sequence):
        raise TypeError("hold_steps must be an int or a sequence of ints (one per parameter "
                        f"group), got {type(hold_steps).__name__}")
    if len(holds) != groups:
        raise ValueError(f"hold_steps must list one int per parameter group ({groups}), got "
                         f"{len(holds)}: {list(holds)}")
    holds = [check_int("hold_steps", h, low=0, high=total_steps - 1) for h in holds]
    if all(h == 0 for h in holds):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, [_held(factor, h) for h in holds]
    )


def _held(factor, hold: int):
    """``factor`` with the first ``hold`` steps at 0."""
    return lambda step: 0.0 if step < hold else factor(step)
