"""Your own data: one folder per identity, or CSV files, per split.

Layouts read by :func:`read_custom` (``build_dataset("custom", root)``)::

    root/                                   root/
      train/   0001/0_a.jpg  0002/1_x.png     train/   person_0001/img.jpg ...
      query/   0007/0_q.jpg ...               query/   person_0007/q1.jpg ...
      gallery/ 0007/1_g.jpg ...               gallery/ person_0007/g1.jpg ...

    root/  person_0001/img.jpg  person_0002/a.png ...   (training only: no query/gallery)

or ``root/train.csv``, ``root/query.csv``, ``root/gallery.csv`` (any mix of folders and CSV
files), rows ``path,pid,camid`` or ``path,pid`` (a header line naming those columns is
optional); relative paths are relative to the CSV file's folder.

Identities: the subfolder's name or the CSV's pid. When every identity in the dataset is
an integer, pids are those integers; otherwise every identity is a name (``person_0001``)
and the names, sorted, are numbered 0, 1, ... across all splits (``"7"`` and ``"007"`` are
then different names). Train pids are relabelled to ``0..K-1`` like every reader's;
:attr:`ReIDDataset.train_identities` keeps the name of each label.

Cameras: from the file names (``<camid>_*.jpg``, every file of the split) or the CSV's
``camid`` column. A split without cameras (no file starts with ``<camid>_``, or a two-column
CSV) gives **every image its own camera**, numbered across query and gallery, which is what
the Market-1501 rule needs: it removes gallery images of the query's pid *and* camera, so
one shared camera would remove every true match. Query and gallery both have cameras or
both have none.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import NamedTuple

from .._image_files import list_images
from .labels import is_integer, leading_camid, parse_int
from .records import ImageRecord, ReIDDataset, _has_images, _raw_identities, _relabel

__all__ = ["read_csv_records", "read_custom", "read_folder_records"]

_SPLITS = ("train", "query", "gallery")


class _Entry(NamedTuple):
    """One image before labelling: its identity as written and its camera, if any."""

    path: str
    identity: str
    camid: int | None
    where: str


def _folder_entries(root: Path) -> list[_Entry]:
    """``<identity>/<file>`` entries of a folder; cameras from ``<camid>_`` names when every
    file has one, else none."""
    files = list_images(root)
    entries, without = [], []
    for p in files:
        rel = p.relative_to(root)
        where = f"{str(root)!r}: {str(rel)!r}"
        if len(rel.parts) != 2:
            raise ValueError(
                f"{str(root)!r}: expected <pid>/<camid>_<name>.<ext> or <identity>/<name>.<ext> "
                f"(one subfolder per identity), got {str(rel)!r}"
            )
        camid = leading_camid(p.stem, where, "the camid before '_'")
        if camid is None:
            without.append(where)
        entries.append(_Entry(str(p), rel.parts[0], camid, where))
    if without and len(without) < len(entries):
        raise ValueError(
            f"{without[0]}: the file name must start with '<camid>_' as the other "
            f"{len(entries) - len(without)} file(s) of {str(root)!r} do, or none may (then "
            "every image is its own camera)"
        )
    return entries


def read_folder_records(folder: str | os.PathLike) -> list[ImageRecord]:
    """Records of a ``<pid>/<camid>_*.<ext>`` folder (integer pids and cameras), sorted by path.

    :func:`read_custom` also reads folders of named identities and without cameras.

    Raises:
        FileNotFoundError: ``folder`` does not exist.
        ValueError: no images, an image outside a ``<pid>/`` subfolder, a non-integer folder
            name or a name without a leading ``<camid>_``; the message names the file.
    """
    records = []
    for e in _folder_entries(Path(folder).expanduser()):
        pid = parse_int(e.identity, "the folder name (pid)", e.where)
        if e.camid is None:
            raise ValueError(f"{e.where}: the file name must start with '<camid>_'")
        records.append(ImageRecord(e.path, pid, e.camid))
    return records


def _csv_entries(csv_path: Path) -> list[_Entry]:
    """Rows ``path,pid,camid`` or ``path,pid`` (one width per file) as entries."""
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
    entries: list[_Entry] = []
    width = None
    for line, row in enumerate(csv.reader(io.StringIO(text, newline="")), 1):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        fields = [c.strip() for c in row]
        if line == 1 and [c.lower() for c in fields] in (["path", "pid", "camid"],
                                                         ["path", "pid"]):
            width = len(fields)
            continue
        where = f"{str(csv_path)!r} line {line}"
        if len(fields) not in (2, 3) or (width is not None and len(fields) != width):
            want = {None: "'path,pid,camid' or 'path,pid'", 2: "'path,pid' as the lines before",
                    3: "'path,pid,camid' as the lines before"}[width]
            raise ValueError(f"{where}: expected {want}, got {row!r}")
        width = len(fields)
        if not fields[1]:
            raise ValueError(f"{where}: the pid is empty")
        path = Path(fields[0]).expanduser()
        if not path.is_absolute():
            path = csv_path.parent / path
        if not path.is_file():
            raise FileNotFoundError(f"{where}: image not found: {str(path)!r}")
        camid = parse_int(fields[2], "camid", where) if width == 3 else None
        entries.append(_Entry(str(path), fields[1], camid, where))
    if not entries:
        raise ValueError(f"{str(csv_path)!r} lists no images")
    return entries


def read_csv_records(csv_path: str | os.PathLike) -> list[ImageRecord]:
    """Records of a CSV file of ``path,pid,camid`` rows (optional header), in file order.

    The file is UTF-8 text (a byte-order mark is allowed). :func:`read_custom` also reads
    named identities and two-column ``path,pid`` files.

    Raises:
        FileNotFoundError: the CSV or an image it lists does not exist.
        ValueError: a row without three fields or with non-integer pid/camid (line named);
            a file that is not UTF-8 text (UTF-16, binary) or holds NUL bytes (file named).
    """
    records = []
    for e in _csv_entries(Path(csv_path).expanduser()):
        if e.camid is None:
            raise ValueError(f"{e.where}: expected 'path,pid,camid', got no camid")
        records.append(ImageRecord(e.path, parse_int(e.identity, "pid", e.where), e.camid))
    return records


def _split(root: Path, name: str, required: bool) -> list[_Entry]:
    folder, table = root / name, root / f"{name}.csv"
    if folder.is_dir() and table.is_file():
        raise ValueError(f"{str(root)!r} has both {name}/ and {name}.csv; keep one")
    if folder.is_dir():
        return _folder_entries(folder)
    if table.is_file():
        return _csv_entries(table)
    if required:
        raise FileNotFoundError(
            f"custom: expected {name}/ (<pid>/<camid>_*.jpg or <identity>/*.jpg) or {name}.csv "
            f"(path,pid,camid or path,pid) under {str(root)!r}, or only identity subfolders "
            "(training data)"
        )
    return []


def _bare_identity_root(base: Path) -> bool:
    """``base`` holds identity subfolders of images and no split folder or CSV."""
    if any((base / s).exists() or (base / f"{s}.csv").exists() for s in _SPLITS):
        return False
    return any(p.is_dir() and not p.name.startswith(".") and _has_images(p)
               for p in base.iterdir())


def read_custom(root: str | os.PathLike) -> ReIDDataset:
    """Your own dataset (see the module docstring): ``query`` and ``gallery`` (and optionally
    ``train``) under ``root``, each a folder of identity subfolders or a CSV; or ``root``
    holding only identity subfolders, read as training data (no query or gallery).

    Raises:
        FileNotFoundError: ``root``, ``query`` or ``gallery`` missing (when ``root`` is not an
            identity folder itself), or an image a CSV lists.
        ValueError: bad names or rows (file and line named); cameras in some files of a split
            and not in others, or in query but not gallery (or the reverse).

    Example:
        >>> ds = build_dataset("custom", "my_data/")  # doctest: +SKIP
        >>> ds.label_map  # doctest: +SKIP
        {'person_0001': 0, 'person_0002': 1}
    """
    base = Path(root).expanduser()
    if not base.is_dir():
        raise FileNotFoundError(f"custom: dataset root {str(base)!r} does not exist")
    if _bare_identity_root(base):
        splits = {"train": _folder_entries(base), "query": [], "gallery": []}
    else:
        splits = {s: _split(base, s, required=s != "train") for s in _SPLITS}
    everyone = [e for entries in splits.values() for e in entries]
    named = not all(is_integer(e.identity) for e in everyone)
    if named:  # names, numbered in sorted order across the splits
        number = {n: i for i, n in enumerate(sorted({e.identity for e in everyone}))}

        def pid_of(e: _Entry) -> int:
            return number[e.identity]
    else:
        def pid_of(e: _Entry) -> int:
            return parse_int(e.identity, "the pid", e.where)

    given = {s: bool(entries) and entries[0].camid is not None for s, entries in splits.items()}
    if splits["query"] and splits["gallery"] and given["query"] != given["gallery"]:
        has, lacks = ("query", "gallery") if given["query"] else ("gallery", "query")
        raise ValueError(
            f"custom {str(base)!r}: {has} has cameras (<camid>_ names or a camid column) and "
            f"{lacks} has none; give both cameras, or neither (every image its own camera)"
        )
    own = iter(range(1 << 62))  # per-image cameras, numbered across query and gallery
    records = {}
    for s, entries in splits.items():
        counter = own if s != "train" else iter(range(1 << 62))
        records[s] = [ImageRecord(e.path, pid_of(e), e.camid if e.camid is not None
                                  else next(counter)) for e in entries]
    train = records["train"]
    if named:
        names = sorted({e.identity for e in everyone})
        identities = tuple(names[p] for p in sorted({r.pid for r in train}))
    else:
        identities = _raw_identities(train)
    per_image = bool(splits["query"]) and not given["query"]
    return ReIDDataset("custom", _relabel(train), records["query"], records["gallery"],
                       train_identities=identities, camera_per_image=per_image)
