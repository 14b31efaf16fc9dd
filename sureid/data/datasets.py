"""Readers for the standard person re-ID folder layouts.

Every reader returns a :class:`ReIDDataset` of :class:`ImageRecord` ``(path, pid, camid)``
with zero-based camids and train pids relabelled to ``0..K-1`` (sorted raw pids). Query and
gallery keep their raw pids, so the two sets line up for evaluation.

Layouts (``root`` may be the dataset folder itself or its parent holding one of the usual
folder names, e.g. ``Market-1501-v15.09.15``):

* Market-1501: ``bounding_box_train/``, ``query/``, ``bounding_box_test/``; names
  ``0002_c1s1_000451_03.jpg``. Junk images (pid -1) are dropped; distractors (pid 0) are kept
  in the gallery only. A folder with no image of a real identity (pid >= 1) is an error.
* DukeMTMC-reID and Occluded-DukeMTMC: same three folders; names ``0001_c2_f0046182.jpg``.
* Occluded-REID: ``occluded_body_images/`` (query) and ``whole_body_images/`` (gallery).
* Partial-REID: ``partial_body_images/`` (query) and ``whole_body_images/`` (gallery).

Occluded-REID and Partial-REID are test-only (``train`` is empty). Images may have any
extension in ``IMAGE_EXTENSIONS`` (``.jpg``, ``.png``, ``.tif``, ...), flat or in per-identity
subfolders (the original release is ``<folder>/001/001_01.tif``). The pid is the leading
number of the file name (``001_01.tif`` -> 1) or, failing that, a numeric parent folder name.
Camera policy: every query gets camid 0 and every gallery image camid 1, so the Market-1501
same-camera rule removes nothing and all of an identity's holistic images count as matches;
Rank-1 / Rank-3 are ``cmc[0]`` / ``cmc[2]`` of :func:`sureid.metrics.evaluate`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from .._image_files import IMAGE_EXTENSIONS, image_paths
from .folder import read_custom
from .labels import camera_style_labels, is_market_name, pid_only_label
from .records import ImageRecord, ReIDDataset, _has_images, _raw_identities, _relabel

__all__ = [
    "DATASETS",
    "ImageRecord",
    "ReIDDataset",
    "build_dataset",
    "detect_layout",
    "read_dukemtmc",
    "read_market1501",
    "read_occluded_duke",
    "read_occluded_reid",
    "read_partial_reid",
]


# ----------------------------------------------------------------------------- helpers
def _locate(root, folders: Sequence[str], aliases: Sequence[str], name: str) -> Path:
    """``root`` itself if it holds ``folders``, else ``root/<alias>`` that does."""
    base = Path(root).expanduser()
    if not base.is_dir():
        raise FileNotFoundError(f"{name}: dataset root {str(base)!r} does not exist")
    for cand in (base, *(base / a for a in aliases)):
        if all((cand / f).is_dir() for f in folders):
            return cand
    missing = [f for f in folders if not (base / f).is_dir()]
    raise FileNotFoundError(
        f"{name}: expected folder(s) {missing} under {str(base)!r} "
        f"(or under one of its subfolders {list(aliases)})"
    )


def _images(folder: Path, recursive: bool) -> list[Path]:
    files = image_paths(folder, recursive=recursive)  # a link leading nowhere is an error
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {str(folder)!r}")
    return files


def _read_camera_style(folder: Path, name: str, keep_distractors: bool) -> list[ImageRecord]:
    records = []
    junk = distractors = 0
    for p in _images(folder, recursive=False):
        labels = camera_style_labels(p.name, where=f"{name}: {p.name!r} in {str(folder)!r}")
        if labels is None:
            raise ValueError(
                f"{name}: file name {p.name!r} in {str(folder)!r} does not match "
                "'<pid>_c<camera>...' (e.g. 0002_c1s1_000451_03.jpg or 0001_c2_f0046182.jpg)"
            )
        pid = labels.pid
        junk += pid < 0
        distractors += pid == 0
        if pid < 0 or (pid == 0 and not keep_distractors):
            continue  # junk (-1) is never used; distractors (0) only in the gallery
        records.append(ImageRecord(str(p), pid, labels.camid))
    if len(records) == distractors * keep_distractors:
        # an empty split (or a gallery of background only) evaluates to nothing, silently
        raise ValueError(
            f"{name}: no image of a person identity (pid >= 1) in {str(folder)!r}: "
            f"found {junk + distractors} image(s), {junk} junk (pid -1, '-1_...') and "
            f"{distractors} distractor/background (pid 0, '0000_...'); is this the right folder?"
        )
    return records


def _read_three_folder(root, name: str, aliases: Sequence[str]) -> ReIDDataset:
    folders = _THREE_FOLDERS
    base = _locate(root, folders, aliases, name)
    train = _read_camera_style(base / folders[0], name, keep_distractors=False)
    query = _read_camera_style(base / folders[1], name, keep_distractors=False)
    gallery = _read_camera_style(base / folders[2], name, keep_distractors=True)
    return ReIDDataset(name, _relabel(train), query, gallery,
                       train_identities=_raw_identities(train))


def _read_pid_only(folder: Path, name: str, camid: int) -> list[ImageRecord]:
    records = []
    for p in _images(folder, recursive=True):
        rel = p.relative_to(folder)
        pid = pid_only_label(rel, f"{name}: the pid of {str(p)!r}")
        if pid is None:
            raise ValueError(
                f"{name}: cannot read a pid from {str(rel)!r} in {str(folder)!r}; expected "
                "'<pid>_<n>.<ext>' or a '<pid>/' subfolder"
            )
        records.append(ImageRecord(str(p), pid, camid))
    return records


def _read_query_whole(root, name, query_folder, aliases) -> ReIDDataset:
    folders = (query_folder, "whole_body_images")
    base = _locate(root, folders, aliases, name)
    query = _read_pid_only(base / query_folder, name, camid=0)
    gallery = _read_pid_only(base / "whole_body_images", name, camid=1)
    return ReIDDataset(name, [], query, gallery)


# ----------------------------------------------------------------------------- readers
# the usual folder names of each dataset, looked for below a parent ``root``
_FOLDER_NAMES = {
    "market1501": ("Market-1501-v15.09.15", "Market-1501", "market1501"),
    "dukemtmc": ("DukeMTMC-reID", "dukemtmc-reid", "dukemtmcreid"),
    "occluded_duke": ("Occluded_Duke", "Occluded-DukeMTMC", "occluded_duke", "OccludedDuke"),
    "occluded_reid": ("OccludedREID", "Occluded_REID", "Occluded-REID", "occluded_reid"),
    "partial_reid": ("Partial-REID", "Partial_REID", "PartialREID", "Partial-REID_Dataset",
                     "partial_reid"),
}
_THREE_FOLDERS = ("bounding_box_train", "query", "bounding_box_test")
_QUERY_WHOLE = {"occluded_reid": "occluded_body_images", "partial_reid": "partial_body_images"}


def read_market1501(root) -> ReIDDataset:
    """Market-1501 (12,936 train / 751 ids, 3,368 query, 19,732 gallery incl. distractors).

    Raises:
        FileNotFoundError: ``root`` or one of its three folders is missing (named).
        ValueError: a folder without images, with a file name not in the Market pattern, or
            whose images are all junk (pid -1) or distractors (pid 0).
    """
    return _read_three_folder(root, "market1501", _FOLDER_NAMES["market1501"])


def read_dukemtmc(root) -> ReIDDataset:
    """DukeMTMC-reID (16,522 train / 702 ids, 2,228 query, 17,661 gallery). Raises as above."""
    return _read_three_folder(root, "dukemtmc", _FOLDER_NAMES["dukemtmc"])


def read_occluded_duke(root) -> ReIDDataset:
    """Occluded-DukeMTMC (15,618 train / 702 ids, 2,210 query, 17,661 gallery). Raises as above."""
    return _read_three_folder(root, "occluded_duke", _FOLDER_NAMES["occluded_duke"])


def read_occluded_reid(root) -> ReIDDataset:
    """Occluded-REID (test only): occluded queries (camid 0) vs holistic gallery (camid 1)."""
    return _read_query_whole(root, "occluded_reid", "occluded_body_images",
                             _FOLDER_NAMES["occluded_reid"])


def read_partial_reid(root) -> ReIDDataset:
    """Partial-REID (test only): partial queries (camid 0) vs holistic gallery (camid 1)."""
    return _read_query_whole(root, "partial_reid", "partial_body_images",
                             _FOLDER_NAMES["partial_reid"])


def _read_custom(root) -> ReIDDataset:
    """Your own data (:func:`sureid.data.folder.read_custom`)."""
    return read_custom(root)


DATASETS: dict[str, Callable[..., ReIDDataset]] = {
    "market1501": read_market1501,
    "dukemtmc": read_dukemtmc,
    "occluded_duke": read_occluded_duke,
    "occluded_reid": read_occluded_reid,
    "partial_reid": read_partial_reid,
    "custom": _read_custom,  # <pid>/<camid>_*.jpg folders or path,pid,camid CSVs
}
_ALIASES = {
    "market": "market1501", "dukemtmcreid": "dukemtmc", "duke": "dukemtmc",
    "occludedduke": "occluded_duke", "occludeddukemtmc": "occluded_duke",
    "occludedreid": "occluded_reid", "partialreid": "partial_reid",
    "folder": "custom", "csv": "custom",
}


def _is_custom(base: Path) -> bool:
    """``query``/``gallery``/``train`` folders or CSVs, or identity subfolders of images."""
    if any((base / s).is_dir() or (base / f"{s}.csv").is_file()
           for s in ("query", "gallery", "train")):
        return True
    return any(p.is_dir() and not p.name.startswith(".") and _has_images(p)
               for p in base.iterdir())


def _three_folder_layout(folder: Path, hint: str | None) -> str:
    """Market-1501 when a query or gallery name is Market's, else the hinted Duke variant."""
    for sub in ("query", "bounding_box_test"):
        with os.scandir(folder / sub) as it:
            for n, entry in enumerate(it):
                if is_market_name(entry.name):
                    return "market1501"
                if n > 200:  # the names of one dataset all look alike
                    break
    return hint if hint in ("dukemtmc", "occluded_duke") else "occluded_duke"


def detect_layout(root: str | os.PathLike) -> str:
    """The :data:`DATASETS` reader that reads ``root``, as ``build_dataset(..., "auto")`` would.

    ``root`` itself, else one of its subfolders with a usual dataset name
    (``Market-1501-v15.09.15``, ``Occluded_Duke``, ...), is looked at:

    * ``bounding_box_train/``, ``query/``, ``bounding_box_test/``: ``market1501`` when the
      file names are Market's (``0002_c1s1_000451_03.jpg``), else ``dukemtmc`` or
      ``occluded_duke`` as the folder's name says (``occluded_duke`` by default: their
      readers are the same);
    * ``occluded_body_images/`` + ``whole_body_images/``: ``occluded_reid``;
      ``partial_body_images/`` + ``whole_body_images/``: ``partial_reid``;
    * ``root`` with ``query``/``gallery``/``train`` folders or CSVs, or with identity
      subfolders of images (``person_0001/img.jpg``): ``custom``.

    Raises:
        FileNotFoundError: ``root`` is not a folder, or no layout fits (the message lists them).

    Example:
        >>> detect_layout("data/")  # doctest: +SKIP
        'market1501'
    """
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a str or os.PathLike, got {type(root).__name__}")
    base = Path(root).expanduser()
    if not base.is_dir():
        what = "is not a folder" if base.exists() else "not found"
        raise FileNotFoundError(f"dataset root {str(base)!r} {what}")
    candidates = [(base, None)] + [(base / alias, layout) for layout, aliases in
                                   _FOLDER_NAMES.items() for alias in aliases]
    for folder, hint in candidates:
        if not folder.is_dir():
            continue
        if all((folder / f).is_dir() for f in _THREE_FOLDERS):
            return _three_folder_layout(folder, hint)
        for layout, query in _QUERY_WHOLE.items():
            if (folder / query).is_dir() and (folder / "whole_body_images").is_dir():
                return layout
    if _is_custom(base):
        return "custom"
    raise FileNotFoundError(
        f"dataset root {str(base)!r}: no known layout (bounding_box_train/ query/ "
        "bounding_box_test/; occluded_body_images/ or partial_body_images/ with "
        "whole_body_images/; query/ gallery/ train/ folders or CSVs; or one folder per "
        f"identity), here or in a subfolder named like {list(_FOLDER_NAMES['market1501'])}; "
        f"name the layout, one of {sorted(DATASETS)}"
    )


def build_dataset(name: str, root) -> ReIDDataset:
    """Read dataset ``name`` (a key of :data:`DATASETS`, case/dash-insensitive, or ``"auto"``:
    :func:`detect_layout`) from ``root``; ``result.name`` says which reader read it.

    Example:
        >>> build_dataset("Occluded-Duke", "data/")  # doctest: +SKIP
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name.lower() == "auto":
        name = detect_layout(root)
    key = name.lower().replace("-", "_")
    if key not in DATASETS:
        key = _ALIASES.get(key.replace("_", ""), key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    return DATASETS[key](root)
