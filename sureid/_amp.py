"""Mixed-precision helpers: run numerically sensitive code in float32 with autocast off."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["fp32", "no_autocast"]

_LOW = (torch.float16, torch.bfloat16)


def fp32(x: torch.Tensor) -> torch.Tensor:
    """``x`` as float32 if it is float16/bfloat16, else ``x`` itself."""
    return x.float() if x.dtype in _LOW else x


def no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    """A context that switches autocast off for ``device_type`` (a no-op where there is none).

    Inside ``torch.autocast`` a float32 matmul would be cast back down to float16; losses and
    the masked softmax need their float32 inputs to stay float32.
    """
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()
