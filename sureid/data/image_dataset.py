"""A torch ``Dataset`` over ``(path, pid, camid)`` records."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch.utils.data import Dataset

from .._checks import check_label
from .._image_files import open_image
from .records import ImageRecord

__all__ = ["ImageDataset"]


class ImageDataset(Dataset):
    """Reads each record's image as 8-bit RGB and applies ``transform``.

    Images are decoded by the decoder every sureid image path shares
    (``sureid._image_files.open_image``): 16-bit greyscale is scaled to 8 bits, not clipped to
    white; 32-bit ``"I"``/``"F"`` images are refused.

    ``dataset[i]`` is ``(img, pid, camid)``; ``img`` is a PIL image when ``transform`` is
    None, else whatever it returns. ``dataset.records[i].path`` gives the file.

    Args:
        records: sequence of :class:`ImageRecord` or ``(path, pid, camid)`` tuples.
        transform: callable applied to the PIL image, or None.

    Raises:
        ValueError: ``records`` is empty.
        TypeError: a record is not a ``(path, pid, camid)`` tuple of integer pid and camid
            (floats are refused, even whole ones).
        ValueError: a pid or camid outside int64.
        OSError: (on access) the image cannot be read or decoded; the message names the
            file.

    Example:
        >>> ds = ImageDataset(build_dataset("market1501", root).train)  # doctest: +SKIP
        >>> img, pid, camid = ds[0]  # doctest: +SKIP
    """

    def __init__(self, records: Sequence, transform: Callable[[Any], Any] | None = None):
        if isinstance(records, (str, bytes)) or not isinstance(records, Sequence):
            raise TypeError(
                "records must be a sequence of (path, pid, camid), "
                f"got {type(records).__name__}"
            )
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable or None, got {type(transform).__name__}")
        if len(records) == 0:
            raise ValueError(
                "records is empty: no image to read (a test-only dataset such as "
                "Occluded-REID has no train split)"
            )
        recs = []
        for i, r in enumerate(records):
            if not (isinstance(r, tuple) and len(r) == 3):
                raise TypeError(f"records[{i}] must be a (path, pid, camid) tuple, got {r!r}")
            # 1.7 or "3" would be truncated or parsed silently; 2.0**63 has lost its digits
            pid = check_label(f"records[{i}]: pid", r[1])
            camid = check_label(f"records[{i}]: camid", r[2])
            recs.append(ImageRecord(str(r[0]), pid, camid))
        self.records = recs
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int):
        path, pid, camid = self.records[index]
        try:
            img = open_image(path)
        except (OSError, ValueError) as err:  # e.g. "image file is truncated"
            raise OSError(f"could not read image {path!r} (records[{index}]): {err}") from err
        if self.transform is not None:
            img = self.transform(img)
        return img, pid, camid

    @property
    def pids(self) -> list[int]:
        """Identity of every record, e.g. for :class:`RandomIdentitySampler`."""
        return [r.pid for r in self.records]

    def __repr__(self) -> str:
        return f"ImageDataset(num_images={len(self)}, transform={self.transform!r})"
