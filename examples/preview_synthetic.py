"""Render a contact sheet of the synthetic occluded-ReID benchmark so a person can look at it.

One row per identity: a few training identities (holistic and occluded training images across
cameras), then test identities (their occluded query images, then gallery images from other
cameras). Each tile is labelled with its split and camera.

    python examples/preview_synthetic.py --preset smoke --output synthetic_preview.png
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

from PIL import Image, ImageDraw

from sureid.data.synthetic import SYNTHETIC_PRESETS, make_synthetic_reid

NAME = re.compile(r"^(\d{4})_c(\d)_f(\d{7})\.jpg$")
SPLITS = (("train", "bounding_box_train"), ("query", "query"), ("gallery", "bounding_box_test"))


def _index(root: Path) -> dict[str, dict[int, list[tuple[int, Path]]]]:
    out: dict[str, dict[int, list[tuple[int, Path]]]] = {}
    for split, sub in SPLITS:
        by_pid: dict[int, list[tuple[int, Path]]] = defaultdict(list)
        for p in sorted((root / sub).iterdir()):
            m = NAME.match(p.name)
            if m:
                by_pid[int(m.group(1))].append((int(m.group(2)), p))
        out[split] = by_pid
    return out


def contact_sheet(root: Path, *, train_ids: int, test_ids: int, per_row: int) -> Image.Image:
    """Tile images of a few identities into one labelled sheet."""
    idx = _index(root)
    rows: list[tuple[str, list[tuple[str, int, Path]]]] = []
    for pid in sorted(idx["train"])[:train_ids]:
        items = sorted(idx["train"][pid], key=lambda t: (t[0], t[1].name))
        rows.append((f"train id {pid}", [("T", c, p) for c, p in items][:per_row]))
    for pid in sorted(idx["query"])[:test_ids]:
        q = [("Q", c, p) for c, p in idx["query"][pid]]
        g = [("G", c, p) for c, p in sorted(idx["gallery"].get(pid, []))]
        rows.append((f"test id {pid}", (q + g)[:per_row]))
    first = Image.open(rows[0][1][0][2])
    w, h = first.size
    label_w, pad, text_h = 80, 3, 12
    sheet = Image.new("RGB", (label_w + per_row * (w + pad), len(rows) * (h + text_h + pad)),
                      (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    for r, (label, items) in enumerate(rows):
        y = r * (h + text_h + pad)
        d.text((4, y + h // 2), label, fill=(0, 0, 0))
        for c, (kind, cam, path) in enumerate(items):
            x = label_w + c * (w + pad)
            with Image.open(path) as im:
                sheet.paste(im.convert("RGB"), (x, y))
            colour = {"T": (0, 0, 0), "Q": (200, 0, 0), "G": (0, 0, 200)}[kind]
            d.text((x + 2, y + h), f"{kind} c{cam}", fill=colour)
    return sheet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="smoke", choices=sorted(SYNTHETIC_PRESETS))
    ap.add_argument("--data-root", type=Path, default=Path("data/synthetic-preview"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", type=Path, default=Path("synthetic_preview.png"))
    ap.add_argument("--train-ids", type=int, default=4)
    ap.add_argument("--test-ids", type=int, default=6)
    ap.add_argument("--per-row", type=int, default=10)
    args = ap.parse_args()
    summary = make_synthetic_reid(args.data_root, preset=args.preset, seed=args.seed,
                                  overwrite=True)
    print(f"{summary.root}: train {summary.train}, query {summary.query}, "
          f"gallery {summary.gallery} ({'reused' if summary.reused else 'generated'} "
          f"in {summary.seconds:.1f}s)")
    sheet = contact_sheet(summary.root, train_ids=args.train_ids, test_ids=args.test_ids,
                          per_row=args.per_row)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
