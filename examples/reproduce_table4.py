"""Reproduce the SUReID ablations (Table IV, and Tables V-VII) end to end, with statistics.

Fine-tunes a dense teacher once, then trains every table row once per seed, measures every
row's inference throughput in the same run (batch 32, interleaved), evaluates Rank-1 / mAP per
query and writes ``tableN.json`` / ``tableN.md`` into ``--output-dir``: each row's mean ± std
over seeds and, for each claim of the paper, the paired difference between the rows it
compares with a 95 % bootstrap interval over queries and a verdict read from that interval.

Data: ``--data-root`` points at a real Occluded-DukeMTMC folder; without it the built-in
synthetic occluded-ReID benchmark is generated (deterministically) under the output dir. The
quick and long presets start from the pretrained backbones shipped in ``examples/pretrained``
(made by ``examples/pretrain_backbones.py``), as the paper starts from ImageNet weights.

    python examples/reproduce_table4.py --preset quick            # README main job, CPU
    python examples/reproduce_table4.py --preset long             # 5 seeds, longer fine-tuning
    python examples/reproduce_table4.py --preset smoke            # plumbing check, the tests
    python examples/reproduce_table4.py --preset paper --data-root /data/Occluded_Duke \\
        --device cuda                    # DeiT-S (distilled) / ViT-B from timm's weights
    python examples/reproduce_table4.py --preset paper --data-root /data/Occluded_Duke \\
        --student-weights deit_small_distilled.pth --teacher-checkpoint srfr_teacher.pt
    python examples/reproduce_table4.py --preset quick --table 7   # NODA, with its control

A rerun into the same ``--output-dir`` reuses the teacher and every finished row whose settings
match; a row or teacher trained under other settings is refused with the settings that differ.
Rows that train the same model (Table IV's vanilla is Table VII's "Vanilla ViT", its full model
is Table V's p=0.7 and Table VI's T-S interpolation) are trained once per output dir, so the
other tables run into Table IV's folder cost only their new rows.
Only sureid's public API is used; torchvision is needed for the augmentations
(``pip install 'sureid[vision]'``) and timm for ``--student/--teacher`` names.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch

from sureid.ablation import PRESETS, Arch, Preset, override, table_rows
from sureid.ablation.recipe import Weights, WeightsUnavailable
from sureid.ablation.table import TableRun, run_table
from sureid.ablation.workspace import Workspace, log_line
from sureid.data import read_occluded_duke

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
log = log_line


class UsageError(Exception):
    """A bad command line or a request that cannot be met: one line on stderr, exit status 2."""


# ----------------------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--table", type=lambda v: int(v) if v.isdigit() else v, default=4,
                   choices=(4, 5, 6, 7, "npkd"),
                   help="paper table, or 'npkd': the NPKD diagnostic (which term of Eq. 13 "
                        "helps), not a paper table")
    p.add_argument("--data-root", type=Path,
                   help="real Occluded-DukeMTMC folder (default: synthetic benchmark)")
    p.add_argument("--output-dir", type=Path, help="default: runs/table<N>-<preset>")
    p.add_argument("--occluders", type=Path,
                   help="folder of real occluder crops for NODA (default: procedural)")
    p.add_argument("--student",
                   help="timm model name for the student (e.g. deit_small_patch16_224)")
    p.add_argument("--teacher", help="timm model name for the teacher (e.g. vit_base_patch16_224)")
    p.add_argument("--pretrained", action="store_true",
                   help="start --student/--teacher timm names from timm's pretrained weights "
                        "(downloaded when a hub is reachable; the paper preset does by default)")
    p.add_argument("--student-weights", type=Path,
                   help="local weights for the student (timm/DeiT/TransReID .pth, safetensors); "
                        "the position embedding is resampled to the input size")
    p.add_argument("--teacher-weights", type=Path, help="local weights for the teacher backbone")
    p.add_argument("--teacher-checkpoint", type=Path,
                   help="use this trained teacher instead of training one")
    p.add_argument("--teacher-only", action="store_true",
                   help="fine-tune (or load) the teacher, evaluate it, write it as a sureid.load "
                        "model file with its provenance (models/teacher.pt, .json) and stop")
    p.add_argument("--epochs", type=int, help="override the preset's student epochs")
    p.add_argument("--teacher-epochs", type=int, help="override the preset's teacher epochs")
    p.add_argument("--keep-ratio", type=float, help="override the preset's p")
    p.add_argument("--seeds", type=int, help="override the preset's number of seeds")
    p.add_argument("--keep-score", choices=("decision", "attention"), default="decision",
                   help="what ranks the student's tokens: the paper's decision modules "
                   "(default) or the parameter-free class-token attention (not in the paper; "
                   "HTSViT(keep_score=...))")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--throughput-threads", type=int, default=1,
                   help="CPU threads per forward for the table's throughput (default 1: per "
                        "core, as a CPU server runs one worker per core); all-core figures go "
                        "in the meta file")
    p.add_argument("--seed", type=int, default=0, help="first training seed")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                   help="override any preset setting, e.g. --set predictor_warmup_epochs=0.5 "
                        "(repeatable; sureid.ablation.override)")
    p.add_argument("--rows", nargs="+", metavar="ROW",
                   help="train only these rows of the table (by name); claims that need "
                        "another row are left out")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def check_args(args, preset: Preset) -> None:
    """Every bad input is reported here, before any data is generated or model trained."""
    if args.data_root is not None:
        read_occluded_duke(args.data_root)  # raises FileNotFoundError/ValueError naming the folder
    elif preset.synthetic is None:
        raise UsageError("this preset needs --data-root")
    if args.teacher_checkpoint is not None and not args.teacher_checkpoint.is_file():
        raise UsageError(f"--teacher-checkpoint {str(args.teacher_checkpoint)!r} does not exist")
    if args.occluders is not None and not args.occluders.is_dir():
        raise UsageError(f"--occluders {str(args.occluders)!r} is not a folder")
    if args.keep_ratio is not None and not 0 < args.keep_ratio <= 1:
        raise UsageError(f"--keep-ratio must be in (0, 1], got {args.keep_ratio}")
    for name in ("epochs", "teacher_epochs", "seeds"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.throughput_threads < 1:
        raise UsageError(f"--throughput-threads must be >= 1, got {args.throughput_threads}")
    if args.workers < 0:
        raise UsageError(f"--workers must be >= 0, got {args.workers}")


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    preset = PRESETS[args.preset]
    check_args(args, preset)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("teacher_epochs", args.teacher_epochs),
                                   ("keep_ratio", args.keep_ratio), ("seeds", args.seeds))
                 if v is not None}
    if args.student:
        overrides["student"] = Arch(timm_name=args.student)
    if args.teacher:
        overrides["teacher"] = Arch(timm_name=args.teacher)
    preset = replace(preset, **overrides)
    try:
        preset = override(preset, args.assignments)
    except ValueError as err:
        raise UsageError(str(err)) from None
    rows = table_rows(args.table)
    if args.rows:
        unknown = sorted(set(args.rows) - {r.name for r in rows})
        if unknown:
            raise UsageError(f"--rows {unknown}: table {args.table} has rows "
                             f"{[r.name for r in rows]}")
        rows = [r for r in rows if r.name in args.rows]
    try:  # checked before any data is generated
        student_weights = Weights.from_args("student", preset.student, preset, args,
                                            shipped_dir=PRETRAINED_DIR, log=log)
        teacher_weights = Weights.from_args("teacher", preset.teacher, preset, args,
                                            shipped_dir=PRETRAINED_DIR, log=log)
    except WeightsUnavailable as err:
        raise UsageError(str(err)) from None
    run = TableRun(
        preset=preset, preset_name=args.preset, table=args.table, rows=rows,
        student_weights=student_weights, teacher_weights=teacher_weights,
        data_root=args.data_root, occluders=args.occluders,
        teacher_file=args.teacher_checkpoint, shipped_dir=PRETRAINED_DIR,
        teacher_only=args.teacher_only, keep_score=args.keep_score, seed=args.seed,
        throughput_threads=args.throughput_threads,
        command="python examples/reproduce_table4.py " + " ".join(
            sys.argv[1:] if argv is None else argv))
    out = args.output_dir or Path("runs") / f"table{args.table}-{args.preset}"
    ws = Workspace(out, torch.device(args.device), workers=args.workers,
                   progress=not args.no_progress, log=log)
    return run_table(run, ws)


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError, UsageError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
