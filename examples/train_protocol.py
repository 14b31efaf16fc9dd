"""Train and test the full SUReID model under one of the paper's dataset protocols (Tables I-III).

Fine-tunes the dense teacher on the protocol's training set (or loads ``--teacher-checkpoint``),
trains the full student (HTS p=0.7 + NPKD + NODA dual batch, Eq. 14 with the protocol's alpha
and beta), evaluates it on every test set of the protocol (Rank-1/3/5, mAP) and writes
``model.pt`` (``sureid.load``-able), ``protocol.json`` and ``protocol.md`` (our numbers beside
the paper's) into ``--output-dir``. Protocols (``sureid.ablation.PROTOCOLS``, docs/protocols.md):

    occluded_duke               Table I:   Occluded-DukeMTMC -> Occluded-DukeMTMC
    market1501, dukemtmc        Table III: holistic, train and test on the same dataset
    market_to_occluded_reid     Table II:  Market-1501 -> Occluded-REID (ViT student, alpha 2,
    market_to_partial_reid                 colour jitter); market_to_occluded_partial trains
    market_to_occluded_partial             once and tests on both

``--data-root ROOT`` holds the datasets under their usual folder names (any one of them per
dataset; ROOT may also be the dataset folder itself):

    ROOT/Market-1501-v15.09.15   (or Market-1501, market1501)          bounding_box_train/ query/
    ROOT/DukeMTMC-reID           (or dukemtmc-reid, dukemtmcreid)      bounding_box_test/
    ROOT/Occluded_Duke           (or Occluded-DukeMTMC, occluded_duke, OccludedDuke)
    ROOT/Occluded_REID           (or OccludedREID, Occluded-REID, occluded_reid)
                                 occluded_body_images/ whole_body_images/
    ROOT/Partial-REID            (or Partial_REID, PartialREID, Partial-REID_Dataset,
                                 partial_reid)  partial_body_images/ whole_body_images/

``--train-root`` / ``--test-root`` override ROOT for the training / test datasets.

    python examples/train_protocol.py --protocol occluded_duke --data-root /data --device cuda
    python examples/train_protocol.py --protocol market_to_occluded_partial --data-root /data \\
        --student-weights vit_base_in21k_ft_in1k.pth --teacher-checkpoint srfr_market.pt
    python examples/train_protocol.py --protocol market1501 --data-root /data --smoke  # plumbing

A rerun into the same ``--output-dir`` reuses the teacher and resumes the student when their
settings match (and refuses them, naming what differs, when they do not). Only sureid's public
API is used; torchvision is needed for the augmentations and timm for the backbones.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch

from sureid.ablation import PRESETS, PROTOCOLS, Protocol, Weights, WeightsUnavailable
from sureid.ablation.protocol_run import ProtocolRun, run_protocol
from sureid.ablation.workspace import Workspace, log_line
from sureid.data import ReIDDataset, build_dataset

# --smoke: the smoke preset's tiny sureid ViTs and schedule (no download), the protocol's
# loss weights, keep ratio and augmentation probabilities
SMOKE_FIELDS = ("img_size", "student", "teacher", "pretrained", "timm_pretrained", "epochs",
                "teacher_epochs", "ids_per_batch", "instances", "optimizer", "lr",
                "weight_decay", "warmup_epochs", "padding", "max_steps_per_epoch")
log = log_line


class UsageError(Exception):
    """A bad command line or a request that cannot be met: one line on stderr, exit status 2."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", required=True, choices=sorted(PROTOCOLS))
    p.add_argument("--data-root", type=Path, help="folder holding the protocol's datasets")
    p.add_argument("--train-root", type=Path, help="the training dataset's root (default ROOT)")
    p.add_argument("--test-root", type=Path, help="the test datasets' root (default ROOT)")
    p.add_argument("--output-dir", type=Path, help="default: runs/protocol-<name>")
    p.add_argument("--occluders", type=Path,
                   help="folder of real occluder crops for NODA (default: procedural)")
    p.add_argument("--student-weights", type=Path,
                   help="local weights for the student (timm/DeiT/TransReID .pth, safetensors); "
                        "default: timm's pretrained weights of the protocol's student")
    p.add_argument("--teacher-weights", type=Path, help="local weights for the teacher backbone")
    p.add_argument("--teacher-checkpoint", type=Path,
                   help="use this trained teacher (a sureid checkpoint with a 'model' entry) "
                        "instead of fine-tuning one")
    p.add_argument("--epochs", type=int, help="override the student's epochs (paper: 200)")
    p.add_argument("--teacher-epochs", type=int, help="override the teacher's epochs")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true",
                   help="plumbing check: tiny sureid ViTs at 64x32, 1 epoch of 3 steps, no "
                        "download; the numbers mean nothing")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def check_args(args) -> None:
    """Every bad argument is reported here, before any data is read or model trained."""
    if args.data_root is None and (args.train_root is None or args.test_root is None):
        raise UsageError("--data-root is required (or both --train-root and --test-root)")
    if args.teacher_checkpoint is not None and not args.teacher_checkpoint.is_file():
        raise UsageError(f"--teacher-checkpoint {str(args.teacher_checkpoint)!r} does not exist")
    if args.occluders is not None and not args.occluders.is_dir():
        raise UsageError(f"--occluders {str(args.occluders)!r} is not a folder")
    for name in ("epochs", "teacher_epochs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.workers < 0:
        raise UsageError(f"--workers must be >= 0, got {args.workers}")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise UsageError(f"--device must be a torch device such as 'cpu' or 'cuda', "
                         f"got {args.device!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {args.device!r}: CUDA is not available here")


def make_preset(protocol: Protocol, args):
    """The protocol's training recipe, with --smoke and --epochs/--teacher-epochs applied."""
    preset = protocol.preset()
    if args.smoke:
        smoke = PRESETS["smoke"]
        preset = replace(preset, **{f: getattr(smoke, f) for f in SMOKE_FIELDS})
    overrides = {k: v for k, v in (("epochs", args.epochs), ("teacher_epochs", args.teacher_epochs))
                 if v is not None}
    return replace(preset, **overrides)


def read_data(protocol: Protocol, args) -> tuple[ReIDDataset, dict[str, ReIDDataset]]:
    """The training set and every test set; a missing folder is an error naming it."""
    train_root = args.train_root or args.data_root
    test_root = args.test_root or args.data_root
    try:
        train = build_dataset(protocol.train, train_root)
        tests = {name: train if (name, test_root) == (protocol.train, train_root)
                 else build_dataset(name, test_root) for name in protocol.test}
    except FileNotFoundError as err:
        raise UsageError(f"protocol {protocol.name!r}: {err}") from None
    if not train.train:
        raise UsageError(f"protocol {protocol.name!r}: {protocol.train} has no training images")
    return train, tests


def main(argv=None) -> dict:
    args = parse_args(argv)
    check_args(args)
    protocol = PROTOCOLS[args.protocol]
    preset = make_preset(protocol, args)
    data, tests = read_data(protocol, args)
    try:  # a pretrained start that cannot be had fails here, before anything is trained
        student_weights = Weights.from_args("student", preset.student, preset, args, log=log)
        teacher_weights = Weights.from_args("teacher", preset.teacher, preset, args, log=log)
    except WeightsUnavailable as err:
        raise UsageError(str(err)) from None
    run = ProtocolRun(
        protocol=protocol, preset=preset, train=data, tests=tests,
        roots={"train": str(Path(args.train_root or args.data_root).resolve()),
               "test": str(Path(args.test_root or args.data_root).resolve())},
        student_weights=student_weights, teacher_weights=teacher_weights,
        occluders=args.occluders, teacher_checkpoint=args.teacher_checkpoint,
        smoke=args.smoke, seed=args.seed)
    out = args.output_dir or Path("runs") / f"protocol-{protocol.name}"
    ws = Workspace(out, torch.device(args.device), workers=args.workers,
                   progress=not args.no_progress, log=log)
    return run_protocol(run, ws)


def run(argv=None) -> int:
    """The command line: 0 on success; 2 with one line on stderr for a bad request."""
    try:
        main(argv)
    except (FileNotFoundError, ValueError, UsageError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run())
