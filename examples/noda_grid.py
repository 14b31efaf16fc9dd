"""Render a Fig. 5-style grid: original pedestrians (top row) and NODA outputs (rows below).

Runs without any dataset: it draws simple person-like images and procedural occluders,
writes the occluders to a folder and loads NODA from that folder (the same path a user
takes with real occluder crops). Pass ``--occluders DIR`` to use your own crops.

    python examples/noda_grid.py --output noda_grid.png
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from sureid import NODA, make_procedural_occluders, save_occluders

H, W = 256, 128


def person(rng: np.random.Generator) -> Image.Image:
    """A crude pedestrian on a street-like background, (W, H) = (128, 256), RGB."""
    sky, ground = rng.integers(120, 220, 3), rng.integers(60, 140, 3)
    t = np.linspace(0, 1, H)[:, None, None]
    bg = (sky * (1 - t) + ground * t + rng.normal(0, 6, (H, W, 3))).clip(0, 255)
    img = Image.fromarray(bg.astype(np.uint8))
    d = ImageDraw.Draw(img)
    cx = W / 2 + rng.uniform(-10, 10)
    skin = tuple(int(v) for v in rng.integers([150, 100, 70], [240, 190, 160]))
    top = tuple(int(v) for v in rng.integers(0, 256, 3))
    legs = tuple(int(v) for v in rng.integers(0, 160, 3))
    d.ellipse([cx - 14, 18, cx + 14, 50], fill=skin)  # head
    d.rounded_rectangle([cx - 26, 52, cx + 26, 140], radius=10, fill=top)  # torso
    d.line([(cx - 26, 60), (cx - 36, 135)], fill=top, width=11)  # arms
    d.line([(cx + 26, 60), (cx + 36, 135)], fill=top, width=11)
    d.rectangle([cx - 22, 138, cx - 3, 236], fill=legs)  # legs
    d.rectangle([cx + 3, 138, cx + 22, 236], fill=legs)
    d.ellipse([cx - 26, 230, cx - 1, 244], fill=(30, 30, 30))  # shoes
    d.ellipse([cx + 1, 230, cx + 26, 244], fill=(30, 30, 30))
    return img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", type=Path, default=Path("noda_grid.png"))
    ap.add_argument("--occluders", type=Path, default=None,
                    help="folder of real occluder crops (default: procedural stand-ins)")
    ap.add_argument("--columns", type=int, default=8)
    ap.add_argument("--rows", type=int, default=2, help="rows of NODA outputs")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    originals = [person(rng) for _ in range(args.columns)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.occluders
        if folder is None:
            folder = Path(tmp) / "occluders"
            save_occluders(make_procedural_occluders(32, seed=args.seed), folder)
        noda = NODA(folder, p=1.0)
    torch.manual_seed(args.seed)
    rows = [originals] + [[noda(im) for im in originals] for _ in range(args.rows)]

    gap = 4
    grid = Image.new("RGB", (args.columns * (W + gap) + gap, len(rows) * (H + gap) + gap),
                     (255, 255, 255))
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            grid.paste(im, (gap + c * (W + gap), gap + r * (H + gap)))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.output)
    print(f"wrote {args.output} ({grid.width}x{grid.height}): top row originals, "
          f"{args.rows} rows of NODA outputs; {noda!r}")


if __name__ == "__main__":
    main()
