"""Your own data: a folder of ``<pid>/<camid>_*.jpg`` per split, or CSV files ``path,pid,camid``.

Layout read by :func:`read_custom` (``build_dataset("custom", root)``)::

    root/
      train/   0001/0_a.jpg  0001/2_b.jpg  0002/1_x.png ...   (optional)
      query/   0007/0_q.jpg ...
      gallery/ 0007/1_g.jpg  0009/0_h.jpg ...

or ``root/train.csv``, ``root/query.csv``, ``root/gallery.csv`` (any mix of folders and CSV
files). Each CSV row is ``path,pid,camid`` (a header line naming those columns is optional);
relative paths are relative to the CSV file's folder.

pids and camids are integers, used as given in query and gallery (any values; the
Market-1501 rule removes gallery images with the query's pid **and** camid); train pids are
relabelled to ``0..K-1`` like every reader's.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

from .._checks import check_label
from .._image_files import list_images
from .datasets import ImageRecord, ReIDDataset, _relabel

__all__ = ["read_csv_records", "read_custom", "read_folder_records"]

_SPLITS = ("train", "query", "gallery")


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _int(text: str, what: str, where: str) -> int:
    # ASCII digits only: int() would also read "1_000", " 7" and other scripts' digits
    if not _INTEGER.fullmatch(text):
        raise ValueError(f"{where}: {what} must be an integer, got {text!r}")
    return check_label(f"{where}: {what}", int(text))


def read_folder_records(folder: str | os.PathLike) -> list[ImageRecord]:
    """Records of a ``<pid>/<camid>_*.<ext>`` folder, sorted by path.

    Raises:
        FileNotFoundError: ``folder`` does not exist.
        ValueError: no images, an image outside a ``<pid>/`` subfolder, or a name without a
            leading ``<camid>_``; the message names the file.
    """
    root = Path(folder).expanduser()
    files = list_images(root)
    records = []
    for p in files:
        rel = p.relative_to(root)
        if len(rel.parts) != 2:
            raise ValueError(
                f"{str(root)!r}: expected <pid>/<camid>_<name>.<ext>, got {str(rel)!r}"
            )
        where = f"{str(root)!r}: {str(rel)!r}"
        pid = _int(rel.parts[0], "the folder name (pid)", where)
        cam, sep, _ = p.stem.partition("_")
        if not sep:
            raise ValueError(f"{where}: the file name must start with '<camid>_'")
        records.append(ImageRecord(str(p), pid, _int(cam, "the camid before '_'", where)))
    return records


def read_csv_records(csv_path: str | os.PathLike) -> list[ImageRecord]:
    """Records of a CSV file of ``path,pid,camid`` rows (optional header), in file order.

    The file is UTF-8 text (a byte-order mark is allowed).

    Raises:
        FileNotFoundError: the CSV or an image it lists does not exist.
        ValueError: a row without three fields or with non-integer pid/camid (line named);
            a file that is not UTF-8 text (UTF-16, binary) or holds NUL bytes (file named).
    """
    csv_path = Path(csv_path).expanduser()
    if not csv_path.is_file():
        raise FileNotFoundError(f"CSV file not found: {str(csv_path)!r}")
    try:
        text = csv_path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{str(csv_path)!r} is not UTF-8 text ({err.reason} at byte {err.start}; UTF-16 "
            "or binary?): save it as UTF-8 CSV rows 'path,pid,camid'"
        ) from None
    if "\0" in text:
        raise ValueError(
            f"{str(csv_path)!r} holds NUL bytes (binary, or UTF-16 without a byte-order mark): "
            "save it as UTF-8 CSV rows 'path,pid,camid'"
        )
    records = []
    for line, row in enumerate(csv.reader(io.StringIO(text, newline="")), 1):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        fields = [c.strip() for c in row]
        if line == 1 and [c.lower() for c in fields] == ["path", "pid", "camid"]:
            continue
        where = f"{str(csv_path)!r} line {line}"
        if len(fields) != 3:
            raise ValueError(f"{where}: expected 'path,pid,camid', got {row!r}")
        path = Path(fields[0]).expanduser()
        if not path.is_absolute():
            path = csv_path.parent / path
        if not path.is_file():
            raise FileNotFoundError(f"{where}: image not found: {str(path)!r}")
        records.append(ImageRecord(
            str(path), _int(fields[1], "pid", where), _int(fields[2], "camid", where)
        ))
    if not records:
        raise ValueError(f"{str(csv_path)!r} lists no images")
    return records


def _split(root: Path, name: str, required: bool) -> list[ImageRecord]:
    folder, table = root / name, root / f"{name}.csv"
    if folder.is_dir() and table.is_file():
        raise ValueError(f"{str(root)!r} has both {name}/ and {name}.csv; keep one")
    if folder.is_dir():
        return read_folder_records(folder)
    if table.is_file():
        return read_csv_records(table)
    if required:
        raise FileNotFoundError(
            f"custom: expected {name}/ (<pid>/<camid>_*.jpg) or {name}.csv (path,pid,camid) "
            f"under {str(root)!r}"
        )
    return []


def read_custom(root: str | os.PathLike) -> ReIDDataset:
    """Your own dataset: ``query`` and ``gallery`` (and optionally ``train``) under ``root``,
    each a ``<pid>/<camid>_*.jpg`` folder or a ``path,pid,camid`` CSV (see module docstring).

    Example:
        >>> ds = build_dataset("custom", "my_data/")  # doctest: +SKIP
    """
    base = Path(root).expanduser()
    if not base.is_dir():
        raise FileNotFoundError(f"custom: dataset root {str(base)!r} does not exist")
    train, query, gallery = (_split(base, s, required=s != "train") for s in _SPLITS)
    return ReIDDataset("custom", _relabel(train), query, gallery)
