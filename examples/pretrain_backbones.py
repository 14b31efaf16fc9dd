"""Pretrain the quick preset's student and teacher backbones on a large synthetic corpus.

The paper fine-tunes ImageNet-pretrained DeiT-S; no such weights exist for the quick preset's
small conv-stem ViTs, so this script makes them the way ImageNet weights are made: supervised
training (ID + triplet loss) on a large corpus whose identities are disjoint from the
benchmark's (the corpus is generated with its own seed, 1000, and only its training split is
used). The backbones (without heads) are written in fp16 beside a provenance JSON:

    python examples/pretrain_backbones.py --model student   # examples/pretrained/quick_student.pt
    python examples/pretrain_backbones.py --model teacher   # examples/pretrained/quick_teacher.pt
    python examples/pretrain_backbones.py --tiny --output-dir /tmp/pt   # seconds, for the tests

Each run resumes from ``<output-dir>/work/<model>.ckpt`` after an interruption.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

import sureid
from sureid.ablation import PRESETS, build_backbone, save_backbone_weights
from sureid.data import ImageDataset, RandomIdentitySampler, read_occluded_duke
from sureid.data.synthetic import GENERATOR_VERSION
from sureid.engine import Trainer, cosine_with_warmup
from sureid.models import ReIDModel

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HERE = Path(__file__).resolve().parent


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("student", "teacher"), required=True)
    p.add_argument("--preset", default="quick", help="whose student/teacher shapes (default quick)")
    p.add_argument("--output-dir", type=Path, default=HERE / "pretrained")
    p.add_argument("--data-dir", type=Path, default=Path("runs/pretrain-corpus"),
                   help="where the synthetic corpus is generated (reused when it matches)")
    p.add_argument("--ids", type=int, default=2500, help="corpus identities (default 2500)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=1000, help="corpus and training seed")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--tiny", action="store_true", help="a seconds-long run for tests")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.preset not in PRESETS:
        p.error(f"--preset must be one of {sorted(PRESETS)}, got {args.preset!r}")
    for name in ("ids", "epochs", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    return args


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True,
                             text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None) -> Path:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    preset = PRESETS[args.preset]
    arch = preset.student if args.model == "student" else preset.teacher
    img_size = preset.img_size
    if args.tiny:
        args.ids, args.epochs = 24, 1
    t0 = time.perf_counter()
    commit = git_commit()  # the code that makes the weights, before anything can change it
    progress = not args.no_progress
    summary = sureid.make_synthetic_reid(
        args.data_dir, preset="smoke" if args.tiny else "quick", num_train_ids=args.ids,
        num_test_ids=2, num_distractor_ids=0, seed=args.seed, progress=progress)
    train = read_occluded_duke(args.data_dir).train
    print(f"corpus {args.data_dir}: {summary.train.num_images} images of {summary.train.num_ids} "
          f"identities (seed {args.seed})", flush=True)

    from torchvision.transforms import v2  # pip install 'sureid[vision]'

    tf = v2.Compose([
        v2.ToImage(), v2.Resize(list(img_size), antialias=True), v2.RandomHorizontalFlip(),
        v2.Pad(4), v2.RandomCrop(list(img_size)), v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(MEAN), list(STD)), v2.RandomErasing(p=0.25),
    ])
    ds = ImageDataset(train, transform=tf)
    sampler = RandomIdentitySampler(ds.pids, batch_size=64, num_instances=4, seed=args.seed)
    loader = DataLoader(ds, batch_size=64, sampler=sampler, num_workers=0, drop_last=True)
    if args.tiny:
        loader = list(itertools.islice(loader, 2))

    torch.manual_seed(args.seed)
    backbone = build_backbone(arch, img_size)
    model = ReIDModel(backbone, len(set(ds.pids)))
    objective = sureid.SUReIDLoss(kd=None, ratio=None, aux_weight=0)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    steps = len(loader) * args.epochs
    sched = cosine_with_warmup(opt, total_steps=steps, warmup_steps=min(steps - 1, len(loader)))
    trainer = Trainer(model, objective, opt, scheduler=sched,
                      log=lambda s: print(f"[{args.model}] {s}", flush=True))
    work = args.output_dir / "work"
    trainer.fit(loader, epochs=args.epochs, checkpoint_path=work / f"{args.model}.ckpt",
                progress=progress)
    seconds = time.perf_counter() - t0

    name = f"{args.preset}_{args.model}"
    provenance = {
        "command": "python examples/pretrain_backbones.py " + " ".join(sys.argv[1:] if argv is None
                                                                     else argv),
        "seed": args.seed,
        "generator_version": GENERATOR_VERSION,
        "corpus": {"identities": summary.train.num_ids, "images": summary.train.num_images,
                   "synthetic_preset": "smoke" if args.tiny else "quick",
                   "disjoint_from_benchmark": "own seed; only the corpus' training split is used"},
        "epochs": args.epochs, "steps": trainer.state.step, "lr": args.lr, "batch": "16 x 4",
        "objective": "ID (label smoothing 0.1) + triplet, AdamW wd 0.05, cosine, 1 warm-up epoch",
        "img_size": list(img_size),
        "final_losses": {k: round(v, 4) for k, v in trainer.state.history[-1].items()},
        "wall_seconds": round(seconds, 1),
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "torch": str(torch.__version__),
        "commit": commit,
    }
    out = save_backbone_weights(backbone.backbone, args.output_dir / f"{name}.pt",
                                arch=dataclasses.asdict(arch), img_size=img_size,
                                provenance=provenance)
    (args.output_dir / f"{name}.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {seconds:.0f}s", flush=True)
    return out


if __name__ == "__main__":
    main()
