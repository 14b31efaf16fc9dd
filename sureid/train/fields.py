"""One setting of a training config: its default, its template comment and its checks.

A field made with :func:`_opt` carries in its metadata the comment ``sureid train
--template`` prints above it and what :func:`_checked` accepts: ``choices`` for a string,
bounds for a number or the ints of a list, ``length`` for a list. The checks are
those of :mod:`sureid._checks`: ``TypeError`` for a wrong type, ``ValueError`` for a wrong
value, each naming the key.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import field
from typing import Any

from .._checks import check_bool, check_int, check_real


def _opt(default: Any, doc: str, *, choices: Iterable[str] | None = None,
         low: float | None = None, high: float | None = None, low_open: bool = False,
         high_open: bool = False, length: int | None = None) -> Any:
    """A config field: its default, the comment the template prints, and its checks.

    ``low``/``high`` bound a number or each int of a list (``None``: unbounded);
    ``low_open``/``high_open`` exclude the bound and are for float settings only.
    """
    if (low_open or high_open) and not isinstance(default, float):
        raise TypeError(f"open bounds are for float settings, got the default {default!r}")
    meta = {"doc": doc, "choices": tuple(choices) if choices is not None else None,
            "low": low, "high": high, "low_open": low_open, "high_open": high_open,
            "length": length}
    return field(default=default, metadata=meta)


def _kind(f: dataclasses.Field) -> str:
    """The field's type as written, e.g. ``"int"`` or ``"tuple[int,int]"``."""
    return str(f.type).replace(" ", "")


def _checked(key: str, value: object, f: dataclasses.Field) -> object:
    """``value`` of config key ``key`` checked against field ``f``, in its plain type.

    Raises:
        TypeError: a value of the wrong type (named by ``key``).
        ValueError: a value out of range (for a float NaN and infinities too), not one of the
            choices, or a list of the wrong length (named by ``key``).
    """
    kind, meta = _kind(f), f.metadata
    if kind == "bool":
        return check_bool(key, value)
    if kind == "str":
        if not isinstance(value, str):
            raise TypeError(f"{key} must be a string, got {type(value).__name__} {value!r}")
        if meta["choices"] is not None and value not in meta["choices"]:
            raise ValueError(f"{key} must be one of {list(meta['choices'])}, got {value!r}")
        return value
    if kind == "int":
        return check_int(key, value, low=meta["low"], high=meta["high"])
    if kind == "float":  # an unbounded side is open: infinities are refused
        low, high = meta["low"], meta["high"]
        return check_real(key, value, low=-math.inf if low is None else low,
                          high=math.inf if high is None else high,
                          low_open=low is None or meta["low_open"],
                          high_open=high is None or meta["high_open"])
    if kind.startswith("tuple"):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{key} must be a list of ints, got {type(value).__name__} "
                            f"{value!r}")
        items = [check_int(f"{key}[{i}]", v) for i, v in enumerate(value)]
        if meta["length"] is not None and len(items) != meta["length"]:
            raise ValueError(f"{key} must hold {meta['length']} ints, got {items!r}")
        return tuple(check_int(f"{key}[{i}]", v, low=meta["low"], high=meta["high"])
                     for i, v in enumerate(items))
    raise AssertionError(f"{key}: unknown field type {kind}")  # pragma: no cover
