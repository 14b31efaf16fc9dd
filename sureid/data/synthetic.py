"""Synthetic occluded person re-identification benchmark in the Occluded-DukeMTMC layout.

Procedurally rendered pedestrians (numpy + PIL) whose identity lives only in their appearance:
clothing colours and patterns, proportions, hair, shoes and accessories. Pose, view, scale,
position, lighting, blur and noise vary per image; each camera has its own background style and
colour cast; query images are occluded by objects or by other pedestrians. The files are written
exactly like Occluded-Duke (``bounding_box_train/``, ``query/``, ``bounding_box_test/``, names
``0001_c2_f0046182.jpg``), so the real dataset reader and the real file I/O are exercised.

Example:
    >>> from sureid.data.synthetic import make_synthetic_reid
    >>> summary = make_synthetic_reid("data/synth", preset="smoke")  # doctest: +SKIP
    >>> summary.query.num_images  # doctest: +SKIP
    32
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .._atomic import replace_dir, temp_sibling

__all__ = [
    "SYNTHETIC_PRESETS",
    "SplitCounts",
    "SyntheticReIDSummary",
    "make_synthetic_reid",
    "summarize_reid_folder",
]

# Bump whenever the rendered pixels or the sampling plan change: a manifest written by another
# generator version no longer matches, so cached datasets are regenerated (with overwrite=True).
GENERATOR_VERSION = 2
# Pedestrians are drawn this much narrower and then stretched to the frame width, as a
# detector's tight box of a ~2.8:1 person is resized to 2:1 in real ReID data; the person
# then covers most of the width and the camera background only the margins.
PERSON_STRETCH = 1.6
MANIFEST_NAME = "synthetic_manifest.json"
SPLIT_DIRS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
_BOX = getattr(Image, "Resampling", Image).BOX  # Pillow < 9.1 has no Resampling enum
NAME_RE = re.compile(r"^(\d{4})_c(\d)_f(\d{7})\.jpg$")

# Sizes only; every preset shares the rendering and occlusion settings (which can be overridden).
SYNTHETIC_PRESETS: dict[str, dict[str, Any]] = {
    "smoke": dict(
        num_train_ids=24,
        num_test_ids=16,
        num_distractor_ids=8,
        num_cameras=4,
        cameras_per_id=(2, 3),
        images_per_camera=(2, 3),
        queries_per_id=2,
        img_size=(128, 64),
    ),
    "quick": dict(
        num_train_ids=128,
        num_test_ids=100,
        num_distractor_ids=100,
        num_cameras=6,
        cameras_per_id=(2, 4),
        images_per_camera=(2, 5),
        queries_per_id=2,
        img_size=(128, 64),
    ),
    "paper-like": dict(
        num_train_ids=702,
        num_test_ids=519,
        num_distractor_ids=591,
        num_cameras=8,
        cameras_per_id=(2, 5),
        images_per_camera=(2, 6),
        queries_per_id=4,
        img_size=(256, 128),
    ),
}

_DEFAULTS: dict[str, Any] = dict(
    train_occlusion_rate=0.3,
    gallery_occlusion_rate=0.15,
    query_occlusion=(0.2, 0.5),
    train_occlusion=(0.1, 0.4),
    gallery_occlusion=(0.1, 0.35),
    sibling_rate=0.35,
)


@dataclass(frozen=True)
class SplitCounts:
    """Identities, images and cameras found in one split folder."""

    num_ids: int
    num_images: int
    num_cameras: int


@dataclass(frozen=True)
class SyntheticReIDSummary:
    """What :func:`make_synthetic_reid` wrote (or found): counts per split and the config."""

    root: Path
    train: SplitCounts
    query: SplitCounts
    gallery: SplitCounts
    config: dict[str, Any]
    reused: bool
    seconds: float

    @property
    def num_images(self) -> int:
        return self.train.num_images + self.query.num_images + self.gallery.num_images


# --------------------------------------------------------------------------- colour palettes
_UPPER = np.array(
    [
        (232, 232, 228), (30, 30, 34), (128, 128, 132), (32, 42, 92), (45, 95, 190),
        (125, 172, 222), (182, 32, 38), (112, 30, 44), (42, 122, 62), (112, 112, 52),
        (222, 192, 52), (222, 122, 42), (222, 142, 172), (112, 62, 142), (202, 182, 142),
        (112, 76, 46), (32, 132, 132),
    ],
    dtype=np.float64,
)
_LOWER = np.array(
    [
        (28, 28, 30), (70, 70, 74), (50, 68, 118), (110, 140, 182), (172, 152, 112),
        (96, 70, 46), (226, 224, 218), (132, 132, 136), (92, 96, 52), (150, 40, 44),
    ],
    dtype=np.float64,
)
_SKIN = np.array(
    [(240, 206, 182), (226, 182, 146), (200, 150, 112), (162, 112, 78), (122, 82, 56),
     (90, 62, 42)],
    dtype=np.float64,
)
_HAIR = np.array(
    [(24, 20, 20), (62, 42, 30), (112, 76, 46), (202, 172, 104), (152, 152, 152), (140, 62, 32)],
    dtype=np.float64,
)
_SHOES = np.array(
    [(22, 22, 22), (235, 235, 235), (102, 66, 40), (120, 120, 125), (40, 70, 150), (170, 36, 36)],
    dtype=np.float64,
)
_OBJECT = np.array(
    [
        (180, 30, 30), (30, 60, 140), (220, 220, 220), (40, 40, 44), (150, 150, 155),
        (200, 170, 40), (40, 110, 60), (120, 90, 60),
    ],
    dtype=np.float64,
)


def _rgb(c: Any) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.clip(np.round(c), 0, 255))  # type: ignore[return-value]


def _pick(rng: np.random.Generator, palette: np.ndarray, jitter: float = 10.0) -> np.ndarray:
    return np.clip(palette[rng.integers(len(palette))] + rng.normal(0, jitter, 3), 0, 255)


def _choice(rng: np.random.Generator, options: list[str], p: list[float]) -> str:
    return options[int(rng.choice(len(options), p=p))]


# --------------------------------------------------------------------------- identities
def _base_identity(rng: np.random.Generator) -> dict[str, Any]:
    ident: dict[str, Any] = {}
    _sample_body(rng, ident)
    _sample_upper(rng, ident)
    _sample_lower(rng, ident)
    _sample_accessories(rng, ident)
    return ident


def _sample_body(rng: np.random.Generator, ident: dict[str, Any]) -> None:
    ident["height"] = float(rng.uniform(0.88, 1.04))
    ident["width"] = float(rng.uniform(0.85, 1.18))
    ident["head"] = float(rng.uniform(0.9, 1.12))
    ident["skin"] = _pick(rng, _SKIN, 6)
    ident["hair"] = _pick(rng, _HAIR, 8)
    ident["hair_style"] = _choice(
        rng, ["short", "long", "bald", "ponytail"], [0.5, 0.25, 0.1, 0.15]
    )


def _sample_upper(rng: np.random.Generator, ident: dict[str, Any]) -> None:
    ident["upper"] = _pick(rng, _UPPER, 12)
    second = _pick(rng, _UPPER, 12)
    if np.abs(second - ident["upper"]).sum() < 120:  # keep patterns visible
        second = 255 - ident["upper"] * 0.8
    ident["upper2"] = second
    ident["pattern"] = _choice(
        rng, ["solid", "hstripes", "vstripes", "checks", "logo"], [0.38, 0.2, 0.1, 0.12, 0.2]
    )
    ident["stripe"] = float(rng.uniform(0.035, 0.07))
    ident["logo_shape"] = _choice(
        rng, ["circle", "square", "triangle", "bar"], [0.3, 0.3, 0.2, 0.2]
    )
    ident["sleeves"] = _choice(rng, ["long", "short"], [0.55, 0.45])


def _sample_lower(rng: np.random.Generator, ident: dict[str, Any]) -> None:
    ident["lower"] = _pick(rng, _LOWER, 10)
    ident["lower_type"] = _choice(rng, ["trousers", "shorts", "skirt"], [0.62, 0.2, 0.18])
    ident["shoes"] = _pick(rng, _SHOES, 8)


def _sample_accessories(rng: np.random.Generator, ident: dict[str, Any]) -> None:
    ident["backpack"] = _pick(rng, _OBJECT, 12) if rng.random() < 0.3 else None
    ident["bag"] = _pick(rng, _OBJECT, 12) if rng.random() < 0.2 else None
    ident["bag_side"] = int(rng.choice([-1, 1]))
    ident["hat"] = _pick(rng, _OBJECT, 12) if rng.random() < 0.15 else None


_MUTATIONS = (_sample_body, _sample_upper, _sample_lower, _sample_accessories)


def _identity(seed: int, pid: int, num_pids: int, sibling_rate: float) -> dict[str, Any]:
    """Appearance of ``pid``; some ids copy another id's look and change one or two parts."""
    rng = np.random.default_rng([seed, 101, pid])
    ident = _base_identity(rng)
    if rng.random() < sibling_rate and num_pids > 1:
        base_pid = int(rng.integers(1, num_pids + 1))
        if base_pid != pid:  # hard negative: shares most attributes with base_pid's base look
            ident = _base_identity(np.random.default_rng([seed, 101, base_pid]))
            for k in rng.choice(len(_MUTATIONS), size=int(rng.integers(1, 3)), replace=False):
                _MUTATIONS[int(k)](rng, ident)
    return ident


def _random_pose(rng: np.random.Generator) -> dict[str, Any]:
    return dict(
        view=_choice(rng, ["front", "back", "left", "right"], [0.3, 0.3, 0.2, 0.2]),
        phase=float(rng.uniform(0, 2 * math.pi)),
        stride=float(rng.uniform(0.1, 1.0)),
        lean=float(rng.normal(0, 0.03)),
        arm=float(rng.uniform(0.2, 1.0)),
    )


# --------------------------------------------------------------------------- person rendering
def _shade(c: Any, f: float) -> tuple[int, int, int]:
    return _rgb(np.asarray(c) * f)


def _draw_person(
    img: Image.Image, ident: dict[str, Any], pose: dict[str, Any], cx: float, foot: float, ph: float
) -> None:
    """Draw a pedestrian into the RGBA image ``img``; ``ph`` is the height in pixels."""
    d = ImageDraw.Draw(img)
    top = foot - ph
    lean = pose["lean"]
    view = pose["view"]
    side = view in ("left", "right")
    facing = -1.0 if view == "left" else 1.0
    w = ident["width"]
    s = math.sin(pose["phase"]) * pose["stride"]

    def P(x: float, y: float) -> tuple[float, float]:
        return (cx + (x + lean * (1.0 - y)) * ph, top + y * ph)

    def limb(pts: list[tuple[float, float]], width: float, fill: Any) -> None:
        q = [P(*p) for p in pts]
        wpx = max(1, int(round(width * ph)))
        d.line(q, fill=_rgb(fill), width=wpx, joint="curve")
        r = wpx / 2.0
        for x, y in (q[0], q[-1]):
            d.ellipse([x - r, y - r, x + r, y + r], fill=_rgb(fill))

    def poly(pts: list[tuple[float, float]], fill: Any) -> None:
        d.polygon([P(*p) for p in pts], fill=_rgb(fill))

    def ell(x: float, y: float, rx: float, ry: float, fill: Any) -> None:
        (X, Y) = P(x, y)
        d.ellipse([X - rx * ph, Y - ry * ph, X + rx * ph, Y + ry * ph], fill=_rgb(fill))

    skin, upper, lower, shoes = ident["skin"], ident["upper"], ident["lower"], ident["shoes"]
    hr = 0.068 * ident["head"]
    sy, wy, hy, ky, ay = 0.19, 0.47, 0.53, 0.75, 0.955
    sw = (0.068 if side else 0.118) * w
    hw = (0.062 if side else 0.088) * w
    lw = 0.068 * w
    aw = 0.052 * w

    # --- legs (far leg first in side view)
    if side:
        legs = [(-1.0, 0.8), (1.0, 1.0)]
        leg_pts = {
            k: [(0.0, hy), (facing * k * s * 0.09 + 0.01 * facing, ky), (facing * k * s * 0.17, ay)]
            for k, _ in legs
        }
    else:
        legs = [(-1.0, 1.0), (1.0, 1.0)]
        leg_pts = {
            k: [(k * hw * 0.5, hy), (k * hw * 0.52, ky), (k * hw * 0.55, ay - 0.02 * max(0, k * s))]
            for k, _ in legs
        }
    for k, f in legs:
        pts = leg_pts[k]
        lt = ident["lower_type"]
        if lt == "trousers":
            limb(pts, lw, np.asarray(lower) * f)
        else:
            limb(pts, lw * 0.85, np.asarray(skin) * f)
            if lt == "shorts":
                mid = ((pts[0][0] + pts[1][0]) / 2 * 1.3, hy + (ky - hy) * 0.6)
                limb([pts[0], mid], lw * 1.05, np.asarray(lower) * f)
        (fx, fy) = pts[-1]
        if side:
            ell(fx + facing * 0.03, fy + 0.02, 0.05, 0.022, np.asarray(shoes) * f)
        else:
            ell(fx, fy + 0.022, 0.038, 0.024, np.asarray(shoes) * f)
    # hips / skirt
    poly([(-hw, wy), (hw, wy), (hw * 1.05, hy + 0.05), (-hw * 1.05, hy + 0.05)],
         lower if ident["lower_type"] != "skirt" else lower)
    if ident["lower_type"] == "skirt":
        poly([(-hw, wy), (hw, wy), (hw * 1.7 + 0.02, 0.71), (-hw * 1.7 - 0.02, 0.71)], lower)

    # --- far arm in side view (behind the torso)
    def arm(k: float, f: float) -> None:
        sx = k * (sw - aw * 0.4) if not side else -facing * 0.01
        if side:
            th = -facing * k * pose["arm"] * math.sin(pose["phase"]) * 0.5
            e = (sx + math.sin(th) * 0.16, sy + 0.02 + math.cos(th) * 0.16)
            th2 = th + facing * 0.25
            h = (e[0] + math.sin(th2) * 0.15, e[1] + math.cos(th2) * 0.15)
        else:
            lift = 0.02 * pose["arm"] * math.sin(pose["phase"]) * k
            e = (sx + k * 0.025, sy + 0.17 - lift)
            h = (sx + k * 0.03, sy + 0.32 - 2 * lift)
        s0 = (sx, sy + 0.025)
        sleeve = np.asarray(upper) * f
        if ident["sleeves"] == "long":
            limb([s0, e, h], aw, sleeve)
        else:
            limb([e, h], aw * 0.85, np.asarray(skin) * f)
            mid = ((s0[0] + e[0]) / 2, (s0[1] + e[1]) / 2)
            limb([s0, mid], aw * 1.1, sleeve)
        ell(h[0], h[1] + 0.01, aw * 0.55, aw * 0.6, np.asarray(skin) * f)

    if side:
        arm(-1.0, 0.78)

    # --- backpack behind the body in side view
    bp = ident["backpack"]
    if bp is not None and side:
        poly([(-facing * sw * 0.6, sy + 0.02), (-facing * (sw + 0.085), sy + 0.04),
              (-facing * (sw + 0.09), wy + 0.02), (-facing * sw * 0.6, wy + 0.02)], bp)

    # --- torso (with pattern) via a mask so stripes and checks follow the garment outline
    tpts = [(-sw, sy), (sw, sy), (hw * 1.02, hy + 0.01), (-hw * 1.02, hy + 0.01)]
    poly(tpts, upper)
    ell(-sw + aw * 0.3, sy + 0.02, aw * 0.7, 0.03, upper)
    ell(sw - aw * 0.3, sy + 0.02, aw * 0.7, 0.03, upper)
    pattern = ident["pattern"]
    if pattern == "logo" and view != "front":
        pattern = "solid"  # the print is on the chest only
    if pattern in ("hstripes", "vstripes", "checks"):
        q = [P(*p) for p in tpts]
        x0 = int(min(p[0] for p in q)) - 1
        y0 = int(min(p[1] for p in q)) - 1
        x1 = int(max(p[0] for p in q)) + 2
        y1 = int(max(p[1] for p in q)) + 2
        mask = Image.new("L", (x1 - x0, y1 - y0), 0)
        ImageDraw.Draw(mask).polygon([(x - x0, y - y0) for x, y in q], fill=255)
        pat = Image.new("RGBA", mask.size, (0, 0, 0, 0))
        pd = ImageDraw.Draw(pat)
        step = max(2.0, ident["stripe"] * ph)
        c2 = _rgb(ident["upper2"]) + (255,)
        if pattern in ("hstripes", "checks"):
            y = 0.0
            while y < mask.size[1]:
                pd.rectangle([0, y, mask.size[0], y + step / 2], fill=c2)
                y += step
        if pattern in ("vstripes", "checks"):
            x = 0.0
            while x < mask.size[0]:
                pd.rectangle([x, 0, x + step / 2, mask.size[1]], fill=c2)
                x += step
        img.paste(pat, (x0, y0), Image.fromarray(np.minimum(
            np.asarray(mask), np.asarray(pat.getchannel("A")))))
    elif pattern == "logo":
        c2 = ident["upper2"]
        r = 0.045
        cxl, cyl = 0.0, sy + 0.09
        shape = ident["logo_shape"]
        if shape == "circle":
            ell(cxl, cyl, r, r, c2)
        elif shape == "square":
            poly([(-r, cyl - r), (r, cyl - r), (r, cyl + r), (-r, cyl + r)], c2)
        elif shape == "triangle":
            poly([(0, cyl - r * 1.2), (r * 1.2, cyl + r), (-r * 1.2, cyl + r)], c2)
        else:
            poly([(-sw * 0.9, cyl - 0.02), (sw * 0.9, cyl - 0.02), (sw, cyl + 0.02),
                  (-sw, cyl + 0.02)], c2)

    # --- straps, back-view backpack, bag
    if bp is not None and view == "front":
        for k in (-1, 1):
            limb([(k * sw * 0.55, sy + 0.005), (k * sw * 0.6, sy + 0.15)], 0.022, _shade(bp, 0.7))
    bag = ident["bag"]
    bside = ident["bag_side"] * (1 if view != "back" else -1)
    if bag is not None and not side:
        strap = [(-bside * sw * 0.7, sy + 0.005), (bside * hw * 0.9, hy - 0.02)]
        limb(strap, 0.018, _shade(bag, 0.7))

    if not side:
        arm(-1.0, 1.0)
        arm(1.0, 1.0)
    if bp is not None and view == "back":
        poly([(-sw * 0.78, sy + 0.03), (sw * 0.78, sy + 0.03), (sw * 0.82, wy + 0.03),
              (-sw * 0.82, wy + 0.03)], bp)
        poly([(-sw * 0.6, wy - 0.08), (sw * 0.6, wy - 0.08), (sw * 0.6, wy + 0.01),
              (-sw * 0.6, wy + 0.01)], _shade(bp, 0.8))
    if bag is not None:
        bx = bside * (hw + 0.02) if not side else facing * 0.01
        if not side or ident["bag_side"] == (1 if facing > 0 else -1):
            poly([(bx - 0.04, hy - 0.07), (bx + 0.04, hy - 0.07), (bx + 0.045, hy + 0.03),
                  (bx - 0.045, hy + 0.03)], bag)
    if side:
        arm(1.0, 1.0)

    # --- neck, head, hair, hat
    limb([(0.0, sy - 0.03), (0.0, sy + 0.01)], 0.045, skin)
    hcx, hcy = (0.012 * facing if side else 0.0), hr + 0.005
    hair = ident["hair"]
    style = ident["hair_style"]
    if style == "long" and view != "front":
        poly([(-hr * 0.9, hcy), (hr * 0.9, hcy), (hr, sy + 0.09), (-hr, sy + 0.09)], hair)
    ell(hcx, hcy, hr * 0.82, hr, skin)
    if style != "bald":
        if view == "back":
            ell(hcx, hcy, hr * 0.86, hr * 1.03, hair)
        elif side:
            ell(hcx - facing * hr * 0.25, hcy - hr * 0.2, hr * 0.72, hr * 0.85, hair)
        else:
            ell(hcx, hcy - hr * 0.45, hr * 0.85, hr * 0.6, hair)
            if style == "long":
                for k in (-1, 1):
                    poly([(k * hr * 0.6, hcy - hr * 0.3), (k * hr * 0.95, hcy - hr * 0.3),
                          (k * hr * 1.05, sy + 0.07), (k * hr * 0.7, sy + 0.07)], hair)
        if style == "ponytail" and view != "front":
            px = -facing * hr * 1.0 if side else 0.0
            ell(hcx + px, hcy + hr * 0.7, hr * 0.35, hr * 0.7, hair)
    if view == "front":
        for k in (-1, 1):
            ell(k * hr * 0.33, hcy - hr * 0.05, hr * 0.1, hr * 0.1, (40, 30, 30))
    elif side:
        ell(hcx + facing * hr * 0.45, hcy - hr * 0.05, hr * 0.09, hr * 0.09, (40, 30, 30))
    if ident["hat"] is not None:
        ell(hcx, hcy - hr * 0.55, hr * 0.9, hr * 0.55, ident["hat"])
        if side:
            ell(hcx + facing * hr * 0.8, hcy - hr * 0.35, hr * 0.5, hr * 0.15, ident["hat"])
        elif view == "front":
            ell(hcx, hcy - hr * 0.2, hr * 0.8, hr * 0.15, _shade(ident["hat"], 0.8))


# --------------------------------------------------------------------------- backgrounds
_BG_KINDS = ("street", "park", "plaza", "indoor", "parking")
# asphalt, pavement, grass, sand, light tiles, red tiles, dark concrete
_GROUND = np.array(
    [(88, 88, 94), (160, 156, 150), (84, 128, 62), (188, 170, 132), (182, 174, 164),
     (150, 94, 82), (110, 108, 100)],
    dtype=np.float64,
)
# brick, concrete, beige, glass, dark, white, hedge green
_WALL = np.array(
    [(150, 78, 62), (170, 170, 166), (202, 186, 160), (92, 112, 132), (72, 72, 78),
     (222, 222, 216), (70, 100, 60)],
    dtype=np.float64,
)
_ACCENT = np.array(
    [(60, 80, 102), (200, 210, 222), (40, 40, 46), (150, 172, 192), (120, 60, 40)],
    dtype=np.float64,
)


def _camera_style(seed: int, cam: int) -> dict[str, Any]:
    rng = np.random.default_rng([seed, 202, cam])
    kind = _BG_KINDS[(cam - 1 + int(rng.integers(len(_BG_KINDS)))) % len(_BG_KINDS)]
    return dict(
        kind=kind,
        ground=_pick(rng, _GROUND, 12),
        wall=_pick(rng, _WALL, 14),
        accent=_pick(rng, _ACCENT, 14),
        horizon=float(rng.uniform(0.35, 0.6)),
        cast=np.clip(1.0 + rng.normal(0, 0.08, 3), 0.82, 1.18),
        brightness=float(rng.uniform(0.8, 1.15)),
        contrast=float(rng.uniform(0.8, 1.1)),
        blur=float(rng.uniform(0.0, 0.6)),
        noise=float(rng.uniform(1.0, 6.0)),
    )


def _background(rng: np.random.Generator, style: dict[str, Any], W: int, H: int) -> Image.Image:
    hz = int(H * (style["horizon"] + rng.normal(0, 0.04)))
    yy = np.linspace(0.0, 1.0, H)[:, None, None]
    wall = style["wall"] + rng.normal(0, 10, 3)
    ground = style["ground"] + rng.normal(0, 10, 3)
    arr = np.empty((H, W, 3))
    arr[:hz] = wall * (0.9 + 0.2 * yy[:hz])
    arr[hz:] = ground * (0.85 + 0.3 * yy[hz:])
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    kind = style["kind"]
    acc = style["accent"]
    if kind in ("street", "indoor"):
        step = int(W * rng.uniform(0.22, 0.4))
        off = int(rng.integers(step))
        top = int(H * rng.uniform(0.03, 0.12))
        win_h = int(hz * rng.uniform(0.25, 0.45))
        for x in range(-off, W, step):
            col = _rgb(acc * rng.uniform(0.6, 1.1)) if kind == "street" else _rgb(wall * 0.6)
            d.rectangle([x, top, x + step * 0.55, top + win_h], fill=col)
            if kind == "street":
                d.rectangle([x, top + win_h + 4, x + step * 0.55, top + 2 * win_h], fill=col)
        if kind == "street":
            d.rectangle([0, hz - 2, W, hz + 2], fill=_rgb(ground * 0.6))
            for x in range(int(rng.integers(-20, 0)), W, int(W * 0.45)):
                d.rectangle([x, int(H * 0.9), x + W * 0.2, int(H * 0.92)], fill=(225, 225, 210))
        else:
            for y in range(hz, H, max(3, int(H * 0.06))):
                d.line([(0, y), (W, y)], fill=_rgb(ground * 0.8), width=1)
    elif kind == "park":
        for _ in range(int(rng.integers(2, 6))):
            tx = float(rng.uniform(0, W))
            tr = float(W * rng.uniform(0.15, 0.35))
            ty = hz - float(rng.uniform(0.1, 0.35)) * H
            d.rectangle([tx - W * 0.03, ty, tx + W * 0.03, hz + 4], fill=(90, 64, 40))
            d.ellipse([tx - tr, ty - tr, tx + tr, ty + tr * 0.8],
                      fill=_rgb(np.array([50, 110, 50]) * rng.uniform(0.6, 1.2)))
    elif kind == "plaza":
        step = max(4, int(W * rng.uniform(0.12, 0.25)))
        for x in range(int(rng.integers(-step, 0)), W, step):
            d.line([(x, hz), (x + (x - W / 2) * 0.6, H)], fill=_rgb(ground * 0.75), width=1)
        for y in range(hz, H, max(3, step // 2)):
            d.line([(0, y), (W, y)], fill=_rgb(ground * 0.75), width=1)
        for _ in range(int(rng.integers(1, 4))):
            x = float(rng.uniform(0, W))
            d.rectangle([x, hz - H * 0.3, x + W * 0.08, hz], fill=_rgb(wall * 0.7))
    else:  # parking
        d.rectangle([0, hz - H * 0.12, W, hz], fill=_rgb(acc * 0.5))
        for x in range(int(rng.integers(-30, 0)), W, max(6, int(W * 0.3))):
            d.line([(x, hz), (x - W * 0.3, H)], fill=(230, 230, 230), width=2)
    # small clutter, random per image so the background carries no identity
    for _ in range(int(rng.integers(0, 4))):
        x, y = float(rng.uniform(0, W)), float(rng.uniform(0, H))
        r = float(rng.uniform(0.02, 0.08)) * W
        d.rectangle([x, y, x + r, y + r * rng.uniform(0.5, 2)],
                    fill=_rgb(rng.uniform(40, 220, 3)))
    tex = rng.normal(0, 7, (H // 4 + 1, W // 4 + 1, 1))
    tex = np.repeat(np.repeat(tex, 4, 0), 4, 1)[:H, :W]
    out = np.asarray(img, dtype=np.float64) + tex
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------- occluders
_OCC_KINDS = ("pedestrian", "car", "pole", "bush", "bin", "board", "sign")
_OCC_P = (0.3, 0.18, 0.14, 0.12, 0.1, 0.1, 0.06)
_SIDE_KINDS = {"pedestrian", "pole", "board"}
_BOTTOM_KINDS = {"car", "bush", "bin"}


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
    c = _rgb(params["color"]) + (255,)
    dark = _rgb(params["color"] * 0.55) + (255,)
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
                g = _rgb(np.array([45, 115, 50]) * rng.uniform(0.6, 1.3)) + (255,)
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


def _occlude(
    rng: np.random.Generator,
    canvas: Image.Image,
    person_alpha: np.ndarray,
    cov_range: tuple[float, float],
    seed: int,
    sibling_rate: float,
) -> float:
    """Paste an occluder covering roughly ``cov_range`` of the person; return the coverage."""
    W, H = canvas.size
    ys, xs = np.nonzero(person_alpha)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    area = float(len(xs))
    kind = _OCC_KINDS[int(rng.choice(len(_OCC_KINDS), p=_OCC_P))]
    params: dict[str, Any] = dict(side=int(rng.choice([-1, 1])), color=_pick(rng, _OBJECT, 20))
    if kind == "pedestrian":
        other = _base_identity(np.random.default_rng([seed, 303, int(rng.integers(2**31))]))
        big = Image.new("RGBA", (3 * W, H), (0, 0, 0, 0))
        oh = H * float(rng.uniform(0.85, 1.05))
        _draw_person(big, other, _random_pose(rng), 1.5 * W, H * float(rng.uniform(0.98, 1.1)), oh)
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
    target = float(rng.uniform(*cov_range))
    best: tuple[float, Image.Image | None, float] = (math.inf, None, 0.0)
    for extent in np.linspace(0.08, 0.95, 12):
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


# --------------------------------------------------------------------------- one image
def _render_image(
    rng: np.random.Generator,
    ident: dict[str, Any],
    style: dict[str, Any],
    img_size: tuple[int, int],
    occlusion: tuple[float, float] | None,
    seed: int,
    sibling_rate: float,
) -> tuple[Image.Image, float]:
    H, W = img_size[0] * 2, img_size[1] * 2  # 2x supersampling, then a box downsample
    canvas = _background(rng, style, W, H).convert("RGBA")
    narrow = max(1, round(W / PERSON_STRETCH))
    person = Image.new("RGBA", (narrow, H), (0, 0, 0, 0))
    ph = H * ident["height"] * float(rng.uniform(0.8, 0.92))
    foot = H * float(rng.uniform(0.95, 0.995))
    cx = narrow * (0.5 + float(rng.normal(0, 0.05)))
    _draw_person(person, ident, _random_pose(rng), cx, foot, ph)
    person = person.resize((W, H), Image.BILINEAR)
    canvas.alpha_composite(person)
    cov = 0.0
    if occlusion is not None:
        alpha = np.asarray(person.getchannel("A")) > 127
        cov = _occlude(rng, canvas, alpha, occlusion, seed, sibling_rate)
    arr = np.asarray(canvas.convert("RGB"), dtype=np.float32)
    gain = style["cast"] * (style["brightness"] * float(rng.uniform(0.8, 1.2)))
    gain = gain * np.clip(1 + rng.normal(0, 0.04, 3), 0.9, 1.1)
    contrast = style["contrast"] * float(rng.uniform(0.85, 1.15))
    mean = arr.mean()
    arr = (arr - mean) * contrast + mean
    arr = arr * gain.astype(np.float32)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    img = img.resize((img_size[1], img_size[0]), _BOX)
    radius = style["blur"] + float(rng.uniform(0.0, 0.5))
    if radius > 0.3:
        img = img.filter(ImageFilter.GaussianBlur(radius))
    noise = rng.normal(0, style["noise"], (img_size[0], img_size[1], 1))
    out = np.asarray(img, dtype=np.float32) + noise.astype(np.float32)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)), cov


# --------------------------------------------------------------------------- plan
def _plan(cfg: dict[str, Any]) -> list[tuple[str, int, int, int, bool]]:
    """Every image as (split, pid, cam, index, occluded), independent of rendering order."""
    seed = cfg["seed"]
    ntr, nte, ndi = cfg["num_train_ids"], cfg["num_test_ids"], cfg["num_distractor_ids"]
    rng = np.random.default_rng([seed, 404])
    pids = rng.permutation(np.arange(1, ntr + nte + ndi + 1))
    train, test, distract = pids[:ntr], pids[ntr:ntr + nte], pids[ntr + nte:]
    lo_c, hi_c = cfg["cameras_per_id"]
    lo_i, hi_i = cfg["images_per_camera"]
    plan: list[tuple[str, int, int, int, bool]] = []

    def cams_of(prng: np.random.Generator, lo: int, hi: int) -> list[int]:
        k = int(prng.integers(lo, hi + 1))
        return sorted(int(c) + 1 for c in prng.choice(cfg["num_cameras"], size=k, replace=False))

    for pid in sorted(int(p) for p in train):
        prng = np.random.default_rng([seed, 505, pid])
        for cam in cams_of(prng, lo_c, hi_c):
            for i in range(int(prng.integers(lo_i, hi_i + 1))):
                occ = bool(prng.random() < cfg["train_occlusion_rate"])
                plan.append(("train", pid, cam, i, occ))
    for pid in sorted(int(p) for p in test):
        prng = np.random.default_rng([seed, 505, pid])
        cams = cams_of(prng, lo_c, hi_c)
        qcam = cams[int(prng.integers(len(cams)))]
        for i in range(cfg["queries_per_id"]):
            plan.append(("query", pid, qcam, i, True))
        for cam in cams:
            if cam == qcam:
                continue
            for i in range(int(prng.integers(lo_i, hi_i + 1))):
                occ = bool(prng.random() < cfg["gallery_occlusion_rate"])
                plan.append(("gallery", pid, cam, i, occ))
    for pid in sorted(int(p) for p in distract):
        prng = np.random.default_rng([seed, 505, pid])
        for cam in cams_of(prng, 1, max(1, hi_c - 1)):
            for i in range(int(prng.integers(lo_i, hi_i + 1))):
                occ = bool(prng.random() < cfg["gallery_occlusion_rate"])
                plan.append(("gallery", pid, cam, i, occ))
    return plan


# --------------------------------------------------------------------------- validation
def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < low or (high is not None and value > high):
        rng = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {rng}, got {value!r}")
    return int(value)


def _check_range(name: str, value: Any, low: int, high: int) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be an int or a (min, max) pair, got {value!r}")
    a = _check_int(f"{name}[0]", value[0], low, high)
    b = _check_int(f"{name}[1]", value[1], low, high)
    if a > b:
        raise ValueError(f"{name} must have min <= max, got {tuple(value)!r}")
    return (a, b)


def _check_float(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not (low <= float(value) <= high):
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")
    return float(value)


def _check_frac_range(name: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a (min, max) pair of fractions, got {value!r}")
    a = _check_float(f"{name}[0]", value[0], 0.0, 0.9)
    b = _check_float(f"{name}[1]", value[1], 0.0, 0.9)
    if a > b:
        raise ValueError(f"{name} must have min <= max, got {tuple(value)!r}")
    return (a, b)


def _build_config(preset: str, overrides: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(preset, str) or preset not in SYNTHETIC_PRESETS:
        raise ValueError(f"preset must be one of {sorted(SYNTHETIC_PRESETS)}, got {preset!r}")
    raw = {**_DEFAULTS, **SYNTHETIC_PRESETS[preset]}
    raw.update({k: v for k, v in overrides.items() if v is not None})
    cfg: dict[str, Any] = {}
    cfg["seed"] = _check_int("seed", raw["seed"], 0)
    cfg["num_train_ids"] = _check_int("num_train_ids", raw["num_train_ids"], 1)
    cfg["num_test_ids"] = _check_int("num_test_ids", raw["num_test_ids"], 1)
    cfg["num_distractor_ids"] = _check_int("num_distractor_ids", raw["num_distractor_ids"], 0)
    total = cfg["num_train_ids"] + cfg["num_test_ids"] + cfg["num_distractor_ids"]
    if total > 9999:
        raise ValueError(f"num_train_ids + num_test_ids + num_distractor_ids must be <= 9999 "
                         f"(4-digit pids), got {total}")
    # one digit in `_cC_` keeps the names readable by the usual `_c(\d)` regexes
    cfg["num_cameras"] = _check_int("num_cameras", raw["num_cameras"], 2, 9)
    cfg["cameras_per_id"] = _check_range("cameras_per_id", raw["cameras_per_id"], 2,
                                         cfg["num_cameras"])
    cfg["images_per_camera"] = _check_range("images_per_camera", raw["images_per_camera"], 1, 1000)
    cfg["queries_per_id"] = _check_int("queries_per_id", raw["queries_per_id"], 1, 100)
    size = raw["img_size"]
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise TypeError(f"img_size must be a (height, width) pair, got {size!r}")
    cfg["img_size"] = (_check_int("img_size[0]", size[0], 32, 1024),
                       _check_int("img_size[1]", size[1], 16, 1024))
    for name in ("train_occlusion_rate", "gallery_occlusion_rate", "sibling_rate"):
        cfg[name] = _check_float(name, raw[name], 0.0, 1.0)
    for name in ("query_occlusion", "train_occlusion", "gallery_occlusion"):
        cfg[name] = _check_frac_range(name, raw[name])
    return cfg


# --------------------------------------------------------------------------- folder I/O
def summarize_reid_folder(root: str | os.PathLike[str]) -> dict[str, SplitCounts]:
    """Count identities, images and cameras per split of an Occluded-Duke style folder.

    Works on the real Occluded-DukeMTMC as well as on synthetic output.

    Returns:
        ``{"train": SplitCounts, "query": SplitCounts, "gallery": SplitCounts}``.

    Raises:
        FileNotFoundError: a split folder is missing.
    """
    root = Path(root)
    out = {}
    for split, sub in SPLIT_DIRS.items():
        folder = root / sub
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a directory (expected the Occluded-Duke "
                                    f"layout {sorted(SPLIT_DIRS.values())})")
        pids, cams, n = set(), set(), 0
        for name in os.listdir(folder):
            m = NAME_RE.match(name)
            if m:
                pids.add(int(m.group(1)))
                cams.add(int(m.group(2)))
                n += 1
        out[split] = SplitCounts(num_ids=len(pids), num_images=n, num_cameras=len(cams))
    return out


def _jsonable(cfg: dict[str, Any]) -> dict[str, Any]:
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}
    return json.loads(json.dumps(plain))


def _read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        with open(root / MANIFEST_NAME, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _matches(manifest: dict[str, Any] | None, cfg: dict[str, Any]) -> bool:
    return (
        manifest is not None
        and manifest.get("format") == "sureid-synthetic-reid"
        and manifest.get("generator_version") == GENERATOR_VERSION
        and manifest.get("config") == _jsonable(cfg)
    )


class _Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.t0, self.last = total, enabled, time.perf_counter(), 0.0

    def update(self, n: int) -> None:
        now = time.perf_counter()
        if self.enabled and (now - self.last > 0.5 or n == self.total):
            self.last = now
            bar = "#" * int(24 * n / max(1, self.total))
            sys.stderr.write(f"\rsynthetic reid [{bar:<24}] {n}/{self.total} images "
                             f"{now - self.t0:5.1f}s")
            if n == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def make_synthetic_reid(
    root: str | os.PathLike[str],
    *,
    preset: str = "quick",
    num_train_ids: int | None = None,
    num_test_ids: int | None = None,
    num_distractor_ids: int | None = None,
    num_cameras: int | None = None,
    cameras_per_id: int | tuple[int, int] | None = None,
    images_per_camera: int | tuple[int, int] | None = None,
    queries_per_id: int | None = None,
    img_size: tuple[int, int] | None = None,
    train_occlusion_rate: float | None = None,
    gallery_occlusion_rate: float | None = None,
    query_occlusion: tuple[float, float] | None = None,
    train_occlusion: tuple[float, float] | None = None,
    gallery_occlusion: tuple[float, float] | None = None,
    sibling_rate: float | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> SyntheticReIDSummary:
    """Write (or reuse) a synthetic occluded-ReID dataset in the Occluded-DukeMTMC layout.

    ``root/bounding_box_train``, ``root/query`` and ``root/bounding_box_test`` receive JPEGs
    named ``PPPP_cC_fNNNNNNN.jpg`` (pid from 1, camera from 1, random frame number), plus
    ``root/synthetic_manifest.json``. Every argument left as ``None`` takes the preset's value.

    Args:
        root: output folder; created atomically (rendered into a hidden temporary sibling
            ``.{name}.tmp-*``, then renamed), so it is complete or absent. A sibling left by a
            killed run is removed by the next call once its process is gone.
        preset: ``"smoke"``, ``"quick"`` or ``"paper-like"`` (see ``SYNTHETIC_PRESETS``).
        num_train_ids / num_test_ids: disjoint identity sets for training and for query+gallery.
        num_distractor_ids: extra identities that appear only in the gallery.
        num_cameras: 2..9; each camera has its own background style and colour cast.
        cameras_per_id: (min, max) cameras an identity appears in (>= 2).
        images_per_camera: (min, max) images of one identity in one camera.
        queries_per_id: query images per test identity, all from one camera that is then left
            out of that identity's gallery images.
        img_size: (height, width) of the written images.
        train_occlusion_rate / gallery_occlusion_rate: fraction of occluded images (queries are
            always occluded).
        query_occlusion / train_occlusion / gallery_occlusion: (min, max) fraction of the
            person's pixels an occluder covers.
        sibling_rate: fraction of identities that copy another identity's look and change one
            or two attribute groups (hard negatives).
        seed: everything is a function of the seed; rendering order does not matter.
        overwrite: replace an existing synthetic dataset whose manifest does not match.
        progress: show a progress bar on stderr.

    Returns:
        SyntheticReIDSummary with per-split counts and ``reused=True`` when a matching
        dataset was already there.

    Raises:
        TypeError, ValueError: a bad argument (named in the message).
        FileExistsError: ``root`` holds something else (a different synthetic config without
            ``overwrite=True``, or any non-empty folder without our manifest, which is never
            deleted).
    """
    t0 = time.perf_counter()
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a str or path, got {type(root).__name__} {root!r}")
    for name, flag in (("overwrite", overwrite), ("progress", progress)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {flag!r}")
    cfg = _build_config(preset, dict(
        seed=seed, num_train_ids=num_train_ids, num_test_ids=num_test_ids,
        num_distractor_ids=num_distractor_ids, num_cameras=num_cameras,
        cameras_per_id=cameras_per_id, images_per_camera=images_per_camera,
        queries_per_id=queries_per_id, img_size=img_size,
        train_occlusion_rate=train_occlusion_rate, gallery_occlusion_rate=gallery_occlusion_rate,
        query_occlusion=query_occlusion, train_occlusion=train_occlusion,
        gallery_occlusion=gallery_occlusion, sibling_rate=sibling_rate,
    ))
    root = Path(root)

    def summary(reused: bool) -> SyntheticReIDSummary:
        c = summarize_reid_folder(root)
        return SyntheticReIDSummary(root=root, train=c["train"], query=c["query"],
                                    gallery=c["gallery"], config=_jsonable(cfg), reused=reused,
                                    seconds=time.perf_counter() - t0)

    existing = root.exists() and (not root.is_dir() or any(root.iterdir()))
    if existing:
        manifest = _read_manifest(root)
        if _matches(manifest, cfg):
            return summary(True)
        if manifest is None or manifest.get("format") != "sureid-synthetic-reid":
            raise FileExistsError(f"root {str(root)!r} exists and is not a sureid synthetic "
                                  f"dataset (no {MANIFEST_NAME}); refusing to touch it, "
                                  f"pick another path")
        if not overwrite:
            raise FileExistsError(f"root {str(root)!r} holds a synthetic dataset with a different "
                                  f"config or generator version; pass overwrite=True to replace it")

    # a hidden sibling, renamed into place when complete; one left by a killed run (SIGTERM,
    # SIGKILL: no cleanup runs) is removed here when its process is gone
    tmp = temp_sibling(root)
    try:
        _generate(tmp, cfg, progress)
        _install(tmp, root, cfg)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return summary(False)


def _generate(out: Path, cfg: dict[str, Any], progress: bool) -> None:
    seed = cfg["seed"]
    total_ids = cfg["num_train_ids"] + cfg["num_test_ids"] + cfg["num_distractor_ids"]
    plan = _plan(cfg)
    styles = {c: _camera_style(seed, c) for c in range(1, cfg["num_cameras"] + 1)}
    idents: dict[int, dict[str, Any]] = {}
    split_code = {"train": 1, "query": 2, "gallery": 3}
    for sub in SPLIT_DIRS.values():
        (out / sub).mkdir()
    used: dict[str, set[str]] = {s: set() for s in SPLIT_DIRS}
    occ_cov: dict[str, list[float]] = {s: [] for s in SPLIT_DIRS}
    bar = _Progress(len(plan), progress)
    for n, (split, pid, cam, idx, occluded) in enumerate(plan, 1):
        if pid not in idents:
            idents[pid] = _identity(seed, pid, total_ids, cfg["sibling_rate"])
        rng = np.random.default_rng([seed, split_code[split], pid, cam, idx])
        frame = int(rng.integers(0, 10**7))
        name = f"{pid:04d}_c{cam}_f{frame:07d}.jpg"
        while name in used[split]:  # astronomically rare; deterministic given the plan
            frame = (frame + 1) % 10**7
            name = f"{pid:04d}_c{cam}_f{frame:07d}.jpg"
        used[split].add(name)
        cov_range = cfg[f"{split}_occlusion"] if occluded else None
        img, cov = _render_image(rng, idents[pid], styles[cam], cfg["img_size"], cov_range, seed,
                                 cfg["sibling_rate"])
        if occluded:
            occ_cov[split].append(cov)
        img.save(out / SPLIT_DIRS[split] / name, format="JPEG", quality=92)
        bar.update(n)
    counts = summarize_reid_folder(out)
    manifest = {
        "format": "sureid-synthetic-reid",
        "generator_version": GENERATOR_VERSION,
        "sureid_version": _sureid_version(),
        "config": _jsonable(cfg),
        "counts": {k: asdict(v) for k, v in counts.items()},
        # fraction of the person's pixels hidden, over the occluded images of each split
        "occlusion": {
            k: dict(images=len(v), mean_coverage=round(float(np.mean(v)), 4) if v else 0.0,
                    min_coverage=round(min(v), 4) if v else 0.0,
                    max_coverage=round(max(v), 4) if v else 0.0)
            for k, v in occ_cov.items()
        },
    }
    # the manifest is written last: a folder without it is never mistaken for a finished dataset
    with open(out / MANIFEST_NAME, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)


def _install(tmp: Path, root: Path, cfg: dict[str, Any]) -> None:
    # an existing root is an outdated synthetic dataset (overwrite=True was checked by the
    # caller) or an empty folder
    try:
        replace_dir(tmp, root)
    except OSError:
        # another process finished the same dataset first: keep theirs if it matches
        if not _matches(_read_manifest(root), cfg):
            raise


def _sureid_version() -> str:
    from ..version import __version__

    return __version__
