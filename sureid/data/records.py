"""The records every reader returns: :class:`ImageRecord` and :class:`ReIDDataset`.

Kept apart from the readers (:mod:`sureid.data.datasets`, :mod:`sureid.data.folder`) so that
both build on it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .._image_files import IMAGE_EXTENSIONS

__all__ = ["ImageRecord", "ReIDDataset"]


class ImageRecord(NamedTuple):
    """One image: file path, identity, zero-based camera."""

    path: str
    pid: int
    camid: int


@dataclass(frozen=True)
class ReIDDataset:
    """Train / query / gallery record lists of one dataset.

    Attributes:
        name: the reader (:data:`DATASETS` key), i.e. the layout read.
        train, query, gallery: :class:`ImageRecord` lists.
        train_identities: the identity of each train label: ``train_identities[k]`` is the
            folder name (``"person_0001"``) or raw pid (``"2"``) that train label ``k`` stands
            for; empty when a reader does not record it.
        camera_per_image: query and gallery carry no cameras, so every image was given its
            own camid (the Market-1501 rule then removes only the image itself).
    """

    name: str
    train: list[ImageRecord] = field(repr=False)
    query: list[ImageRecord] = field(repr=False)
    gallery: list[ImageRecord] = field(repr=False)
    train_identities: tuple[str, ...] = field(default=(), repr=False)
    camera_per_image: bool = field(default=False, repr=False)

    @property
    def label_map(self) -> dict[str, int]:
        """``{identity name: train label}``, what a classifier trained on ``train`` predicts
        (saved with a model by ``sureid train``)."""
        return {name: k for k, name in enumerate(self.train_identities)}

    @property
    def num_train_pids(self) -> int:
        return len({r.pid for r in self.train})

    @property
    def num_train_cams(self) -> int:
        return len({r.camid for r in self.train})

    def counts(self) -> dict[str, tuple[int, int, int]]:
        """``{split: (num_images, num_pids, num_cams)}``."""
        return {
            split: (len(recs), len({r.pid for r in recs}), len({r.camid for r in recs}))
            for split, recs in (
                ("train", self.train), ("query", self.query), ("gallery", self.gallery)
            )
        }

    def __repr__(self) -> str:
        c = self.counts()
        parts = ", ".join(f"{k}={v[0]} imgs/{v[1]} ids" for k, v in c.items())
        return f"ReIDDataset({self.name!r}, {parts})"


def _relabel(records: list[ImageRecord]) -> list[ImageRecord]:
    mapping = {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}
    return [r._replace(pid=mapping[r.pid]) for r in records]


def _raw_identities(records: list[ImageRecord]) -> tuple[str, ...]:
    """The raw pid (as text) of each label :func:`_relabel` gives ``records``."""
    return tuple(str(pid) for pid in sorted({r.pid for r in records}))


def _has_images(folder: Path) -> bool:
    try:
        return any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir())
    except OSError:
        return False
