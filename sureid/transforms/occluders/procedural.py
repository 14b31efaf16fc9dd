"""Procedural occluders: free-standing RGBA crops (poles, bushes, bins, fences, trees, bikes, cars).

Synthetic stand-ins for real occluder crops, for tests, examples and the synthetic benchmark's
NODA bank. The occluders drawn inside the synthetic benchmark's images are another drawer,
:mod:`sureid.data.synthetic.occluders` (its module docstring says why).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..._checks import check_int

__all__ = ["PROCEDURAL_KINDS", "make_procedural_occluders"]

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
        size: (min, max) of the longest side, in pixels (16 <= min <= max).
        kinds: subset of ``PROCEDURAL_KINDS``.

    Returns:
        A list of ``n`` PIL images in mode "RGBA".

    Raises:
        TypeError: ``n`` or a side of ``size`` is not an int, ``size`` is not a pair.
        ValueError: ``n`` < 1, ``size`` outside 16 <= min <= max, unknown or no ``kinds``.

    Example:
        >>> occ = make_procedural_occluders(4, seed=1)
        >>> [im.mode for im in occ]
        ['RGBA', 'RGBA', 'RGBA', 'RGBA']
    """
    n = check_int("n", n, low=1)
    if isinstance(size, str) or not isinstance(size, Sequence) or len(size) != 2:
        raise TypeError(f"size must be a pair of ints (min, max), got {size!r}")
    lo = check_int("size[0]", size[0], low=16)
    check_int("size[1]", size[1], low=lo)
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
