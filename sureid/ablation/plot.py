"""Line charts with interval bars, drawn with Pillow (no plotting dependency): the budget
curve of the Table IV reproduction."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

__all__ = ["Panel", "render_panels"]

# colour-blind safe (Okabe-Ito)
_COLOURS = ((0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (230, 159, 0),
            (86, 180, 233), (0, 0, 0))


@dataclass
class Panel:
    """One chart: ``series`` maps a label to ``(y, low, high)`` per x (``low``/``high`` may be
    None for no bar); x is drawn on a log scale when ``log_x``; ``zero_line`` draws y = 0."""

    title: str
    x: Sequence[float]
    series: Mapping[str, tuple[Sequence[float], Sequence[float] | None, Sequence[float] | None]]
    x_label: str = ""
    y_label: str = ""
    log_x: bool = True
    zero_line: bool = False
    notes: list[str] = field(default_factory=list)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    step = 10 ** math.floor(math.log10(max(hi - lo, 1e-9) / n))
    for mult in (1, 2, 2.5, 5, 10):
        if (hi - lo) / (step * mult) <= n:
            step *= mult
            break
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def _draw(draw: ImageDraw.ImageDraw, panel: Panel, box: tuple[int, int, int, int],
          font) -> None:
    left, top, right, bottom = box
    ax_l, ax_t, ax_r, ax_b = left + 60, top + 38, right - 250, bottom - 44
    values = [v for y, lo, hi in panel.series.values() for seq in (y, lo, hi) if seq is not None
              for v in seq if v is not None and math.isfinite(v)]
    if panel.zero_line:
        values.append(0.0)
    y_lo, y_hi = min(values), max(values)
    pad = 0.06 * (y_hi - y_lo or 1.0)
    y_lo, y_hi = y_lo - pad, y_hi + pad
    fx = (lambda v: math.log(v)) if panel.log_x else (lambda v: float(v))
    x_lo, x_hi = fx(min(panel.x)), fx(max(panel.x))
    span = (x_hi - x_lo) or 1.0

    def px(x: float) -> float:
        return ax_l + 15 + (fx(x) - x_lo) / span * (ax_r - ax_l - 30)

    def py(y: float) -> float:
        return ax_b - (y - y_lo) / (y_hi - y_lo) * (ax_b - ax_t)

    draw.text((left + 10, top + 4), panel.title, fill="black", font=font)
    draw.rectangle((ax_l, ax_t, ax_r, ax_b), outline="black")
    for t in _ticks(y_lo, y_hi):
        draw.line((ax_l - 4, py(t), ax_l, py(t)), fill="black")
        draw.line((ax_l + 1, py(t), ax_r - 1, py(t)), fill=(230, 230, 230))
        draw.text((left + 8, py(t) - 6), f"{t:g}", fill="black", font=font)
    for x in panel.x:
        draw.line((px(x), ax_b, px(x), ax_b + 4), fill="black")
        draw.text((px(x) - 6, ax_b + 6), f"{x:g}", fill="black", font=font)
    draw.text(((ax_l + ax_r) // 2 - 3 * len(panel.x_label), ax_b + 22), panel.x_label,
              fill="black", font=font)
    draw.text((left + 8, ax_t - 16), panel.y_label, fill="black", font=font)
    if panel.zero_line:
        draw.line((ax_l, py(0.0), ax_r, py(0.0)), fill=(120, 120, 120), width=1)
    for i, (label, (ys, lows, highs)) in enumerate(panel.series.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        shift = (i - (len(panel.series) - 1) / 2) * 4  # bars side by side, not on top
        points = [(px(x) + shift, py(y)) for x, y in zip(panel.x, ys, strict=True)
                  if y is not None]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for j, (x, y) in enumerate(zip(panel.x, ys, strict=True)):
            if y is None:
                continue
            cx, cy = px(x) + shift, py(y)
            if lows is not None and highs is not None and lows[j] is not None:
                draw.line((cx, py(lows[j]), cx, py(highs[j])), fill=colour, width=2)
                for end in (lows[j], highs[j]):
                    draw.line((cx - 3, py(end), cx + 3, py(end)), fill=colour, width=2)
            draw.ellipse((cx - 3, cy - 3, cx + 3, cy + 3), fill=colour)
        ly = ax_t + 4 + 16 * i
        draw.line((ax_r + 10, ly + 6, ax_r + 28, ly + 6), fill=colour, width=3)
        draw.text((ax_r + 32, ly), label, fill="black", font=font)
    for k, note in enumerate(panel.notes):
        draw.text((ax_r + 10, ax_t + 16 * len(panel.series) + 12 + 14 * k), note,
                  fill=(80, 80, 80), font=font)


def render_panels(panels: Sequence[Panel], path: str | Path | None = None, *,
                  width: int = 760, panel_height: int = 300) -> Image.Image:
    """Draw ``panels`` one above the other; saved to ``path`` (PNG) when given.

    Raises:
        ValueError: no panels, or a panel without x values or series.
    """
    if not panels:
        raise ValueError("panels must hold at least one Panel, got none")
    for p in panels:
        if not p.x or not p.series:
            raise ValueError(f"panel {p.title!r} needs x values and at least one series")
    img = Image.new("RGB", (width, panel_height * len(panels)), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    for i, p in enumerate(panels):
        _draw(draw, p, (0, i * panel_height, width, (i + 1) * panel_height), font)
    if path is not None:
        img.save(Path(path))
    return img
