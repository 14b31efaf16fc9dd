"""The files a training run reads and the output folder it writes.

:func:`_weights_file` finds the file a ``weights``/``checkpoint`` setting names (a path or a
shipped name); :func:`_check_out` decides whether an output folder is new, an earlier run of
the same config to resume, or refused; :func:`_write_text` replaces a file atomically.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._atomic import temp_file
from ..models.pretrained import shipped_weights_dir
from .config import TrainConfig, merge, to_dict
from .files import read_config_file

__all__ = ["OUTPUT_NAMES"]

#: what ``sureid train`` writes into its output folder (besides ``config.toml|json``)
OUTPUT_NAMES = frozenset({"model.pt", "best.pt", "teacher.pt", "log.csv", "checkpoints",
                          "tensorboard"})
_CONFIG_NAMES = ("config.toml", "config.json")
# a temporary file of an atomic write that a killed run left: ".{name}.tmp-..."
_TEMP = re.compile(r"^\.(.+)\.(tmp|old)-")


def _weights_file(key: str, value: str) -> Path | None:
    """The file ``value`` of ``student.weights``/``teacher.weights`` names (None: '' or
    'timm'): a path, or a shipped name looked up in :func:`shipped_weights_dir`."""
    if value in ("", "timm"):
        return None
    path = Path(value).expanduser()
    if path.is_file():
        return path.resolve()
    if path.suffix == "" and "/" not in value and os.sep not in value:
        candidate = shipped_weights_dir() / f"{value}.pt"
        if candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError(
        f"{key} {value!r}: no such file, and not a shipped name in "
        f"{str(shipped_weights_dir())!r} (set SUREID_WEIGHTS_DIR to the folder holding "
        "them); use '' for random weights or 'timm' for timm's")


def _absolute(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with its paths absolute (names of shipped weights stay names)."""
    def path(value: str) -> str:
        return str(Path(value).expanduser().resolve()) if value else value

    def weights(value: str) -> str:
        p = Path(value).expanduser()
        return str(p.resolve()) if value not in ("", "timm") and p.is_file() else value

    return merge(cfg, {
        "data": {"root": path(cfg.data.root), "occluders": path(cfg.data.occluders)},
        "student": {"weights": weights(cfg.student.weights)},
        "teacher": {"weights": weights(cfg.teacher.weights),
                    "checkpoint": weights(cfg.teacher.checkpoint)},
    })


def _differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``"key old -> new"`` for each dotted key whose value differs between two nested
    mappings."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key} {a!r} -> {b!r}")
    return out


def _check_out(out: Path, cfg: TrainConfig, fmt: str) -> bool:
    """Whether ``out`` is an earlier run of ``cfg`` to resume (False: new or empty);
    anything else there is refused."""
    if not out.exists() or not any(out.iterdir()):
        return False
    found = [n for n in _CONFIG_NAMES if (out / n).is_file()]
    if not found:
        raise FileExistsError(
            f"-o {str(out)!r} holds files and no config.toml/config.json of an earlier "
            "'sureid train'; refusing to write into it: choose a new or empty folder")
    if len(found) > 1 or found[0] != f"config.{fmt}":
        raise FileExistsError(
            f"-o {str(out)!r} holds {' and '.join(found)}, this run's config is config.{fmt}; "
            "choose a new or empty folder")
    try:
        old = to_dict(merge(TrainConfig(), read_config_file(out / found[0])[0]))
    except (TypeError, ValueError) as err:
        raise FileExistsError(f"-o {str(out)!r}: its {found[0]} does not read back ({err}); "
                              "choose a new or empty folder") from None
    diff = _differences(old, to_dict(cfg))
    if diff:
        raise FileExistsError(
            f"-o {str(out)!r} holds a run with another config, refusing to resume it "
            f"({'; '.join(diff)}); choose a new or empty folder")
    others = sorted(p.name for p in out.iterdir() if p.name not in (*OUTPUT_NAMES, found[0])
                    and not (_TEMP.match(p.name) and _TEMP.match(p.name).group(1)
                             in (*OUTPUT_NAMES, found[0])))
    if others:
        shown = ", ".join(repr(n) for n in others[:3]) + (" ..." if len(others) > 3 else "")
        raise FileExistsError(f"-o {str(out)!r} holds {len(others)} file(s) 'sureid train' "
                              f"did not write: {shown}; choose a new or empty folder")
    return True


def _write_text(path: Path, text: str, *, newline: str | None = None) -> None:
    """Replace ``path`` by ``text`` atomically: a temporary sibling renamed into place.

    ``newline`` is :func:`open`'s (``""`` writes ``text`` untranslated, as :mod:`csv` wants).
    """
    fd, tmp = temp_file(path)
    try:
        with open(fd, "w", newline=newline, encoding="utf-8") as f:
            f.write(text)
        Path(tmp).replace(path)
    finally:
        Path(tmp).unlink(missing_ok=True)
