"""Config text: TOML/JSON files, ``--set`` assignments and the command line's config.

Files are TOML (read with :mod:`tomllib`, Python >= 3.11, or the optional ``tomli``
package) or JSON, and are written back in the same format (:func:`dumps`);
``docs/training.md`` explains the choice. :func:`build_config` is what ``sureid train``
runs: the defaults or a preset, then a file, then ``--data-root``, then ``--set``.

Example:
    >>> from sureid.train.presets import from_preset
    >>> cfg = apply_sets(from_preset("smoke"), ["data.root=data/synth", "schedule.epochs=2"])
    >>> cfg.schedule.epochs, cfg.data.root
    (2, 'data/synth')
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .config import _SECTIONS, TrainConfig, _scalar_fields, merge, to_dict
from .fields import _kind
from .presets import from_preset

__all__ = [
    "apply_sets",
    "build_config",
    "default_format",
    "dumps",
    "load_config",
    "read_config_file",
    "template",
]


def _field_of(key: str) -> dataclasses.Field:
    """The field a ``--set`` key (``seed`` or ``section.key``) names; ``ValueError`` when
    none does (the message lists the known ones)."""
    section, dot, name = key.partition(".")
    if not dot:
        fields = {f.name: f for f in _scalar_fields(TrainConfig)}
        if key in _SECTIONS:
            raise ValueError(f"--set {key}: a section; set one of its keys, e.g. "
                             f"{key}.{dataclasses.fields(_SECTIONS[key])[0].name}=...")
        if key not in fields:
            raise ValueError(f"--set {key}: no such setting; top-level keys {sorted(fields)}, "
                             f"sections {list(_SECTIONS)} (keys as section.key)")
        return fields[key]
    if section not in _SECTIONS:
        raise ValueError(f"--set {key}: no section {section!r}; sections {list(_SECTIONS)}")
    fields = {f.name: f for f in dataclasses.fields(_SECTIONS[section])}
    if name not in fields:
        raise ValueError(f"--set {key}: no such setting; the [{section}] keys are "
                         f"{sorted(fields)}")
    return fields[name]


def _parse_value(text: str, f: dataclasses.Field) -> object:
    """``--set`` text as the field's kind: strings as given (quotes optional), numbers,
    ``true``/``false`` and ``[a, b]`` lists as in TOML or JSON."""
    text = text.strip()
    if _kind(f) == "str":
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            return text[1:-1]
        return text
    if text in ("True", "False"):  # Python spelling, also accepted
        text = text.lower()
    text = text.replace("(", "[").replace(")", "]")  # a Python tuple as a list
    try:
        return _toml_reader().loads(f"v = {text}")["v"]  # TOML's spelling: inf, 1e-3, [1, 2]
    except (ImportError, ValueError):
        pass
    try:
        return json.loads(text)
    except ValueError:
        return text  # the type check names the key and quotes the text


def apply_sets(cfg: TrainConfig, assignments: Iterable[str]) -> TrainConfig:
    """``cfg`` with ``--set section.key=VALUE`` assignments applied, in order.

    Raises:
        ValueError: no ``=``, an unknown key (named, with the known ones), a bad value.
        TypeError: a value of the wrong type (named).
    """
    for item in assignments:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep:
            raise ValueError(f"--set takes KEY=VALUE (e.g. schedule.epochs=5), got {item!r}")
        value = _parse_value(text, _field_of(key))
        section, dot, name = key.partition(".")
        cfg = merge(cfg, {section: {name: value}} if dot else {key: value}, where=None)
    return cfg


def _check_format(fmt: object) -> str:
    """``fmt`` if it is ``"toml"`` or ``"json"``, else ``ValueError`` quoting it."""
    if fmt not in ("toml", "json"):
        raise ValueError(f"fmt must be 'toml' or 'json', got {fmt!r}")
    return fmt


def read_config_file(path: str | os.PathLike) -> tuple[dict[str, Any], str]:
    """``(nested values, format)`` of a ``.toml`` or ``.json`` config file.

    TOML is read with :mod:`tomllib` (Python >= 3.11) or, on Python 3.10, the ``tomli``
    package when installed.

    Raises:
        FileNotFoundError: no such file.
        ValueError: another extension, or the file does not parse (the parser's message).
        ImportError: a TOML file on Python 3.10 without ``tomli``.
    """
    path = Path(path).expanduser()
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("toml", "json"):
        raise ValueError(f"config {str(path)!r}: expected a .toml or .json file, got "
                         f"{path.suffix or 'no extension'!r}")
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {str(path)!r}")
    text = path.read_text(encoding="utf-8")
    if fmt == "json":
        try:
            values = json.loads(text)
        except ValueError as err:
            raise ValueError(f"config {str(path)!r} is not valid JSON: {err}") from None
    else:
        toml = _toml_reader()
        try:
            values = toml.loads(text)
        except toml.TOMLDecodeError as err:
            raise ValueError(f"config {str(path)!r} is not valid TOML: {err}") from None
    if not isinstance(values, dict):
        raise ValueError(f"config {str(path)!r} must hold a table of settings, got "
                         f"{type(values).__name__}")
    return values, fmt


def default_format() -> str:
    """``"toml"`` when a TOML reader is available (``tomllib``, or ``tomli``), else ``"json"``."""
    try:
        _toml_reader()
    except ImportError:
        return "json"
    return "toml"


def _toml_reader():
    """:mod:`tomllib`, or ``tomli`` on Python 3.10; ``ImportError`` saying what to do."""
    try:
        import tomllib  # Python >= 3.11
    except ImportError:
        try:
            import tomli as tomllib  # the same parser, for Python 3.10
        except ImportError:
            raise ImportError("reading a TOML config needs Python >= 3.11 or the tomli "
                              "package (`pip install tomli`); or write the config as JSON "
                              "(`sureid train --template json`)") from None
    return tomllib


def load_config(path: str | os.PathLike, *, base: TrainConfig | None = None
                ) -> tuple[TrainConfig, str]:
    """``(base with the file's settings, format)``; ``base`` defaults to :class:`TrainConfig`.
    Keys the file leaves out keep ``base``'s values."""
    values, fmt = read_config_file(path)
    return merge(base if base is not None else TrainConfig(), values,
                 where=f"config {str(path)!r}"), fmt


def _toml_value(value: object) -> str:
    """``value`` (bool, int, float, str or a list of them) spelled as a TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)  # shortest round-trip form; TOML floats need a '.' or an exponent
        return text if any(c in text for c in ".en") else f"{text}.0"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: the same escapes
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} to TOML")


def dumps(cfg: TrainConfig, fmt: str = "toml", *, comments: bool = False) -> str:
    """``cfg`` as a TOML or JSON document that :func:`load_config` reads back to ``cfg``.

    ``comments=True`` (TOML only) puts each setting's description above it, as in
    ``sureid train --template``.
    """
    if _check_format(fmt) == "json":
        return json.dumps(to_dict(cfg), indent=2) + "\n"
    values = to_dict(cfg)
    lines: list[str] = []
    if comments:
        lines += ["# sureid train configuration (docs/training.md). Every key is optional: a",
                  "# key left out keeps this default (or the --preset's value).", ""]

    def entries(cls, table: Mapping[str, Any], names: list[str]) -> None:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name in names:
            if comments:
                lines.append(f"# {fields[name].metadata['doc']}")
            lines.append(f"{name} = {_toml_value(table[name])}")

    entries(TrainConfig, values, [f.name for f in _scalar_fields(TrainConfig)])
    for name, cls in _SECTIONS.items():
        lines.append("")
        if comments and cls.__doc__:
            lines.append(f"# {cls.__doc__.splitlines()[0]}")
        lines.append(f"[{name}]")
        entries(cls, values[name], [f.name for f in dataclasses.fields(cls)])
    return "\n".join(lines) + "\n"


def build_config(config: str | os.PathLike | None = None, *, preset: str | None = None,
                 data_root: str | os.PathLike | None = None, sets: Iterable[str] = ()
                 ) -> tuple[TrainConfig, str]:
    """``(config, format)`` of a ``sureid train`` command line: the defaults or ``preset``'s
    values, then the file ``config``, then ``data_root``, then the ``--set`` assignments.

    The format is the config file's: the run's config is written back in it. Without a
    file it is ``"toml"``, or ``"json"`` where no TOML reader is installed (Python 3.10
    without ``tomli``), so the written config can always be read back.
    """
    cfg = from_preset(preset) if preset is not None else TrainConfig()
    fmt = default_format()
    if config is not None:
        cfg, fmt = load_config(config, base=cfg)
    if data_root is not None:
        cfg = merge(cfg, {"data": {"root": os.fspath(data_root)}}, where="--data-root")
    return apply_sets(cfg, sets), fmt


def template(fmt: str = "toml") -> str:
    """The default config, commented in TOML (what ``sureid train --template`` prints)."""
    return dumps(TrainConfig(), fmt, comments=fmt == "toml")
