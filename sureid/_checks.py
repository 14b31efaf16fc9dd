"""Argument checks shared across sureid: one wording per kind of mistake.

Each check returns the value in its plain Python type, or raises ``TypeError`` (wrong kind
of value) or ``ValueError`` (right kind, bad value) naming the argument and quoting the
value back. ``bool`` is refused wherever a number is expected (``True`` is an ``int``).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = [
    "INT64_MAX", "INT64_MIN", "check_bool", "check_device", "check_finite", "check_int",
    "check_label", "check_output_path", "check_real", "check_size", "is_int", "is_real",
]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


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


def check_label(name: str, value: object) -> int:
    """An integer label (pid, camid) that fits int64, as a plain int.

    Floats are refused even when whole (``2.0**63`` has lost the digits that told identities
    apart), and so are ints outside int64 (a tensor or numpy array of labels cannot hold them).

    Example:
        >>> check_label("pid", 7.0)
        Traceback (most recent call last):
        TypeError: pid must be an int, got float 7.0
    """
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{name} must be in [{INT64_MIN}, {INT64_MAX}] (int64), got {value!r}")
    return int(value)


def _same(a: Path, b: Path) -> bool:
    try:
        return a == b or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_output_path(
    name: str,
    path: object,
    *,
    inputs: Iterable[object] = (),
    folder: bool = False,
) -> Path:
    """A path an output can be written to without replacing or joining an input.

    Refused, before anything is written: a path that is not a ``str``/``os.PathLike``
    (``TypeError``); for a file, an existing folder; for a folder, an existing file; a path
    below an existing file; the same file or folder as one of ``inputs`` (symlinks and hard
    links included); a path inside an input folder (the output would join the input: an
    image folder is read recursively); for a folder, one that holds an input (replacing it
    would delete the input). Every refusal is a ``ValueError`` naming ``name``, the path and
    the input.

    Args:
        name: the argument named in messages, e.g. ``"--output"``.
        path: the output.
        inputs: files and folders the command reads (missing ones are ignored).
        folder: the output is a folder (else a file).

    Returns:
        ``path`` as a :class:`~pathlib.Path` (``~`` expanded).
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise TypeError(f"{name} must be a non-empty path (str or os.PathLike), got {path!r}")
    out = Path(path).expanduser()
    what = "folder" if folder else "file"
    if out.exists() and out.is_dir() != folder:
        kind = "folder" if out.is_dir() else "file"
        raise ValueError(f"{name} must be a {what} path, got the existing {kind} {str(out)!r}")
    for parent in out.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(
                    f"{name} {str(out)!r} cannot be created: {str(parent)!r} is a file, not a "
                    "folder"
                )
            break
    real = out.resolve()
    for item in inputs:
        if item is None:
            continue
        src = Path(item).expanduser()
        if not src.exists():
            continue
        src_real = src.resolve()
        if _same(real, src_real):
            raise ValueError(
                f"{name} {str(out)!r} is the input {str(src)!r}: writing it would destroy the "
                f"input; choose another {what}"
            )
        if src.is_dir() and src_real in real.parents:
            raise ValueError(
                f"{name} {str(out)!r} is inside the input folder {str(src)!r}: the output "
                f"would join the input; choose a {what} outside it"
            )
        if folder and real in src_real.parents:
            raise ValueError(
                f"{name} {str(out)!r} holds the input {str(src)!r}: the output folder must not "
                "contain what the command reads; choose another folder"
            )
    return out


def check_device(name: str, value: object):
    """``value`` as a ``torch.device`` this machine can use.

    A bad name (``"gpu"``), ``"cuda"`` without CUDA or a GPU index the machine lacks is a
    ``ValueError`` naming the argument (torch's own errors name neither), raised before any
    work.
    """
    import torch  # lazily: this module stays importable without torch

    if not isinstance(value, (str, torch.device)):
        raise TypeError(f"{name} must be a str or torch.device, got {type(value).__name__}")
    try:
        dev = torch.device(value)
        torch.empty(0, device=dev)  # allocates nothing; fails where the device is missing
    except (RuntimeError, AssertionError, ValueError) as err:
        msg = " ".join(str(err).split())
        raise ValueError(f"{name} {str(value)!r} cannot be used on this machine: {msg}") from None
    return dev
