"""The occluder bank: decoded occluders kept as uint8 RGBA tensors, from a folder or images."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, Union

import torch
from PIL import Image

from ..._checks import check_bool, check_int
from ..._image_files import IMAGE_EXTENSIONS, image_paths, open_image, to_mode
from .._functional import check_float_range, pil_to_tensor, tensor_to_pil
from .folder import manifest_problem

__all__ = ["OccluderBank", "OccluderItem", "OccluderSource"]

OccluderItem = str | os.PathLike | Image.Image | torch.Tensor
OccluderSource = Union[str, os.PathLike, "OccluderBank", Sequence[OccluderItem]]


def _fit(img: Image.Image, max_side: int | None) -> Image.Image:
    """Downscale so the longest side is at most ``max_side`` (keeps thousands in memory)."""
    if max_side is None or max(img.size) <= max_side:
        return img
    s = max_side / max(img.size)
    size = (max(1, round(img.width * s)), max(1, round(img.height * s)))
    return img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def _pil_to_rgba(img: Image.Image, what: str) -> Image.Image:
    """RGBA through the shared decoder (16-bit grey scaled, 32-bit modes refused)."""
    return to_mode(img, "RGBA", what=f"occluder {what}")


def _decode_file(path: Path) -> Image.Image:
    try:
        return open_image(path, "RGBA")
    except (OSError, ValueError) as err:
        raise ValueError(f"could not read occluder image {str(path)!r}: {err}") from err


def _tensor_to_rgba(t: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor) or t.ndim != 3 or t.shape[0] not in (3, 4):
        raise ValueError(f"occluder {what}: expected a (3|4, h, w) tensor, got shape "
                         f"{tuple(t.shape)}")
    if t.shape[-1] < 1 or t.shape[-2] < 1:
        raise ValueError(f"occluder {what} is empty (shape {tuple(t.shape)})")
    if t.dtype != torch.uint8:
        if not t.is_floating_point():
            raise TypeError(f"occluder {what}: expected uint8 or float tensor, got {t.dtype}")
        check_float_range(t, f"occluder {what}", "tensor")
        t = (t.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    t = t.detach().cpu()
    if t.shape[0] == 3:
        t = torch.cat([t, torch.full_like(t[:1], 255)])
    return t.contiguous().clone()


class OccluderBank:
    """Decoded occluders kept as compact uint8 RGBA tensors ``(4, h, w)``.

    Args:
        source: a folder (scanned once, non-recursively unless ``recursive``; only files
            with an extension in ``IMAGE_EXTENSIONS`` are considered, other files such as
            ``README.txt`` are ignored), or a sequence of image paths, PIL images (any
            mode Pillow converts to RGBA; RGB becomes fully opaque; 16-bit greyscale is
            scaled to 8 bits; 32-bit "I"/"F" images raise ``ValueError``) or
            ``(3|4, h, w)`` tensors (uint8, or float in [0, 1]: others raise
            ``ValueError``), or another bank (shared, not copied).
        max_side: occluders are downscaled on load so their longest side is at most this
            (``None`` keeps full size); each then takes at most ``4 * max_side**2`` bytes.
        recursive: scan sub-folders too.
        on_error: ``"raise"`` (default): an unreadable file raises ``ValueError`` naming
            it. ``"skip"``: unreadable files are skipped and ONE ``UserWarning`` lists
            how many and the first few names.

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: the bank would be empty, a file cannot be decoded (``on_error="raise"``),
            a path is a file where a folder was expected, a :func:`save_occluders` folder
            is incomplete (a file its manifest lists is missing or changed size, or it is
            ``occluder_0000.png ...`` without the manifest), or a bad argument.
        TypeError: ``source`` or one of its items has an unsupported type.

    Example:
        >>> from sureid import OccluderBank, make_procedural_occluders
        >>> bank = OccluderBank(make_procedural_occluders(8, seed=0))
        >>> len(bank), bank[0].dtype, bank[0].shape[0]
        (8, torch.uint8, 4)
    """

    def __init__(
        self,
        source: OccluderSource,
        *,
        max_side: int | None = 160,
        recursive: bool = False,
        on_error: Literal["raise", "skip"] = "raise",
    ) -> None:
        if max_side is not None:
            max_side = check_int("max_side", max_side, low=1)
        check_bool("recursive", recursive)
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.max_side = max_side
        self.source_desc: str
        if isinstance(source, OccluderBank):
            self._items: list[torch.Tensor] = source._items
            self.source_desc = source.source_desc
            return
        if isinstance(source, (str, os.PathLike)):
            folder = Path(source)
            if not folder.exists():
                raise FileNotFoundError(f"occluder folder {str(folder)!r} does not exist")
            if not folder.is_dir():
                raise ValueError(
                    f"occluders: expected a folder, got the file {str(folder)!r}; "
                    f"pass [path] for a single image"
                )
            # broken symlinks are kept: they are unreadable files, raised or skipped below
            paths = image_paths(folder, recursive=recursive, broken="keep")
            if not paths:
                raise ValueError(
                    f"occluder folder {str(folder)!r} contains no images "
                    f"(looked for {', '.join(IMAGE_EXTENSIONS)})"
                )
            problem = manifest_problem(folder)
            if problem is not None:
                raise ValueError(
                    f"occluder folder {str(folder)!r} may be incomplete: {problem}; delete it "
                    "and write it again (save_occluders writes complete folders)"
                )
            self.source_desc = f"folder {str(folder)!r}"
            items: Iterable[OccluderItem] = paths
        elif isinstance(source, (Image.Image, torch.Tensor)):
            raise TypeError(
                "occluders: expected a folder, a sequence of images/paths or an OccluderBank, "
                f"got a single {type(source).__name__}; wrap it in a list"
            )
        elif isinstance(source, Sequence):
            items = list(source)
            if not items:
                raise ValueError("occluders: the sequence is empty; give at least one image")
            self.source_desc = f"{len(items)} items"
        else:
            raise TypeError(
                "occluders: expected a folder path, a sequence of images/paths or an "
                f"OccluderBank, got {type(source).__name__}"
            )

        self._items = []
        skipped: list[str] = []
        for i, item in enumerate(items):
            try:
                self._items.append(self._load(item, i))
            except ValueError:
                if on_error == "raise" or not isinstance(item, (str, os.PathLike)):
                    raise
                skipped.append(str(item))
        if skipped:
            shown = ", ".join(repr(s) for s in skipped[:3])
            warnings.warn(
                f"OccluderBank skipped {len(skipped)} unreadable file(s) from "
                f"{self.source_desc}: {shown}{' ...' if len(skipped) > 3 else ''}",
                UserWarning,
                stacklevel=2,
            )
        if not self._items:
            raise ValueError(f"occluder bank from {self.source_desc} is empty: no readable image")

    def _load(self, item: OccluderItem, i: int) -> torch.Tensor:
        if isinstance(item, (str, os.PathLike)):
            path = Path(item)
            if not path.is_file():
                why = ("is a symlink that leads nowhere (dangling or a loop)"
                       if path.is_symlink() else "does not exist or is not a file")
                raise ValueError(f"occluder file {str(path)!r} {why}")
            img = _decode_file(path)
        elif isinstance(item, Image.Image):
            img = _pil_to_rgba(item, f"#{i}")
        elif isinstance(item, torch.Tensor):
            t = _tensor_to_rgba(item, f"#{i}")
            if self.max_side is not None and max(t.shape[-2:]) > self.max_side:
                return pil_to_tensor(_fit(tensor_to_pil(t), self.max_side))
            return t
        else:
            raise TypeError(
                f"occluder #{i}: expected a path, a PIL image or a tensor, "
                f"got {type(item).__name__}"
            )
        return pil_to_tensor(_fit(img, self.max_side))

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> torch.Tensor:
        """The ``index``-th occluder as uint8 RGBA ``(4, h, w)`` (do not modify it in place)."""
        return self._items[index]

    @property
    def nbytes(self) -> int:
        """Memory held by the decoded occluders, in bytes."""
        return sum(t.numel() for t in self._items)

    def __repr__(self) -> str:
        return (f"OccluderBank({len(self)} occluders from {self.source_desc}, "
                f"max_side={self.max_side}, {self.nbytes / 2**20:.1f} MiB)")
