"""Occluder drawing: objects or another pedestrian placed over a person to hide a set fraction.

These occluders are drawn in the scene, relative to the person's box (a pole at the side, a
car from below, a sign from above, another pedestrian overlapping), and each is drawn at 12
extents to pick the one whose coverage of the person's pixels is closest to the target. That
is why they are not :func:`sureid.transforms.make_procedural_occluders`: those are
free-standing RGBA crops of fixed shape for NODA to paste anywhere, with their own kinds,
textures and random stream; sharing one drawer would change the pixels of one or the other
(and ``data`` and ``transforms`` sit in one layer, whose parts never import each other).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .color import pick, rgb
from .identity import OBJECT_COLORS, base_identity, random_pose
from .person import draw_person

__all__ = ["occlude"]

KINDS = ("pedestrian", "car", "pole", "bush", "bin", "board", "sign")
_KIND_P = (0.3, 0.18, 0.14, 0.12, 0.1, 0.1, 0.06)
_SIDE_KINDS = {"pedestrian", "pole", "board"}  # come in from the left or right
_BOTTOM_KINDS = {"car", "bush", "bin"}  # come up from below
_EXTENTS = np.linspace(0.08, 0.95, 12)


def occlude(
    rng: np.random.Generator,
    canvas: Image.Image,
    person_alpha: np.ndarray,
    cov_range: tuple[float, float],
    seed: int,
) -> float:
    """Paste an occluder covering roughly ``cov_range`` of the person; return the coverage.

    Args:
        rng: the image's generator (the kind, its parameters and the target coverage).
        canvas: RGBA ``(W, H)`` image, composited in place.
        person_alpha: ``(H, W)`` bool, the person's pixels.
        cov_range: (min, max) fraction of the person's pixels to hide.
        seed: the dataset seed (another pedestrian's look).

    Returns:
        The fraction of ``person_alpha`` the pasted occluder covers.
    """
    W, H = canvas.size
    ys, xs = np.nonzero(person_alpha)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    area = float(len(xs))
    kind = KINDS[int(rng.choice(len(KINDS), p=_KIND_P))]
    params = _occluder_params(rng, kind, seed, W, H)
    target = float(rng.uniform(*cov_range))
    best: tuple[float, Image.Image | None, float] = (math.inf, None, 0.0)
    for extent in _EXTENTS:
        layer = _occluder_layer(kind, float(extent), params, box, W, H)
        occ = np.asarray(layer.getchannel("A")) > 127
        cov = float((occ & person_alpha).sum()) / area
        err = abs(cov - target)
        if err < best[0]:
            best = (err, layer, cov)
    layer = best[1]
    assert layer is not None
    canvas.alpha_composite(layer)
    return best[2]


def _occluder_params(
    rng: np.random.Generator, kind: str, seed: int, W: int, H: int
) -> dict[str, Any]:
    """Everything random about one occluder except how far it reaches in."""
    params: dict[str, Any] = dict(side=int(rng.choice([-1, 1])),
                                  color=pick(rng, OBJECT_COLORS, 20))
    if kind == "pedestrian":
        other = base_identity(np.random.default_rng([seed, 303, int(rng.integers(2**31))]))
        big = Image.new("RGBA", (3 * W, H), (0, 0, 0, 0))
        oh = H * float(rng.uniform(0.85, 1.05))
        draw_person(big, other, random_pose(rng), 1.5 * W, H * float(rng.uniform(0.98, 1.1)), oh)
        a = np.asarray(big.getchannel("A"))
        cols = np.nonzero(a.any(0))[0]
        params.update(layer=big, half=(cols.max() - cols.min()) / 2 if len(cols) else W * 0.2)
    elif kind == "pole":
        params.update(width=float(rng.uniform(0.12, 0.3)), band=float(rng.uniform(0.05, 0.3)))
    elif kind == "board":
        params.update(width=float(rng.uniform(0.3, 0.6)), top=float(rng.uniform(0.1, 0.4)),
                      tall=float(rng.uniform(0.35, 0.6)))
    else:
        lo = float(rng.uniform(-0.6, 0.1))
        hi = float(rng.uniform(0.9, 1.6)) if kind != "bin" else lo + float(rng.uniform(0.7, 1.1))
        params.update(span=(lo, hi), blob_seed=int(rng.integers(2**31)))
    return params


def _occluder_layer(
    kind: str, extent: float, params: dict[str, Any], box: tuple[int, int, int, int], W: int, H: int
) -> Image.Image:
    """RGBA layer with the occluder placed ``extent`` (0..1) into the person box."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    side = params["side"]
    if kind == "pedestrian":
        big: Image.Image = params["layer"]  # (3W, H), the other person centred at 1.5W
        edge = x0 + extent * bw if side < 0 else x1 - extent * bw
        half = params["half"]
        centre = edge - half if side < 0 else edge + half
        left = int(round(1.5 * W - centre))
        return big.crop((left, 0, left + W, H))
    layer = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    c = rgb(params["color"]) + (255,)
    dark = rgb(params["color"] * 0.55) + (255,)
    if kind in _SIDE_KINDS:
        edge = x0 + extent * bw if side < 0 else x1 - extent * bw
        width = params["width"] * W
        a, b = (edge - width, edge) if side < 0 else (edge, edge + width)
        if kind == "pole":
            d.rectangle([a, 0, b, H], fill=c)
            d.rectangle([a, 0, a + width * 0.25, H], fill=dark)
            for y in np.arange(params["band"] * H, H, 0.3 * H):
                d.rectangle([a, y, b, y + 0.03 * H], fill=dark)
        else:  # board on a post
            bt = y0 + params["top"] * bh
            bb = bt + params["tall"] * bh
            mid = (a + b) / 2
            d.rectangle([mid - 0.02 * W, bb, mid + 0.02 * W, H], fill=(90, 90, 95, 255))
            d.rectangle([a, bt, b, bb], fill=c)
            d.rectangle([a + 0.1 * width, bt + 0.1 * (bb - bt), b - 0.1 * width,
                         bt + 0.25 * (bb - bt)], fill=(240, 240, 240, 255))
    elif kind in _BOTTOM_KINDS:
        top = y1 - extent * bh
        ca, cb = params["span"]
        a, b = x0 + ca * bw, x0 + cb * bw
        if kind == "car":
            d.rounded_rectangle([a, top, b, H + 10], radius=max(2, int(0.08 * W)), fill=c)
            d.rectangle([a + 0.1 * (b - a), top + 0.08 * H, b - 0.1 * (b - a), top + 0.2 * H],
                        fill=(60, 80, 100, 255))
            for wx in (a + 0.2 * (b - a), b - 0.2 * (b - a)):
                r = 0.1 * W
                d.ellipse([wx - r, H - r, wx + r, H + r], fill=(20, 20, 20, 255))
        elif kind == "bin":
            d.rectangle([a, top + 0.03 * H, b, H], fill=c)
            d.rectangle([a - 0.02 * W, top, b + 0.02 * W, top + 0.04 * H], fill=dark)
        else:  # bush
            rng = np.random.default_rng(params["blob_seed"])
            for _ in range(9):
                bx = float(rng.uniform(a, b))
                r = float(rng.uniform(0.15, 0.3)) * W
                by = top + r * 0.8 + float(rng.uniform(0, 0.1)) * H
                g = rgb(np.array([45, 115, 50]) * rng.uniform(0.6, 1.3)) + (255,)
                d.ellipse([bx - r, by - r, bx + r, by + r], fill=g)
                d.rectangle([bx - r, min(by, H), bx + r, H + 1], fill=g)
    else:  # sign hanging from above
        bottom = y0 + extent * bh
        ca, cb = params["span"]
        a, b = x0 + ca * bw, x0 + cb * bw
        d.rectangle([a, -5, b, bottom], fill=c)
        d.rectangle([a + 0.1 * (b - a), bottom - 0.12 * bh, b - 0.1 * (b - a), bottom - 0.06 * bh],
                    fill=(245, 245, 245, 255))
    return layer
