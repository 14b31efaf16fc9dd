"""Argument checks shared across sureid: one wording per kind of mistake.

Each check returns the value in its plain Python type, or raises ``TypeError`` (wrong kind
of value) or ``ValueError`` (right kind, bad value) naming the argument and quoting the
value back. ``bool`` is refused wherever a number is expected (``True`` is an ``int``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

__all__ = [
    "check_bool", "check_finite", "check_int", "check_real", "check_size", "is_int", "is_real",
]


def is_int(value: object) -> bool:
    """Whether ``value`` is an integer (Python or numpy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """Whether ``value`` is a real number (Python or numpy, ``np.float32`` too), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a bool, else ``TypeError`` (``1`` and ``"yes"`` are refused)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return value


def check_int(name: str, value: object, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int within ``[low, high]`` (either bound may be ``None``).

    Example:
        >>> check_int("depth", 0, low=1)
        Traceback (most recent call last):
        ValueError: depth must be >= 1, got 0
    """
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            bound = f">= {low}"
        elif low is None:
            bound = f"<= {high}"
        else:
            bound = f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return int(value)


def check_real(
    name: str,
    value: object,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a float in the interval from ``low`` to ``high`` (NaN is never inside).

    ``low_open``/``high_open`` exclude the bound. The message writes the interval out:

    Example:
        >>> check_real("drop_rate", 1.0, low=0.0, high=1.0, high_open=True)
        Traceback (most recent call last):
        ValueError: drop_rate must be in [0, 1), got 1.0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    v = float(value)
    above = v > low if low_open else v >= low
    below = v < high if high_open else v <= high
    if not (above and below):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return v


def check_finite(name: str, value: object, *, minimum: float | None = None) -> float:
    """``value`` as a finite float ``>= minimum``; every refusal is a ``ValueError``.

    For weights and margins, whose callers catch one error type.

    Example:
        >>> check_finite("margin", float("nan"), minimum=0.0)
        Traceback (most recent call last):
        ValueError: margin must be a finite float >= 0, got nan
    """
    bound = "" if minimum is None else f" >= {minimum:g}"
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or (minimum is not None and value < minimum)
    ):
        raise ValueError(f"{name} must be a finite float{bound}, got {value!r}")
    return float(value)


def check_size(name: str, value: object, *, square: bool = False) -> tuple[int, int]:
    """A positive ``(H, W)`` pair of ints; with ``square`` one int ``s`` means ``(s, s)``."""
    if square and is_int(value):
        value = (value, value)
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != 2
        or not all(is_int(v) for v in value)
    ):
        what = "an int or a pair of ints (H, W)" if square else "a pair of ints (H, W)"
        raise TypeError(f"{name} must be {what}, got {value!r}")
    if min(value) < 1:
        raise ValueError(f"{name} must be positive, got {tuple(value)}")
    return int(value[0]), int(value[1])
