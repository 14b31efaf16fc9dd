"""Occluder images for NODA: a cached bank (folder, paths, PIL images) and a procedural generator.

The paper pastes crops of real-world occluders (bins, bikes, trees, poles, ...). Point
:class:`OccluderBank` / :class:`~sureid.transforms.NODA` at a folder of such crops (RGBA
PNGs with a transparent background are best). :func:`make_procedural_occluders` draws
synthetic stand-ins for tests, examples and the synthetic benchmark; they are not a
substitute for real crops. (The occluders drawn inside the synthetic benchmark's images are
another drawer, ``sureid.data.synthetic.occluders``: its module docstring says why.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, Union

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from .._atomic import replace_dir, temp_sibling
from .._checks import check_bool, check_int, is_int
from .._image_files import IMAGE_EXTENSIONS, image_paths, open_image, to_mode
from ._functional import check_float_range, pil_to_tensor

__all__ = [
    "IMAGE_EXTENSIONS",
    "PROCEDURAL_KINDS",
    "OccluderBank",
    "make_procedural_occluders",
    "save_occluders",
]

OCCLUDER_MANIFEST = "sureid_occluders.json"
_MANIFEST_FORMAT = "sureid-occluders"

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
            (``None`` keeps full size). At 160, 1000 occluders take well under 100 MB.
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
            problem = _manifest_problem(folder)
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
                from ._functional import tensor_to_pil

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


# ----------------------------------------------------------------------------------------
# procedural occluders

PROCEDURAL_KINDS = ("pole", "bush", "bin", "fence", "tree", "bike", "car")

_PALETTE = {
    "pole": [(120, 120, 125), (60, 60, 65), (170, 160, 40), (200, 200, 205)],
    "bush": [(40, 110, 35), (70, 130, 50), (30, 80, 40), (100, 140, 60)],
    "bin": [(30, 100, 50), (40, 60, 140), (90, 90, 95), (25, 25, 30), (150, 60, 30)],
    "fence": [(140, 100, 60), (110, 110, 115), (180, 60, 40), (220, 220, 220)],
    "tree": [(90, 60, 35), (70, 50, 30), (110, 80, 50)],
    "bike": [(200, 30, 30), (20, 20, 20), (30, 70, 180), (230, 200, 30)],
    "car": [(180, 20, 30), (30, 40, 120), (200, 200, 205), (40, 40, 45), (220, 220, 210)],
}


def _colour(rng: np.random.Generator, kind: str) -> np.ndarray:
    pal = _PALETTE[kind]
    base = np.array(pal[rng.integers(len(pal))], dtype=np.float64)
    return np.clip(base + rng.normal(0, 12, size=3), 0, 255)


def _texture(rng: np.random.Generator, h: int, w: int, colour: np.ndarray) -> np.ndarray:
    """A textured colour field ``(h, w, 3)`` uint8: noise plus stripes or a shading gradient."""
    img = np.broadcast_to(colour, (h, w, 3)).astype(np.float64).copy()
    img += rng.normal(0, rng.uniform(4, 18), size=(h, w, 1))  # luminance grain
    style = rng.integers(3)
    yy, xx = np.mgrid[0:h, 0:w]
    if style == 0:  # stripes (bark, slats, ribbing)
        period = rng.uniform(3, 12)
        axis = xx if rng.random() < 0.5 else yy
        img *= (0.85 + 0.15 * np.sin(2 * np.pi * axis / period))[..., None]
    elif style == 1:  # cylindrical shading
        img *= (0.65 + 0.5 * np.sin(np.pi * (xx + 0.5) / w))[..., None]
    else:  # blotches
        coarse = rng.normal(0, 1, size=(max(2, h // 8), max(2, w // 8)))
        big = np.array(Image.fromarray(((coarse - coarse.min()) / (np.ptp(coarse) + 1e-9)
                                        * 255).astype(np.uint8)).resize((w, h)), np.float64)
        img *= (0.75 + 0.5 * big / 255.0)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw_mask(rng: np.random.Generator, kind: str, L: int) -> Image.Image:
    """The shape of one occluder of ``kind`` with longest side ``L``: a mode "L" mask, 255 inside.

    Its colour and texture are drawn afterwards by :func:`make_procedural_occluders`.
    """
    r = rng.uniform
    if kind == "pole":
        w, h = max(6, round(L * r(0.1, 0.2))), L
        sign = rng.random() < 0.5
        W = max(w, round(L * r(0.22, 0.3))) if sign else w
        mask = Image.new("L", (W, h), 0)
        d = ImageDraw.Draw(mask)
        x0 = (W - w) // 2
        d.rectangle([x0, 0, x0 + w - 1, h - 1], fill=255)
        if sign:
            s = W - 1
            if rng.random() < 0.5:
                d.ellipse([0, 0, s, s], fill=255)
            else:
                d.rectangle([0, 0, s, round(s * 0.8)], fill=255)
    elif kind == "tree":
        w_trunk, h = max(6, round(L * r(0.12, 0.2))), L
        W = max(w_trunk + 2, round(L * r(0.3, 0.42)))
        mask = Image.new("L", (W, h), 0)
        d = ImageDraw.Draw(mask)
        x0 = (W - w_trunk) // 2
        d.rectangle([x0, round(h * 0.3), x0 + w_trunk - 1, h - 1], fill=255)
        for _ in range(int(rng.integers(4, 8))):  # canopy blobs
            rad = r(0.15, 0.25) * W * 1.2
            cx, cy = r(rad * 0.6, W - rad * 0.6), r(rad, h * 0.38)
            d.ellipse([cx - rad, cy - rad, cx + rad, cy + rad], fill=255)
    elif kind == "bin":
        w, h = round(L * r(0.5, 0.75)), L
        mask = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(mask)
        lid = round(h * r(0.08, 0.14))
        inset = round(w * r(0.03, 0.1))
        d.rounded_rectangle([inset, lid, w - 1 - inset, h - 1], radius=max(1, w // 10), fill=255)
        d.rectangle([0, 0, w - 1, lid], fill=255)
    elif kind == "bush":
        w, h = L, round(L * r(0.4, 0.8))
        mask = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(mask)
        for _ in range(int(rng.integers(6, 14))):
            rad = r(0.12, 0.3) * h * 1.4
            cx, cy = r(rad * 0.5, w - rad * 0.5), r(h * 0.45, h - rad * 0.3)
            d.ellipse([cx - rad, cy - rad, cx + rad, cy + rad], fill=255)
        d.rectangle([round(w * 0.08), round(h * 0.7), round(w * 0.92), h - 1], fill=255)
    elif kind == "fence":
        w, h = L, round(L * r(0.18, 0.4))
        mask = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(mask)
        rail = max(2, round(h * r(0.12, 0.2)))
        for y in (round(h * 0.15), round(h * 0.65)):
            d.rectangle([0, y, w - 1, min(h - 1, y + rail)], fill=255)
        post_w, gap = max(2, round(w * r(0.03, 0.06))), r(0.1, 0.25) * w
        x = r(0, gap / 2)
        while round(x) < w:
            d.rectangle([round(x), 0, min(w - 1, round(x) + post_w), h - 1], fill=255)
            x += gap
    elif kind == "bike":
        w, h = L, round(L * r(0.55, 0.7))
        mask = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(mask)
        rad = h * 0.3
        lw = max(2, round(L * 0.025))
        cy = h - rad - lw
        c1, c2 = (rad + lw, cy), (w - rad - lw, cy)
        for cx, cyy in (c1, c2):
            d.ellipse([cx - rad, cyy - rad, cx + rad, cyy + rad], outline=255, width=lw + 1)
        seat, bar = (w * 0.4, h * 0.22), (w * 0.7, h * 0.12)
        crank = (w * 0.48, cy)
        for a, b in ((c1, seat), (seat, crank), (crank, c1), (crank, bar), (bar, c2),
                     (seat, bar)):
            d.line([a, b], fill=255, width=lw + 1)
        d.rectangle([seat[0] - w * 0.06, seat[1] - lw, seat[0] + w * 0.06, seat[1]], fill=255)
    elif kind == "car":
        w, h = L, round(L * r(0.38, 0.5))
        mask = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(mask)
        body_top = round(h * 0.42)
        d.rounded_rectangle([0, body_top, w - 1, round(h * 0.85)], radius=max(1, h // 8),
                            fill=255)
        d.polygon([(w * 0.2, body_top), (w * 0.32, h * 0.05), (w * 0.7, h * 0.05),
                   (w * 0.82, body_top)], fill=255)
        rad = h * 0.16
        for cx in (w * 0.2, w * 0.8):
            d.ellipse([cx - rad, h - 1 - 2 * rad, cx + rad, h - 1], fill=255)
    else:  # pragma: no cover - guarded by the caller
        raise ValueError(kind)
    return mask


def make_procedural_occluders(
    n: int,
    *,
    seed: int = 0,
    size: tuple[int, int] = (64, 160),
    kinds: Sequence[str] = PROCEDURAL_KINDS,
) -> list[Image.Image]:
    """Draw ``n`` synthetic RGBA occluders (poles, bushes, bins, fences, trees, bikes, cars).

    Each has a textured, colour-varied body and a soft-edged alpha (transparent
    background), so both vertical (aspect h/w > 2: poles, trees) and horizontal ones
    occur. Kinds cycle in the order given, so any ``n >= 2`` with the default kinds has
    both. Deterministic for a given ``seed`` (local ``numpy.random.Generator``).
    Real occluder crops should be preferred for training; these are stand-ins.

    Args:
        n: number of occluders (>= 1).
        seed: seed of the local generator.
        size: (min, max) of the longest side, in pixels.
        kinds: subset of ``PROCEDURAL_KINDS``.

    Returns:
        A list of ``n`` PIL images in mode "RGBA".

    Example:
        >>> occ = make_procedural_occluders(4, seed=1)
        >>> [im.mode for im in occ]
        ['RGBA', 'RGBA', 'RGBA', 'RGBA']
    """
    if not is_int(n) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if (isinstance(size, str) or not isinstance(size, Sequence) or len(size) != 2
            or not all(is_int(s) for s in size) or not 16 <= size[0] <= size[1]):
        raise ValueError(f"size must be (min, max) ints with 16 <= min <= max, got {size!r}")
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in PROCEDURAL_KINDS]
    if not kinds or bad:
        raise ValueError(f"kinds must be a non-empty subset of {PROCEDURAL_KINDS}, got {kinds!r}")
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        L = int(rng.integers(size[0], size[1] + 1))
        mask = _draw_mask(rng, kind, L)
        mask = mask.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.4, 1.0))))
        w, h = mask.size
        rgb = _texture(rng, h, w, _colour(rng, kind))
        if kind == "tree":  # green canopy over the brown trunk
            canopy = _texture(rng, h, w, _colour(rng, "bush"))
            top = np.arange(h)[:, None, None] < round(h * 0.42)
            rgb = np.where(top, canopy, rgb)
        elif kind == "car":  # dark windows
            win = np.zeros((h, w, 1), bool)
            win[round(h * 0.12) : round(h * 0.4), round(w * 0.3) : round(w * 0.72)] = True
            rgb = np.where(win, (rgb * 0.35).astype(np.uint8), rgb)
        rgba = np.dstack([rgb, np.asarray(mask, dtype=np.uint8)])
        out.append(Image.fromarray(np.ascontiguousarray(rgba)))
    return out


def _manifest_problem(folder: Path) -> str | None:
    """Why a :func:`save_occluders` folder is not complete, or None (also for other folders).

    A folder with our manifest must hold every file it lists, at the size written. A folder
    without it whose images are exactly ``occluder_0000.png ...`` (what an older sureid wrote,
    maybe interrupted) cannot be checked, so it is not trusted either.
    """
    try:
        with open(folder / OCCLUDER_MANIFEST, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        names = sorted(p.name for p in folder.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if names and names == [f"occluder_{i:04d}.png" for i in range(len(names))]:
            return (f"it holds occluder_0000.png ... occluder_{len(names) - 1:04d}.png as "
                    f"written by save_occluders, but no {OCCLUDER_MANIFEST} saying the "
                    "writing finished (an older sureid, or an interrupted run)")
        return None
    except (OSError, ValueError) as err:
        return f"its {OCCLUDER_MANIFEST} cannot be read ({err})"
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if manifest.get("format") != _MANIFEST_FORMAT or not isinstance(files, dict):
        return f"its {OCCLUDER_MANIFEST} is not a sureid occluder manifest"
    bad = [name for name, size in files.items()
           if not (folder / name).is_file() or (folder / name).stat().st_size != size]
    if bad:
        shown = ", ".join(repr(b) for b in bad[:3]) + (" ..." if len(bad) > 3 else "")
        return (f"{len(bad)} of the {len(files)} files its {OCCLUDER_MANIFEST} lists are "
                f"missing or changed size: {shown}")
    return None


def _replaceable(folder: Path, prefix: str) -> bool:
    """Empty, or only what save_occluders writes (our manifest and ``{prefix}_NNNN.png``)."""
    ours = re.compile(rf"{re.escape(prefix)}_\d{{4,}}\.png")
    return all(p.is_file() and (p.name == OCCLUDER_MANIFEST or ours.fullmatch(p.name))
               for p in folder.iterdir())


def save_occluders(
    images: Iterable[Image.Image], folder: str | os.PathLike, *, prefix: str = "occluder"
) -> list[Path]:
    """Write occluders as PNGs ``{prefix}_{i:04d}.png`` into ``folder``, complete or not at all.

    The PNGs and a manifest ``sureid_occluders.json`` (names and sizes), written last, go to
    a hidden temporary sibling ``.{name}.tmp-*`` that is renamed to ``folder`` at the end, so
    an interrupted call (Ctrl-C, SIGTERM, SIGKILL) leaves no ``folder`` and no truncated PNG
    in it; the next call removes the temporary sibling of a dead run. :class:`OccluderBank`
    checks the manifest when it loads the folder.

    Args:
        images: PIL images.
        folder: a new folder, an empty one, or one that holds only an earlier
            ``save_occluders`` output (replaced as a whole).
        prefix: file name prefix.

    Returns:
        The written paths, so ``NODA(folder)`` exercises the folder-loading path.

    Raises:
        TypeError: an item is not a PIL image (nothing is written).
        ValueError: ``images`` is empty (an empty list or an exhausted generator: an earlier
            output is never replaced by nothing), or an image is empty.
        FileExistsError: ``folder`` holds other files, or is a file; it is never touched.
    """
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder must be a str or os.PathLike, got {type(folder).__name__}")
    folder = Path(folder)
    if not isinstance(prefix, str) or not prefix or any(c in prefix for c in "/\\"):
        raise ValueError(f"prefix must be a non-empty file name part, got {prefix!r}")
    if isinstance(images, Image.Image) or not isinstance(images, Iterable):
        raise TypeError(
            f"images must be an iterable of PIL images, got {type(images).__name__}"
        )
    images = list(images)  # validated as a whole before anything is written
    for i, im in enumerate(images):
        if not isinstance(im, Image.Image):
            raise TypeError(f"images[{i}]: expected a PIL image, got {type(im).__name__}")
        if im.width < 1 or im.height < 1:
            raise ValueError(f"images[{i}] is empty (size {im.size})")
    if not images:
        raise ValueError(
            f"save_occluders: images is empty (an empty sequence or an exhausted generator); "
            f"nothing to write, {str(folder)!r} is left as it is"
        )
    if folder.exists() and (not folder.is_dir() or not _replaceable(folder, prefix)):
        raise FileExistsError(
            f"save_occluders: {str(folder)!r} exists and holds other files than an earlier "
            f"save_occluders output ({prefix}_NNNN.png, {OCCLUDER_MANIFEST}); refusing to "
            "touch it, pick a new or empty folder"
        )
    tmp = temp_sibling(folder)
    try:
        sizes = {}
        for i, im in enumerate(images):
            name = f"{prefix}_{i:04d}.png"
            im.save(tmp / name, format="PNG")
            sizes[name] = (tmp / name).stat().st_size
        manifest = {"format": _MANIFEST_FORMAT, "files": sizes}
        with open(tmp / OCCLUDER_MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
        replace_dir(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return [folder / name for name in sizes]
