"""One setting of a training config: its default, its template comment and its checks.

A field made with :func:`_opt` carries in its metadata the comment ``sureid train
--template`` prints above it and what :func:`_checked` accepts: ``choices`` for a string,
bounds for a number, ``length`` for a list of ints.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import field
from typing import Any

from .._checks import is_int, is_real


def _opt(default: Any, doc: str, *, choices: Iterable[str] | None = None,
         low: float | None = None, high: float | None = None, low_open: bool = False,
         high_open: bool = False, length: int | None = None) -> Any:
    """A config field: its default, the comment the template prints, and its checks."""
    meta = {"doc": doc, "choices": tuple(choices) if choices is not None else None,
            "low": low, "high": high, "low_open": low_open, "high_open": high_open,
            "length": length}
    return field(default=default, metadata=meta)


def _kind(f: dataclasses.Field) -> str:
    return str(f.type).replace(" ", "")


def _checked(key: str, value: object, f: dataclasses.Field) -> object:
    """``value`` of config key ``key`` checked against field ``f``, in its plain type."""
    kind, meta = _kind(f), f.metadata
    if kind == "bool":
        if not isinstance(value, bool):
            raise TypeError(f"{key} must be true or false, got {type(value).__name__} {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise TypeError(f"{key} must be a string, got {type(value).__name__} {value!r}")
        if meta["choices"] is not None and value not in meta["choices"]:
            raise ValueError(f"{key} must be one of {list(meta['choices'])}, got {value!r}")
        return value
    if kind.startswith("tuple"):
        if not isinstance(value, (list, tuple)) or not all(is_int(v) for v in value):
            raise TypeError(f"{key} must be a list of ints, got {type(value).__name__} {value!r}")
        if meta["length"] is not None and len(value) != meta["length"]:
            raise ValueError(f"{key} must hold {meta['length']} ints, got {list(value)!r}")
        items = tuple(int(v) for v in value)
        for v in items:
            _check_range(key, v, meta, list(value))
        return items
    if kind == "int":
        if not is_int(value):
            raise TypeError(f"{key} must be an int, got {type(value).__name__} {value!r}")
        value = int(value)
    elif kind == "float":
        if not is_real(value):
            raise TypeError(f"{key} must be a number, got {type(value).__name__} {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{key} must be finite, got {value!r}")
    else:  # pragma: no cover - a field of a kind this module does not know
        raise AssertionError(f"{key}: unknown field type {kind}")
    _check_range(key, value, meta, value)
    return value


def _check_range(key: str, v: float, meta: Mapping[str, Any], shown: object) -> None:
    low, high = meta["low"], meta["high"]
    bad_low = low is not None and (v <= low if meta["low_open"] else v < low)
    bad_high = high is not None and (v >= high if meta["high_open"] else v > high)
    if bad_low or bad_high:
        if high is None:
            bound = f"{'>' if meta['low_open'] else '>='} {low:g}"
        elif low is None:
            bound = f"{'<' if meta['high_open'] else '<='} {high:g}"
        else:
            bound = (f"in {'(' if meta['low_open'] else '['}{low:g}, {high:g}"
                     f"{')' if meta['high_open'] else ']'}")
        raise ValueError(f"{key} must be {bound}, got {shown!r}")
