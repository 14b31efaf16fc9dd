"""Scene: each camera's background style and colour cast, and one composed image.

An image is drawn at twice its size (supersampling): the camera's background, the person
(drawn narrower and stretched, see ``PERSON_STRETCH``), optionally an occluder, then the
camera's colour cast, brightness and contrast with per-image jitter, a box downsample, blur
and sensor noise. Every random draw comes from the image's own generator, in a fixed order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .color import pick, rgb
from .identity import random_pose
from .occluders import occlude
from .person import draw_person

__all__ = ["PERSON_STRETCH", "background", "camera_style", "render_image"]

# Pedestrians are drawn this much narrower and then stretched to the frame width, as a
# detector's tight box of a ~2.8:1 person is resized to 2:1 in real ReID data; the person
# then covers most of the width and the camera background only the margins.
PERSON_STRETCH = 1.6
_RESAMPLING = getattr(Image, "Resampling", Image)  # Pillow < 9.1 has no Resampling enum

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


def camera_style(seed: int, cam: int) -> dict[str, Any]:
    """Camera ``cam``'s scene kind, colours, horizon, colour cast, exposure, blur and noise."""
    rng = np.random.default_rng([seed, 202, cam])
    kind = _BG_KINDS[(cam - 1 + int(rng.integers(len(_BG_KINDS)))) % len(_BG_KINDS)]
    return dict(
        kind=kind,
        ground=pick(rng, _GROUND, 12),
        wall=pick(rng, _WALL, 14),
        accent=pick(rng, _ACCENT, 14),
        horizon=float(rng.uniform(0.35, 0.6)),
        cast=np.clip(1.0 + rng.normal(0, 0.08, 3), 0.82, 1.18),
        brightness=float(rng.uniform(0.8, 1.15)),
        contrast=float(rng.uniform(0.8, 1.1)),
        blur=float(rng.uniform(0.0, 0.6)),
        noise=float(rng.uniform(1.0, 6.0)),
    )


def background(rng: np.random.Generator, style: dict[str, Any], W: int, H: int) -> Image.Image:
    """An RGB ``(W, H)`` background in the camera's style; layout and clutter vary per image."""
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
            col = rgb(acc * rng.uniform(0.6, 1.1)) if kind == "street" else rgb(wall * 0.6)
            d.rectangle([x, top, x + step * 0.55, top + win_h], fill=col)
            if kind == "street":
                d.rectangle([x, top + win_h + 4, x + step * 0.55, top + 2 * win_h], fill=col)
        if kind == "street":
            d.rectangle([0, hz - 2, W, hz + 2], fill=rgb(ground * 0.6))
            for x in range(int(rng.integers(-20, 0)), W, int(W * 0.45)):
                d.rectangle([x, int(H * 0.9), x + W * 0.2, int(H * 0.92)], fill=(225, 225, 210))
        else:
            for y in range(hz, H, max(3, int(H * 0.06))):
                d.line([(0, y), (W, y)], fill=rgb(ground * 0.8), width=1)
    elif kind == "park":
        for _ in range(int(rng.integers(2, 6))):
            tx = float(rng.uniform(0, W))
            tr = float(W * rng.uniform(0.15, 0.35))
            ty = hz - float(rng.uniform(0.1, 0.35)) * H
            d.rectangle([tx - W * 0.03, ty, tx + W * 0.03, hz + 4], fill=(90, 64, 40))
            d.ellipse([tx - tr, ty - tr, tx + tr, ty + tr * 0.8],
                      fill=rgb(np.array([50, 110, 50]) * rng.uniform(0.6, 1.2)))
    elif kind == "plaza":
        step = max(4, int(W * rng.uniform(0.12, 0.25)))
        for x in range(int(rng.integers(-step, 0)), W, step):
            d.line([(x, hz), (x + (x - W / 2) * 0.6, H)], fill=rgb(ground * 0.75), width=1)
        for y in range(hz, H, max(3, step // 2)):
            d.line([(0, y), (W, y)], fill=rgb(ground * 0.75), width=1)
        for _ in range(int(rng.integers(1, 4))):
            x = float(rng.uniform(0, W))
            d.rectangle([x, hz - H * 0.3, x + W * 0.08, hz], fill=rgb(wall * 0.7))
    else:  # parking
        d.rectangle([0, hz - H * 0.12, W, hz], fill=rgb(acc * 0.5))
        for x in range(int(rng.integers(-30, 0)), W, max(6, int(W * 0.3))):
            d.line([(x, hz), (x - W * 0.3, H)], fill=(230, 230, 230), width=2)
    # small clutter, random per image so the background carries no identity
    for _ in range(int(rng.integers(0, 4))):
        x, y = float(rng.uniform(0, W)), float(rng.uniform(0, H))
        r = float(rng.uniform(0.02, 0.08)) * W
        d.rectangle([x, y, x + r, y + r * rng.uniform(0.5, 2)],
                    fill=rgb(rng.uniform(40, 220, 3)))
    tex = rng.normal(0, 7, (H // 4 + 1, W // 4 + 1, 1))
    tex = np.repeat(np.repeat(tex, 4, 0), 4, 1)[:H, :W]
    out = np.asarray(img, dtype=np.float64) + tex
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def render_image(
    rng: np.random.Generator,
    ident: dict[str, Any],
    style: dict[str, Any],
    img_size: tuple[int, int],
    occlusion: tuple[float, float] | None,
    seed: int,
) -> tuple[Image.Image, float]:
    """One RGB image of ``ident`` seen by a camera of ``style``, and the occluded fraction.

    Args:
        rng: the image's own generator; all randomness is drawn from it in a fixed order.
        ident: appearance from :func:`~sureid.data.synthetic.identity.identity`.
        style: from :func:`camera_style`.
        img_size: (height, width) of the result.
        occlusion: (min, max) fraction of the person to hide, or None for no occluder.
        seed: the dataset seed (an occluding pedestrian's look).

    Returns:
        ``(image, coverage)``; coverage is 0.0 without an occluder.
    """
    H, W = img_size[0] * 2, img_size[1] * 2  # 2x supersampling, then a box downsample
    canvas = background(rng, style, W, H).convert("RGBA")
    narrow = max(1, round(W / PERSON_STRETCH))
    person = Image.new("RGBA", (narrow, H), (0, 0, 0, 0))
    ph = H * ident["height"] * float(rng.uniform(0.8, 0.92))
    foot = H * float(rng.uniform(0.95, 0.995))
    cx = narrow * (0.5 + float(rng.normal(0, 0.05)))
    draw_person(person, ident, random_pose(rng), cx, foot, ph)
    person = person.resize((W, H), _RESAMPLING.BILINEAR)
    canvas.alpha_composite(person)
    cov = 0.0
    if occlusion is not None:
        alpha = np.asarray(person.getchannel("A")) > 127
        cov = occlude(rng, canvas, alpha, occlusion, seed)
    arr = np.asarray(canvas.convert("RGB"), dtype=np.float32)
    gain = style["cast"] * (style["brightness"] * float(rng.uniform(0.8, 1.2)))
    gain = gain * np.clip(1 + rng.normal(0, 0.04, 3), 0.9, 1.1)
    contrast = style["contrast"] * float(rng.uniform(0.85, 1.15))
    mean = arr.mean()
    arr = (arr - mean) * contrast + mean
    arr = arr * gain.astype(np.float32)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    img = img.resize((img_size[1], img_size[0]), _RESAMPLING.BOX)
    radius = style["blur"] + float(rng.uniform(0.0, 0.5))
    if radius > 0.3:
        img = img.filter(ImageFilter.GaussianBlur(radius))
    noise = rng.normal(0, style["noise"], (img_size[0], img_size[1], 1))
    out = np.asarray(img, dtype=np.float32) + noise.astype(np.float32)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)), cov
