"""Person drawing: a pedestrian of a given identity and pose, in plain PIL shapes.

Shapes are placed in body coordinates: ``x`` in person heights from the centre line, ``y``
from the top of the head (0) to the soles (1), sheared by the pose's lean. The body parts are
drawn back to front; which parts show, and in which order, depends on the view (front, back,
left, right): the logo only shows from the front, a backpack is a pack from the back, a side
profile from the side and straps from the front; long hair covers the back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .color import rgb, shade

__all__ = ["draw_person"]

# heights of the shoulders, waist, hips, knees and ankles, as fractions of the person's height
SHOULDER_Y, WAIST_Y, HIP_Y, KNEE_Y, ANKLE_Y = 0.19, 0.47, 0.53, 0.75, 0.955
_EYE = (40, 30, 30)


class _Pen:
    """Draws polygons, ellipses and round-capped limbs given in body coordinates."""

    def __init__(self, img: Image.Image, cx: float, foot: float, ph: float, lean: float) -> None:
        self.img = img
        self.draw = ImageDraw.Draw(img)
        self.cx, self.top, self.ph, self.lean = cx, foot - ph, ph, lean

    def point(self, x: float, y: float) -> tuple[float, float]:
        return (self.cx + (x + self.lean * (1.0 - y)) * self.ph, self.top + y * self.ph)

    def limb(self, pts: list[tuple[float, float]], width: float, fill: Any) -> None:
        q = [self.point(*p) for p in pts]
        wpx = max(1, int(round(width * self.ph)))
        self.draw.line(q, fill=rgb(fill), width=wpx, joint="curve")
        r = wpx / 2.0
        for x, y in (q[0], q[-1]):
            self.draw.ellipse([x - r, y - r, x + r, y + r], fill=rgb(fill))

    def poly(self, pts: list[tuple[float, float]], fill: Any) -> None:
        self.draw.polygon([self.point(*p) for p in pts], fill=rgb(fill))

    def ellipse(self, x: float, y: float, rx: float, ry: float, fill: Any) -> None:
        (X, Y) = self.point(x, y)
        ph = self.ph
        self.draw.ellipse([X - rx * ph, Y - ry * ph, X + rx * ph, Y + ry * ph], fill=rgb(fill))


@dataclass(frozen=True)
class _Body:
    """What the view and the identity's build fix for every part of one drawing."""

    view: str
    side: bool  # a profile view (left or right)
    facing: float  # -1 facing left, +1 otherwise
    swing: float  # leg swing, sin(phase) * stride
    shoulder_w: float  # half widths, in person heights
    hip_w: float
    leg_w: float
    arm_w: float
    head_r: float


def _body(ident: dict[str, Any], pose: dict[str, Any]) -> _Body:
    view = pose["view"]
    side = view in ("left", "right")
    w = ident["width"]
    return _Body(
        view=view,
        side=side,
        facing=-1.0 if view == "left" else 1.0,
        swing=math.sin(pose["phase"]) * pose["stride"],
        shoulder_w=(0.068 if side else 0.118) * w,
        hip_w=(0.062 if side else 0.088) * w,
        leg_w=0.068 * w,
        arm_w=0.052 * w,
        head_r=0.068 * ident["head"],
    )


def draw_person(
    img: Image.Image, ident: dict[str, Any], pose: dict[str, Any], cx: float, foot: float, ph: float
) -> None:
    """Draw a pedestrian into the RGBA image ``img``.

    Args:
        img: RGBA canvas, drawn on in place.
        ident: appearance from :func:`~sureid.data.synthetic.identity.identity`.
        pose: from :func:`~sureid.data.synthetic.identity.random_pose`.
        cx: horizontal centre, in pixels.
        foot: y of the soles, in pixels.
        ph: the person's height, in pixels.
    """
    pen = _Pen(img, cx, foot, ph, pose["lean"])
    b = _body(ident, pose)
    _draw_legs(pen, b, ident)
    _draw_hips(pen, b, ident)
    if b.side:  # the far arm and the backpack are behind the torso
        _draw_arm(pen, b, ident, pose, -1.0, 0.78)
        _draw_side_backpack(pen, b, ident["backpack"])
    _draw_torso(pen, b, ident)
    _draw_straps(pen, b, ident)
    if not b.side:
        _draw_arm(pen, b, ident, pose, -1.0, 1.0)
        _draw_arm(pen, b, ident, pose, 1.0, 1.0)
    _draw_back_backpack(pen, b, ident["backpack"])
    _draw_bag(pen, b, ident)
    if b.side:
        _draw_arm(pen, b, ident, pose, 1.0, 1.0)
    _draw_head(pen, b, ident)


def _draw_legs(pen: _Pen, b: _Body, ident: dict[str, Any]) -> None:
    """Both legs with shoes; the far leg first and darker in a side view."""
    s, hw, lw = b.swing, b.hip_w, b.leg_w
    skin, lower, shoes = ident["skin"], ident["lower"], ident["shoes"]
    for k, f in ((-1.0, 0.8), (1.0, 1.0)) if b.side else ((-1.0, 1.0), (1.0, 1.0)):
        if b.side:
            pts = [(0.0, HIP_Y), (b.facing * k * s * 0.09 + 0.01 * b.facing, KNEE_Y),
                   (b.facing * k * s * 0.17, ANKLE_Y)]
        else:
            pts = [(k * hw * 0.5, HIP_Y), (k * hw * 0.52, KNEE_Y),
                   (k * hw * 0.55, ANKLE_Y - 0.02 * max(0, k * s))]
        lt = ident["lower_type"]
        if lt == "trousers":
            pen.limb(pts, lw, np.asarray(lower) * f)
        else:
            pen.limb(pts, lw * 0.85, np.asarray(skin) * f)
            if lt == "shorts":
                mid = ((pts[0][0] + pts[1][0]) / 2 * 1.3, HIP_Y + (KNEE_Y - HIP_Y) * 0.6)
                pen.limb([pts[0], mid], lw * 1.05, np.asarray(lower) * f)
        (fx, fy) = pts[-1]
        if b.side:
            pen.ellipse(fx + b.facing * 0.03, fy + 0.02, 0.05, 0.022, np.asarray(shoes) * f)
        else:
            pen.ellipse(fx, fy + 0.022, 0.038, 0.024, np.asarray(shoes) * f)


def _draw_hips(pen: _Pen, b: _Body, ident: dict[str, Any]) -> None:
    hw, lower = b.hip_w, ident["lower"]
    pen.poly([(-hw, WAIST_Y), (hw, WAIST_Y), (hw * 1.05, HIP_Y + 0.05),
              (-hw * 1.05, HIP_Y + 0.05)], lower)
    if ident["lower_type"] == "skirt":
        pen.poly([(-hw, WAIST_Y), (hw, WAIST_Y), (hw * 1.7 + 0.02, 0.71),
                  (-hw * 1.7 - 0.02, 0.71)], lower)


def _draw_arm(
    pen: _Pen, b: _Body, ident: dict[str, Any], pose: dict[str, Any], k: float, f: float
) -> None:
    """One arm (``k`` -1 left, +1 right) with sleeve and hand, shaded by ``f``."""
    sw, aw, sy = b.shoulder_w, b.arm_w, SHOULDER_Y
    sx = k * (sw - aw * 0.4) if not b.side else -b.facing * 0.01
    if b.side:
        th = -b.facing * k * pose["arm"] * math.sin(pose["phase"]) * 0.5
        e = (sx + math.sin(th) * 0.16, sy + 0.02 + math.cos(th) * 0.16)
        th2 = th + b.facing * 0.25
        h = (e[0] + math.sin(th2) * 0.15, e[1] + math.cos(th2) * 0.15)
    else:
        lift = 0.02 * pose["arm"] * math.sin(pose["phase"]) * k
        e = (sx + k * 0.025, sy + 0.17 - lift)
        h = (sx + k * 0.03, sy + 0.32 - 2 * lift)
    s0 = (sx, sy + 0.025)
    skin = ident["skin"]
    sleeve = np.asarray(ident["upper"]) * f
    if ident["sleeves"] == "long":
        pen.limb([s0, e, h], aw, sleeve)
    else:
        pen.limb([e, h], aw * 0.85, np.asarray(skin) * f)
        mid = ((s0[0] + e[0]) / 2, (s0[1] + e[1]) / 2)
        pen.limb([s0, mid], aw * 1.1, sleeve)
    pen.ellipse(h[0], h[1] + 0.01, aw * 0.55, aw * 0.6, np.asarray(skin) * f)


def _draw_side_backpack(pen: _Pen, b: _Body, bp: Any) -> None:
    if bp is None:
        return
    sw, fc, sy, wy = b.shoulder_w, b.facing, SHOULDER_Y, WAIST_Y
    pen.poly([(-fc * sw * 0.6, sy + 0.02), (-fc * (sw + 0.085), sy + 0.04),
              (-fc * (sw + 0.09), wy + 0.02), (-fc * sw * 0.6, wy + 0.02)], bp)


def _torso_outline(b: _Body) -> list[tuple[float, float]]:
    sw, hw = b.shoulder_w, b.hip_w
    return [(-sw, SHOULDER_Y), (sw, SHOULDER_Y), (hw * 1.02, HIP_Y + 0.01),
            (-hw * 1.02, HIP_Y + 0.01)]


def _draw_torso(pen: _Pen, b: _Body, ident: dict[str, Any]) -> None:
    """The upper garment with its pattern (the logo is on the chest, so only from the front)."""
    upper, sw, aw, sy = ident["upper"], b.shoulder_w, b.arm_w, SHOULDER_Y
    outline = _torso_outline(b)
    pen.poly(outline, upper)
    pen.ellipse(-sw + aw * 0.3, sy + 0.02, aw * 0.7, 0.03, upper)
    pen.ellipse(sw - aw * 0.3, sy + 0.02, aw * 0.7, 0.03, upper)
    pattern = ident["pattern"]
    if pattern in ("hstripes", "vstripes", "checks"):
        _draw_stripes(pen, outline, pattern, ident["stripe"] * pen.ph, ident["upper2"])
    elif pattern == "logo" and b.view == "front":
        _draw_logo(pen, b, ident["logo_shape"], ident["upper2"])


def _draw_stripes(
    pen: _Pen, outline: list[tuple[float, float]], pattern: str, period: float, color: Any
) -> None:
    """Stripes or checks clipped by a mask so they follow the garment outline."""
    q = [pen.point(*p) for p in outline]
    x0 = int(min(p[0] for p in q)) - 1
    y0 = int(min(p[1] for p in q)) - 1
    x1 = int(max(p[0] for p in q)) + 2
    y1 = int(max(p[1] for p in q)) + 2
    mask = Image.new("L", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(mask).polygon([(x - x0, y - y0) for x, y in q], fill=255)
    pat = Image.new("RGBA", mask.size, (0, 0, 0, 0))
    pd = ImageDraw.Draw(pat)
    step = max(2.0, period)
    c2 = rgb(color) + (255,)
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
    clip = np.minimum(np.asarray(mask), np.asarray(pat.getchannel("A")))
    pen.img.paste(pat, (x0, y0), Image.fromarray(clip))


def _draw_logo(pen: _Pen, b: _Body, shape: str, color: Any) -> None:
    r, sw = 0.045, b.shoulder_w
    cyl = SHOULDER_Y + 0.09
    if shape == "circle":
        pen.ellipse(0.0, cyl, r, r, color)
    elif shape == "square":
        pen.poly([(-r, cyl - r), (r, cyl - r), (r, cyl + r), (-r, cyl + r)], color)
    elif shape == "triangle":
        pen.poly([(0, cyl - r * 1.2), (r * 1.2, cyl + r), (-r * 1.2, cyl + r)], color)
    else:  # bar
        pen.poly([(-sw * 0.9, cyl - 0.02), (sw * 0.9, cyl - 0.02), (sw, cyl + 0.02),
                  (-sw, cyl + 0.02)], color)


def _bag_side(b: _Body, ident: dict[str, Any]) -> int:
    """The side the bag hangs on in the image (mirrored when seen from the back)."""
    return ident["bag_side"] * (1 if b.view != "back" else -1)


def _draw_straps(pen: _Pen, b: _Body, ident: dict[str, Any]) -> None:
    """Backpack straps from the front, the bag's strap across the body (not in profile)."""
    sw, hw, sy = b.shoulder_w, b.hip_w, SHOULDER_Y
    bp, bag = ident["backpack"], ident["bag"]
    if bp is not None and b.view == "front":
        for k in (-1, 1):
            pen.limb([(k * sw * 0.55, sy + 0.005), (k * sw * 0.6, sy + 0.15)], 0.022,
                     shade(bp, 0.7))
    if bag is not None and not b.side:
        bside = _bag_side(b, ident)
        pen.limb([(-bside * sw * 0.7, sy + 0.005), (bside * hw * 0.9, HIP_Y - 0.02)], 0.018,
                 shade(bag, 0.7))


def _draw_back_backpack(pen: _Pen, b: _Body, bp: Any) -> None:
    if bp is None or b.view != "back":
        return
    sw, sy, wy = b.shoulder_w, SHOULDER_Y, WAIST_Y
    pen.poly([(-sw * 0.78, sy + 0.03), (sw * 0.78, sy + 0.03), (sw * 0.82, wy + 0.03),
              (-sw * 0.82, wy + 0.03)], bp)
    pen.poly([(-sw * 0.6, wy - 0.08), (sw * 0.6, wy - 0.08), (sw * 0.6, wy + 0.01),
              (-sw * 0.6, wy + 0.01)], shade(bp, 0.8))


def _draw_bag(pen: _Pen, b: _Body, ident: dict[str, Any]) -> None:
    """The shoulder bag at the hip; in profile only when it hangs on the near side."""
    bag = ident["bag"]
    if bag is None:
        return
    bx = _bag_side(b, ident) * (b.hip_w + 0.02) if not b.side else b.facing * 0.01
    if not b.side or ident["bag_side"] == (1 if b.facing > 0 else -1):
        hy = HIP_Y
        pen.poly([(bx - 0.04, hy - 0.07), (bx + 0.04, hy - 0.07), (bx + 0.045, hy + 0.03),
                  (bx - 0.045, hy + 0.03)], bag)


def _draw_head(pen: _Pen, b: _Body, ident: dict[str, Any]) -> None:
    """Neck, head, hair, eyes and hat."""
    hr, sy, fc, view, side = b.head_r, SHOULDER_Y, b.facing, b.view, b.side
    skin, hair, style = ident["skin"], ident["hair"], ident["hair_style"]
    pen.limb([(0.0, sy - 0.03), (0.0, sy + 0.01)], 0.045, skin)
    hcx, hcy = (0.012 * fc if side else 0.0), hr + 0.005
    if style == "long" and view != "front":
        pen.poly([(-hr * 0.9, hcy), (hr * 0.9, hcy), (hr, sy + 0.09), (-hr, sy + 0.09)], hair)
    pen.ellipse(hcx, hcy, hr * 0.82, hr, skin)
    if style != "bald":
        if view == "back":
            pen.ellipse(hcx, hcy, hr * 0.86, hr * 1.03, hair)
        elif side:
            pen.ellipse(hcx - fc * hr * 0.25, hcy - hr * 0.2, hr * 0.72, hr * 0.85, hair)
        else:
            pen.ellipse(hcx, hcy - hr * 0.45, hr * 0.85, hr * 0.6, hair)
            if style == "long":
                for k in (-1, 1):
                    pen.poly([(k * hr * 0.6, hcy - hr * 0.3), (k * hr * 0.95, hcy - hr * 0.3),
                              (k * hr * 1.05, sy + 0.07), (k * hr * 0.7, sy + 0.07)], hair)
        if style == "ponytail" and view != "front":
            px = -fc * hr * 1.0 if side else 0.0
            pen.ellipse(hcx + px, hcy + hr * 0.7, hr * 0.35, hr * 0.7, hair)
    if view == "front":
        for k in (-1, 1):
            pen.ellipse(k * hr * 0.33, hcy - hr * 0.05, hr * 0.1, hr * 0.1, _EYE)
    elif side:
        pen.ellipse(hcx + fc * hr * 0.45, hcy - hr * 0.05, hr * 0.09, hr * 0.09, _EYE)
    hat = ident["hat"]
    if hat is not None:
        pen.ellipse(hcx, hcy - hr * 0.55, hr * 0.9, hr * 0.55, hat)
        if side:
            pen.ellipse(hcx + fc * hr * 0.8, hcy - hr * 0.35, hr * 0.5, hr * 0.15, hat)
        elif view == "front":
            pen.ellipse(hcx, hcy - hr * 0.2, hr * 0.8, hr * 0.15, shade(hat, 0.8))
