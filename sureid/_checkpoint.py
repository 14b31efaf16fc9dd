"""Atomic checkpoint writing and safe loading: one ``torch.save`` file of tensors and plain
Python values, written through a temp file and read with ``weights_only=True``.

Below every package that writes files (model files, backbone weights, training checkpoints).
"""

from __future__ import annotations

import io
import os
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from ._atomic import remove_stale_siblings, temp_file
from ._checks import check_output_path

__all__ = ["load_checkpoint", "save_checkpoint"]

# values torch.load(weights_only=True) always accepts; anything else is checked one by one
_PLAIN = (str, int, float, bool, type(None), bytes, torch.Size, torch.dtype, torch.device)


def _weights_only_loadable(value: object, where: str) -> bool:
    buffer = io.BytesIO()
    try:
        torch.save(value, buffer)
    except Exception as err:  # a lambda, a lock, an open file: pickle's own errors name no key
        kind = type(value)
        raise TypeError(
            f"cannot save {where}: a {kind.__module__}.{kind.__qualname__} cannot be pickled "
            f"({type(err).__name__}: {err}); store tensors, state dicts and plain Python values"
        ) from err
    buffer.seek(0)
    try:
        torch.load(buffer, weights_only=True)
    except pickle.UnpicklingError:
        return False
    return True


def _check_loadable(value: object, where: str) -> None:
    """Raise ``TypeError`` naming ``where`` if ``value`` would not load with ``weights_only``."""
    kind = type(value)
    if kind in (torch.Tensor, torch.nn.Parameter) or kind in _PLAIN:
        return
    if kind in (dict, OrderedDict):
        for key, item in value.items():
            _check_loadable(key, f"{where} key {key!r}")
            _check_loadable(item, f"{where}[{key!r}]")
        return
    if kind in (list, tuple):
        for i, item in enumerate(value):
            _check_loadable(item, f"{where}[{i}]")
        return
    # rare types (sets, complex, subclasses): ask torch's own weights-only unpickler
    if not _weights_only_loadable(value, where):
        raise TypeError(
            f"cannot save {where}: a {kind.__module__}.{kind.__qualname__} would not load with "
            "torch.load(weights_only=True); store tensors, state dicts and plain Python values "
            "(e.g. vars(args) instead of an argparse.Namespace, str(path) instead of a Path)"
        )


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically (temp file in the same folder, then rename).

    A crash mid-write leaves the previous checkpoint intact. The file gets the mode a plain
    ``open()`` would give (``0644`` under umask 022). ``state`` must hold tensors,
    state dicts and plain Python values only, so it loads with ``weights_only=True``;
    anything else is refused before a byte is written.

    Raises:
        TypeError: ``state`` is not a dict, or holds a value that would not load with
            ``weights_only=True`` or cannot be pickled at all (the message names its key,
            e.g. ``state['args']``).
        ValueError: ``path`` is a folder or lies below a file (nothing is written).

    Example:
        >>> save_checkpoint({"model": net.state_dict(), "epoch": 3}, "last.pt")  # doctest: +SKIP
    """
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    _check_loadable(state, "state")
    path = check_output_path("path", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(path)  # temp files of saves that were killed mid-write
    fd, tmp = temp_file(path)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message names it).
        ValueError: the file is empty, truncated or not a torch checkpoint (names the path).
        pickle.UnpicklingError: the file holds objects other than tensors and plain values
            (refused by ``weights_only=True``; names the path).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {str(path)!r}")
    if path.stat().st_size == 0:
        raise ValueError(
            f"checkpoint {str(path)!r} is empty (0 bytes): an interrupted write or not a "
            "checkpoint; delete it to start again"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower():
            raise pickle.UnpicklingError(f"checkpoint {str(path)!r} refused: {e}") from e
        raise ValueError(f"{str(path)!r} is not a torch checkpoint ({e})") from e
    except (EOFError, KeyError, IndexError, UnicodeDecodeError) as e:
        raise ValueError(
            f"{str(path)!r} is truncated or not a torch checkpoint "
            f"({type(e).__name__}: {e or 'unexpected end of data'})"
        ) from e
    except RuntimeError as e:
        if "zip archive" in str(e) or "PytorchStreamReader" in str(e):
            raise ValueError(f"{str(path)!r} is truncated or not a torch checkpoint ({e})") from e
        raise RuntimeError(f"loading checkpoint {str(path)!r}: {e}") from e
