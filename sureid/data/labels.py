"""Labels in file names: the one parser the readers, the CLI and the synthetic writer share.

Two naming schemes carry a pid and a camera:

* Market-1501 / DukeMTMC style, ``<pid>_c<camera>...`` (``0002_c1s1_000451_03.jpg``,
  ``0001_c2_f0046182.jpg``, the synthetic writer's ``0001_c2_f0000001.jpg``): cameras are
  numbered from 1 in the name and from 0 in records (``c1`` -> camid 0);
* the custom folder layout, ``<pid>/<camid>_*.jpg``: the camid is written as used (from 0).

:class:`FileLabels` keeps both numbers: ``camid`` as the readers give it and ``camera`` as
the file name writes it, for showing to people.

A third scheme carries a pid only: Partial-REID and Occluded-REID name an image
``<pid>_<n>.<ext>`` or put it in a ``<pid>/`` folder (:func:`pid_only_label`).

Digits: the two schemes read from data releases (camera-style and pid-only names) take the
decimal digits of any script (Unicode category Nd, ``str.isdecimal``; ``int`` reads them), as
their readers always have; the custom layout, whose names users write, takes ASCII digits
with an optional sign only (:func:`is_integer`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePath
from typing import NamedTuple

from .._checks import check_label

__all__ = [
    "FileLabels", "camera_style_labels", "camera_style_name", "is_integer", "is_market_name",
    "leading_camid", "parse_int", "path_labels", "pid_only_label",
]

# "<pid>_c<camera>" at the start of a name; Market adds "s<sequence>_" after the camera
_CAMERA_STYLE = re.compile(r"^(-?\d+)_c(\d+)")
_MARKET = re.compile(r"^-?\d+_c\d+s\d+_")
# ASCII digits only: int() would also read "1_000", " 7" and other scripts' digits
_INTEGER = re.compile(r"[+-]?[0-9]+")
# "<pid>" at the start of a pid-only name: decimal digits of any script, no sign
_LEADING_PID = re.compile(r"\d+")


class FileLabels(NamedTuple):
    """A pid and a camera read from a file name.

    Attributes:
        pid: the identity, as written.
        camid: the camera as records number it (from 0).
        camera: the camera as the file name writes it (``"c1"`` for Market's camid 0).
    """

    pid: int
    camid: int
    camera: str


def is_integer(text: str) -> bool:
    """Whether ``text`` is an integer as custom layouts write one: ASCII digits, optional sign."""
    return _INTEGER.fullmatch(text) is not None


def parse_int(text: str, what: str, where: str) -> int:
    """``text`` as an int64 label: ASCII digits with an optional sign, else ``ValueError``."""
    if not _INTEGER.fullmatch(text):
        raise ValueError(f"{where}: {what} must be an integer, got {text!r}")
    return check_label(f"{where}: {what}", int(text))


def camera_style_labels(name: str, where: str | None = None) -> FileLabels | None:
    """Labels of a Market/Duke-style file name ``<pid>_c<camera>...``; ``None`` if it is not one.

    Raises:
        ValueError: a pid or camera beyond int64, or camera 0 (they start at 1); the message
            starts with ``where`` (default: the name).

    Example:
        >>> camera_style_labels("0002_c1s1_000451_03.jpg")
        FileLabels(pid=2, camid=0, camera='c1')
    """
    m = _CAMERA_STYLE.match(name)
    if m is None:
        return None
    where = where if where is not None else repr(name)
    pid = check_label(f"{where}: the pid", int(m.group(1)))
    cam = check_label(f"{where}: the camera", int(m.group(2)))
    if cam < 1:
        raise ValueError(f"{where}: camera numbers start at 1 ('_c1'), got {cam}")
    return FileLabels(pid, cam - 1, f"c{cam}")


def is_market_name(name: str) -> bool:
    """Whether ``name`` is Market-1501's ``<pid>_c<camera>s<sequence>_...`` (not Duke's)."""
    return _MARKET.match(name) is not None


def camera_style_name(pid: int, camera: int, frame: int, ext: str = ".jpg") -> str:
    """The Duke-style name ``PPPP_cC_fNNNNNNN.jpg`` (camera from 1) that
    :func:`camera_style_labels` reads back."""
    return f"{pid:04d}_c{camera}_f{frame:07d}{ext}"


def leading_camid(stem: str, where: str, what: str = "the camid") -> int | None:
    """The camid of a custom-layout file stem ``<camid>_<rest>`` (ASCII digits, an optional
    sign); ``None`` when the stem does not start so.

    Raises:
        ValueError: a camid beyond int64; the message starts with ``where``, then ``what``.

    Example:
        >>> leading_camid("3_0001", "x"), leading_camid("front_0001", "x")
        (3, None)
    """
    cam, sep, _ = stem.partition("_")
    if not sep or not _INTEGER.fullmatch(cam):
        return None
    return parse_int(cam, what, where)


def pid_only_label(relative: str | os.PathLike, what: str = "the pid") -> int | None:
    """The pid of a Partial-/Occluded-REID image, given its path ``relative`` to the split
    folder: the leading digits of the file name (``001_01.tif`` -> 1), else the name of the
    subfolder holding it when that is all digits (``003/img_a.jpg`` -> 3); ``None`` when
    neither (``abc.jpg``, ``-1_01.jpg``, ``person/a.jpg``).

    Digits are decimal digits of any script (Arabic-Indic ``٣_01.jpg`` -> 3), no sign; a folder
    of other digit characters (superscript ``²``) is not a pid.

    Raises:
        ValueError: a pid beyond int64; the message starts with ``what``.

    Example:
        >>> pid_only_label("001_01.tif"), pid_only_label("003/img_a.jpg"), pid_only_label("a.jpg")
        (1, 3, None)
    """
    rel = PurePath(relative)
    m = _LEADING_PID.match(rel.stem)
    if m is not None:
        text = m.group()
    elif len(rel.parts) > 1 and rel.parent.name.isdecimal():
        text = rel.parent.name
    else:
        return None
    return check_label(what, int(text))


def path_labels(path: str | os.PathLike) -> FileLabels | None:
    """Labels of an image path: a Market/Duke name, or ``<pid>/<camid>_*`` (custom folders);
    ``None`` when neither fits (identity folders with names, other files).

    Raises:
        ValueError: labels beyond int64 (named with the path).
    """
    p = Path(path)
    where = f"{str(path)!r}"
    found = camera_style_labels(p.name, where=where)
    if found is not None:
        return found
    if not is_integer(p.parent.name):
        return None
    camid = leading_camid(p.stem, where)
    if camid is None:
        return None
    return FileLabels(parse_int(p.parent.name, "the pid", where), camid, str(camid))
