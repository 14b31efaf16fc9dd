"""What machine a speed figure came from: CPU model, vector extensions, threads."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

__all__ = ["cpu_line", "describe_cpu", "format_cpu"]

# the instruction-set extensions that move ViT inference speed, as /proc/cpuinfo names them
_EXTENSIONS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_tile")


def describe_cpu(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> dict:
    """The CPU's model name, which of AVX2 / AVX-512 / VNNI / AMX it has, its logical cores
    and torch's intra-op threads.

    Read from ``cpuinfo`` (Linux); elsewhere the model is ``platform.processor()`` and the
    extensions are unknown (``None``).

    Returns:
        ``{"model": str, "extensions": list[str] | None, "cores": int, "torch_threads": int}``;
        ``extensions`` lists the names of :data:`_EXTENSIONS` present, e.g.
        ``["avx2", "avx512f", "avx512_vnni"]``.
    """
    model, flags = None, None
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():  # the first processor's entries
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model is None:
            model = value.strip()
        elif key.strip() == "flags" and flags is None:
            flags = set(value.split())
    return {"model": model or platform.processor() or platform.machine(),
            "extensions": None if flags is None else
            [e for e in _EXTENSIONS if e in flags],
            "cores": os.cpu_count() or 1, "torch_threads": torch.get_num_threads()}


def format_cpu(cpu: dict) -> str:
    """``"<model> (<extensions>)"`` from :func:`describe_cpu`'s dict, for captions.

    Example:
        >>> format_cpu({"model": "AMD EPYC", "extensions": ["avx2", "avx512f"]})
        'AMD EPYC (avx2, avx512f)'
    """
    return f"{cpu['model']} ({', '.join(cpu['extensions'] or ['extensions unknown'])})"


def cpu_line() -> str:
    """The first line of a speed benchmark's output: this CPU and its logical cores."""
    cpu = describe_cpu()
    return f"CPU {format_cpu(cpu)}, {cpu['cores']} logical cores"
