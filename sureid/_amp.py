"""Mixed-precision helpers: run numerically sensitive code in float32 with autocast off."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["autocast_available", "autocast_enabled", "fp32", "grad_scaler", "no_autocast"]

_LOW = (torch.float16, torch.bfloat16)


def fp32(x: torch.Tensor) -> torch.Tensor:
    """``x`` as float32 if it is float16/bfloat16, else ``x`` itself."""
    return x.float() if x.dtype in _LOW else x


def autocast_available(device_type: str) -> bool:
    """Whether ``torch.autocast`` supports ``device_type`` (cpu/cuda only before torch 2.4)."""
    check = getattr(torch.amp, "is_autocast_available", None)
    return bool(check(device_type)) if check is not None else device_type in ("cpu", "cuda")


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` right now."""
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # torch < 2.4: no device argument
        if device_type == "cuda":
            return bool(torch.is_autocast_enabled())
        return device_type == "cpu" and bool(torch.is_autocast_cpu_enabled())


def grad_scaler(device_type: str):
    """A ``GradScaler`` for float16 training on ``device_type``."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler(device_type)
    if device_type == "cuda":  # torch < 2.3
        return torch.cuda.amp.GradScaler()
    raise ValueError(
        f"amp='fp16' on {device_type!r} needs torch >= 2.3 (torch.amp.GradScaler), this is "
        f"{torch.__version__}; use amp='bf16'"
    )


def autocast_to(device_type: str, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast(device_type, dtype=dtype)``, or a no-op context for ``dtype=None``."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)


def no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    """A context that switches autocast off for ``device_type`` (a no-op where there is none).

    Inside ``torch.autocast`` a float32 matmul would be cast back down to float16; losses and
    the masked softmax need their float32 inputs to stay float32.
    """
    if autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()
