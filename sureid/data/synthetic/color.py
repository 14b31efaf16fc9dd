"""Colour helpers shared by the identity, person, scene and occluder drawers."""

from __future__ import annotations

from typing import Any

import numpy as np


def rgb(c: Any) -> tuple[int, int, int]:
    """A colour (any 3 numbers) rounded and clipped to an 8-bit RGB tuple."""
    return tuple(int(v) for v in np.clip(np.round(c), 0, 255))  # type: ignore[return-value]


def shade(c: Any, f: float) -> tuple[int, int, int]:
    """``c`` darkened (``f < 1``) or lightened by the factor ``f``."""
    return rgb(np.asarray(c) * f)


def pick(rng: np.random.Generator, palette: np.ndarray, jitter: float = 10.0) -> np.ndarray:
    """A random palette entry ``(3,)`` with Gaussian jitter, clipped to [0, 255]."""
    return np.clip(palette[rng.integers(len(palette))] + rng.normal(0, jitter, 3), 0, 255)


def choice(rng: np.random.Generator, options: list[str], p: list[float]) -> str:
    """One of ``options`` with probabilities ``p``."""
    return options[int(rng.choice(len(options), p=p))]
