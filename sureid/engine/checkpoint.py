"""The settings a checkpoint was trained with; the file I/O is :mod:`sureid._checkpoint`."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

from .._checkpoint import load_checkpoint, save_checkpoint

__all__ = ["check_settings", "load_checkpoint", "normalize_settings", "save_checkpoint"]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def _as_json(value: object, where: str) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} must be finite to be compared on resume, got {value!r}")
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} keys must be str, got {key!r}")
            out[key] = _as_json(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_as_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise TypeError(
        f"{where} must be a JSON value (str, int, float, bool, None, list, dict), got "
        f"{type(value).__name__} {value!r}; convert it first (e.g. str(path))"
    )


def normalize_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` as a plain JSON dict (tuples become lists), as stored in a checkpoint.

    Raises:
        TypeError: not a mapping with str keys, or a value that is not a JSON value.
        ValueError: a NaN or infinite float (it could never compare equal on resume).
    """
    if not isinstance(settings, Mapping):
        raise TypeError(
            f"settings must be a mapping of str to JSON values, got {type(settings).__name__}"
        )
    out = _as_json(settings, "settings")
    # a JSON round trip proves the dict is what a reader of the file will see
    return json.loads(json.dumps(out, allow_nan=False))


def _differences(old: object, new: object, key: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        lines = []
        for k in sorted({*old, *new}):
            sub = f"{key}.{k}" if key else k
            lines += _differences(old.get(k, _MISSING), new.get(k, _MISSING), sub)
        return lines
    if old == new and type(old) is type(new):
        return []
    if isinstance(old, (int, float)) and isinstance(new, (int, float)) and not (
        isinstance(old, bool) or isinstance(new, bool)
    ) and old == new:
        return []  # 1 and 1.0 are the same setting
    return [f"{key}: checkpoint {old!r}, now {new!r}"]


def check_settings(
    stored: Mapping[str, Any] | None, settings: Mapping[str, Any], *, path: str | os.PathLike
) -> None:
    """Refuse to resume ``path`` unless it was trained with exactly ``settings``.

    Args:
        stored: the ``"settings"`` entry of the checkpoint (``None`` if it has none).
        settings: the settings of this run (normalised with :func:`normalize_settings`).
        path: the checkpoint, named in the message.

    Raises:
        ValueError: ``stored`` is ``None``, or differs; the message lists every differing
            key (dotted for nested dicts) with the checkpoint's value and the new one.
    """
    settings = normalize_settings(settings)
    if stored is None:
        raise ValueError(
            f"checkpoint {str(path)!r} stores no settings, so it cannot be checked against "
            f"this run's settings {settings}; use another checkpoint_path, or resume=False to "
            "train from scratch and overwrite it"
        )
    diff = _differences(normalize_settings(stored), settings, "")
    if diff:
        raise ValueError(
            f"checkpoint {str(path)!r} was trained with other settings, refusing to resume it "
            "(use another checkpoint_path, or resume=False to train from scratch and overwrite "
            "it): " + "; ".join(diff)
        )
