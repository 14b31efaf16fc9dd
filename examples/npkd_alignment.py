"""Does a distilled student follow its teacher? NPKD's feature term (Eq. 13) measured on images.

For each student model file, on the same images (the training split by default: what the
feature term was fitted on), with ``f_s`` the student's embedding as ``sureid.load`` gives it
(the pre-BN feature of Eq. 10 by default) and ``I(f_t)`` the teacher's feature interpolated to
the student's width (``sureid.losses.interpolate_features``, NPKD's default grid):

* ``mse``: ``mean_j (f_s - I(f_t))_j^2``, Eq. 13's feature term averaged over channels (NPKD's
  default reduction), against ``mse_zero = mean_j I(f_t)_j^2``: what a student that outputs
  zeros scores. ``mse`` above ``mse_zero`` means the term is no closer than silence.
* ``channel_corr``: the mean over channels ``j`` of the Pearson correlation between ``f_s[:, j]``
  and ``I(f_t)[:, j]`` over images: channel ``j`` of the student following channel ``j`` of
  the interpolated teacher, which is what the feature term asks for.
* ``probe_r2``: how much of ``I(f_t)``'s variance an affine map of ``f_s`` explains, fitted by
  least squares on the first half of the images and scored on the second half: the teacher
  information the student's features hold in any channel layout.
* ``sq_norm``: ``mean_j f_s_j^2``, the student's feature scale.

Usage::

    python examples/npkd_alignment.py --teacher examples/pretrained/quick_teacher_finetuned.pt \\
        --images runs/table4-quick/data/bounding_box_train \\
        runs/table4-quick/models/hts.pt runs/table4-quick/models/hts_npkd.pt \\
        --output alignment.md alignment.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

import sureid
from sureid._image_files import list_images
from sureid.inference import FeatureExtractor
from sureid.losses.npkd import interpolate_features


def alignment(fs: torch.Tensor, ft: torch.Tensor) -> dict[str, float]:
    """The measures above for student features ``fs (N, C)`` and the interpolated teacher
    features ``ft (N, C)`` of the same ``N >= 4`` images (float64 inside)."""
    if fs.ndim != 2 or fs.shape != ft.shape:
        raise ValueError(f"fs and ft must be (N, C) of one shape, got {tuple(fs.shape)} and "
                         f"{tuple(ft.shape)}")
    if fs.shape[0] < 4:
        raise ValueError(f"need at least 4 images, got {fs.shape[0]}")
    fs, ft = fs.double(), ft.double()
    a, b = fs - fs.mean(0), ft - ft.mean(0)
    corr = (a * b).sum(0) / (a.norm(dim=0) * b.norm(dim=0)).clamp_min(1e-300)
    half = fs.shape[0] // 2
    design = torch.cat([fs, torch.ones(len(fs), 1, dtype=fs.dtype)], dim=1)
    coef = torch.linalg.lstsq(design[:half], ft[:half]).solution
    residual = (design[half:] @ coef - ft[half:]).pow(2).sum()
    total = (ft[half:] - ft[:half].mean(0)).pow(2).sum()
    return {
        "mse": float((fs - ft).pow(2).mean()), "mse_zero": float(ft.pow(2).mean()),
        "channel_corr": float(corr.mean()), "probe_r2": float(1 - residual / total),
        "sq_norm": float(fs.pow(2).mean()),
    }


def embed(model: torch.nn.Module, files: list[Path]) -> torch.Tensor:
    """``model``'s eval-mode embedding ``(N, C)`` of the image files (its own preprocessing)."""
    return FeatureExtractor(model)(files).features


def markdown(rows: list[dict], teacher: str, n: int) -> str:
    lines = [f"Feature alignment with the teacher `{teacher}` on {n} images "
             "(`examples/npkd_alignment.py`).", "",
             "| student | MSE to I(f_t) | zero output | channel corr | probe R² | mean f_s² |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['student']} | {r['mse']:.3f} | {r['mse_zero']:.3f} | "
              f"{r['channel_corr']:+.3f} | {r['probe_r2']:.3f} | {r['sq_norm']:.3f} |"
              for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("students", nargs="+", type=Path, help="student model files")
    parser.add_argument("--teacher", type=Path, required=True, help="teacher model file")
    parser.add_argument("--images", type=Path, required=True, help="image folder")
    parser.add_argument("--max-images", type=int, default=512,
                        help="evenly spaced images of the folder's sorted list (default 512)")
    parser.add_argument("--output", nargs="+", type=Path, default=[], metavar="PATH",
                        help="also write the table: JSON to a path ending .json, else Markdown")
    args = parser.parse_args(argv)
    if args.max_images < 4:
        parser.error(f"--max-images must be >= 4, got {args.max_images}")
    files = list_images(args.images)
    files = files[::max(1, len(files) // args.max_images)][:args.max_images]
    teacher = sureid.load(args.teacher)
    ft = embed(teacher, files)
    rows = []
    for path in args.students:
        fs = embed(sureid.load(path), files)
        row = {"student": str(path), **alignment(fs, interpolate_features(ft, fs.shape[1]))}
        rows.append(row)
        print(f"{path}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "student"),
              flush=True)
    for out in args.output:
        if out.suffix == ".json":
            out.write_text(json.dumps({"teacher": str(args.teacher), "images": len(files),
                                       "rows": rows}, indent=2) + "\n")
        else:
            out.write_text(markdown(rows, str(args.teacher), len(files)))
    return rows


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
