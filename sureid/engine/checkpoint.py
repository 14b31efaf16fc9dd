"""What a training checkpoint records and whether it may be resumed.

:class:`TrainState` (the position in training), the settings the run was trained with and
the optimizer's class and parameter layout. The file I/O is :mod:`sureid._checkpoint`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "TrainState", "check_optimizer_state", "check_settings", "normalize_settings",
    "optimizer_class_name",
]


@dataclass
class TrainState:
    """What a checkpoint resumes: the position in training and the best score so far."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best_score: float = -math.inf
    history: list[dict[str, float]] = field(default_factory=list)
    settings: dict[str, Any] | None = None  # what the run was trained with (JSON values)


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


def optimizer_class_name(optimizer: torch.optim.Optimizer) -> str:
    """``module.QualName`` of ``optimizer``'s class, as a checkpoint stores it."""
    return f"{type(optimizer).__module__}.{type(optimizer).__qualname__}"


def check_optimizer_state(state: Mapping[str, Any], optimizer: torch.optim.Optimizer,
                          *, where: str) -> None:
    """Refuse optimizer state saved by another optimizer (class, or groups and parameters).

    ``torch.optim.Optimizer.load_state_dict`` takes another class's hyper-parameters as they
    are, so an SGD checkpoint resumed with Adam would fail at the first step with
    ``KeyError: 'betas'``. Checked before anything is loaded.
    """
    saved = state.get("optimizer")
    if not isinstance(saved, Mapping) or not isinstance(saved.get("param_groups"), list):
        raise ValueError(f"{where} holds no optimizer state dict (no 'param_groups')")
    have = optimizer_class_name(optimizer)
    cls = state.get("optimizer_class")
    if cls is not None and cls != have:
        raise ValueError(
            f"{where} was trained with the optimizer {cls}, this Trainer has {have}: its "
            "state (momentum buffers, hyper-parameters) does not carry over; build the same "
            "optimizer, or resume=False to train from scratch"
        )
    groups, now = saved["param_groups"], optimizer.param_groups
    sizes = [len(g.get("params", ())) for g in groups]
    want = [len(g["params"]) for g in now]
    if sizes != want:
        raise ValueError(
            f"{where}: the optimizer state has parameter groups of sizes {sizes}, this "
            f"optimizer {want}; build the optimizer over the same parameters in the same order"
        )
    # a checkpoint without the class (older sureid): a hyper-parameter this optimizer needs
    # and the saved groups lack means another class (bool/None flags get torch's defaults)
    for i, (old, new) in enumerate(zip(groups, now, strict=True)):
        missing = sorted(k for k, v in new.items() if k != "params" and k not in old
                         and not isinstance(v, (bool, type(None))))
        if missing:
            raise ValueError(
                f"{where}: parameter group {i} of the saved optimizer state lacks {missing}, "
                f"which {have} needs: it was saved by another optimizer class; build the same "
                "optimizer, or resume=False to train from scratch"
            )
