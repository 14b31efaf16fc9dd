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
import dataclasses
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader

import sureid
from sureid.ablation import PRESETS, PROTOCOLS, Protocol, Weights, WeightsUnavailable
from sureid.ablation.recipe import MEAN, STD, make_optimizer, train_loader, view_transforms
from sureid.ablation.teacher import fine_tune_teacher, teacher_settings
from sureid.data import ImageDataset, ReIDDataset, build_dataset
from sureid.engine import (
    Trainer,
    evaluate_model,
    normalize_settings,
)
from sureid.hub import DataConfig
from sureid.models import ReIDModel

DATA_SEED = 0  # the procedural occluders do not change with the training seed
# --smoke: the smoke preset's tiny sureid ViTs and schedule (no download), the protocol's
# loss weights, keep ratio and augmentation probabilities
SMOKE_FIELDS = ("img_size", "student", "teacher", "pretrained", "timm_pretrained", "epochs",
                "teacher_epochs", "ids_per_batch", "instances", "optimizer", "lr",
                "weight_decay", "warmup_epochs", "padding", "max_steps_per_epoch")
# the teacher's own settings (what makes a cached teacher.pt reusable)
class UsageError(Exception):
    """A bad command line or a request that cannot be met: one line on stderr, exit status 2."""


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


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


def test_loader(records, transform, workers: int) -> DataLoader:
    """A test split in order, read on each evaluation (two: the teacher's and the student's)."""
    return DataLoader(ImageDataset(records, transform=transform), batch_size=128,
                      num_workers=workers)


def metrics(result) -> dict[str, float]:
    """Rank-1/3/5 and mAP in % (a gallery shorter than k reads its last CMC value)."""
    cmc = result.cmc
    out = {f"rank{k}": round(100 * float(cmc[min(k, len(cmc)) - 1]), 2) for k in (1, 3, 5)}
    return out | {"mAP": round(100 * result.mAP, 2)}


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
    out = args.output_dir or Path("runs") / f"protocol-{protocol.name}"
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    progress = not args.no_progress
    t_start = time.perf_counter()
    log(f"protocol {protocol.name} (Table {protocol.table}): train {data}; "
        f"test {', '.join(map(repr, tests.values()))}")

    if args.occluders is not None:
        occ_dir = args.occluders
        occluders = sureid.OccluderBank(occ_dir)
    else:
        occ_dir = out / "occluders"
        try:
            occluders = sureid.OccluderBank(occ_dir)
        except (FileNotFoundError, ValueError):  # absent, or left incomplete: (re)write it
            bank = sureid.make_procedural_occluders(16 if args.smoke else 200, seed=DATA_SEED)
            sureid.save_occluders(bank, occ_dir)
            occluders = sureid.OccluderBank(occ_dir)
    first, second, _, test_tf = view_transforms(preset, occluders,
                                                color_jitter=protocol.color_jitter)
    test_batches = {name: (test_loader(ds.query, test_tf, args.workers),
                           test_loader(ds.gallery, test_tf, args.workers))
                    for name, ds in tests.items()}
    num_classes = data.num_train_pids
    roots = {"train": str(Path(args.train_root or args.data_root).resolve()),
             "test": str(Path(args.test_root or args.data_root).resolve())}
    common = {"protocol": protocol.name, "color_jitter": protocol.color_jitter,
              "preset": dataclasses.asdict(preset), "smoke": args.smoke, "data": roots,
              "occluders": str(Path(occ_dir).resolve()), "device": device.type}

    def evaluate(model) -> dict[str, dict]:
        return {name: metrics(evaluate_model(model, q, g, metric=preset.metric, device=device))
                for name, (q, g) in test_batches.items()}

    def fit(name, model, objective, teacher, *, second, epochs, settings):
        loader = train_loader(data.train, preset, first=first, second=second,
                              workers=args.workers, seed=args.seed)
        opt, sched = make_optimizer(preset, model, objective, len(loader), epochs)
        trainer = Trainer(model.to(device), objective, opt, scheduler=sched, teacher=teacher,
                          device=device, grad_clip=preset.grad_clip,
                          log=lambda s: log(f"[{name}] {s}"))
        trainer.fit(loader, epochs=epochs, checkpoint_path=out / "checkpoints" / f"{name}.pt",
                    progress=progress, settings=settings)

    # teacher: dense ViT-B fine-tuned on the training set once (sureid.ablation.teacher)
    teacher_cfg = teacher_settings(common, seed=args.seed, weights=teacher_weights)
    teacher_net = fine_tune_teacher(
        teacher_weights, preset.img_size, num_classes,
        path=args.teacher_checkpoint or out / "teacher.pt", settings=teacher_cfg,
        trusted=args.teacher_checkpoint is not None, device=device, seed=args.seed, log=log,
        fit=lambda net, objective: fit("teacher", net, objective, None, second=None,
                                       epochs=preset.teacher_epochs, settings=teacher_cfg))
    teacher_results = evaluate(teacher_net)
    log(f"teacher: {teacher_results}")
    teacher = sureid.FrozenTeacher(teacher_net, teacher_net.classifier_weight.detach()).to(device)

    # student: the full SUReID model (HTS + NPKD + NODA dual batch), Eq. 14 with alpha/beta
    torch.manual_seed(args.seed)
    backbone = student_weights.build(preset.img_size, keep_ratio=preset.keep_ratio, prune=True)
    model = ReIDModel(backbone, num_classes, reweight=True).to(device)
    kd = sureid.NPKDLoss(kl_weight=preset.kl_weight, align="interpolate", direction="t2s",
                         student_dim=backbone.embed_dim, teacher_dim=teacher_net.embed_dim)
    objective = sureid.SUReIDLoss(
        alpha=preset.alpha, beta=preset.beta, ratio_weight=preset.ratio_weight, kd=kd,
        ratio=sureid.RatioLoss(backbone.keep_ratios),
    ).to(device)
    settings = normalize_settings({**common, "role": "student", "seed": args.seed,
                                   "weights": student_weights.describe(),
                                   "teacher": teacher_cfg if args.teacher_checkpoint is None
                                   else f"checkpoint:{args.teacher_checkpoint.resolve()}"})
    log(f"student: HTS p={preset.keep_ratio} + NPKD + NODA, alpha={preset.alpha} "
        f"beta={preset.beta}, colour jitter {'on' if protocol.color_jitter else 'off'}")
    fit("student", model, objective, teacher, second=second, epochs=preset.epochs,
        settings=settings)
    results = evaluate(model)
    for name, r in results.items():
        log(f"[{name}] Rank-1 {r['rank1']:.1f} Rank-3 {r['rank3']:.1f} mAP {r['mAP']:.1f}")
    model.save(out / "model.pt", data_config=DataConfig(preset.img_size, MEAN, STD),
               metadata={"protocol": protocol.name, "seed": args.seed, "smoke": args.smoke,
                         "results": results})

    # outputs -----------------------------------------------------------------------------
    paper = {r.test: r._asdict() for r in protocol.paper}
    rows = [{"test": name, **results[name],
             "num_queries": len(tests[name].query), "num_gallery": len(tests[name].gallery),
             "paper": {k: v for k, v in paper[name].items() if k != "test"}}
            for name in protocol.test]
    report = {
        "protocol": protocol.name, "table": protocol.table, "train": protocol.train,
        "results": rows, "teacher": teacher_results,
        "settings": {"student": preset.student.timm_name or dataclasses.asdict(preset.student),
                     "teacher": preset.teacher.timm_name or dataclasses.asdict(preset.teacher),
                     "alpha": preset.alpha, "beta": preset.beta, "keep_ratio": preset.keep_ratio,
                     "color_jitter": protocol.color_jitter, "epochs": preset.epochs,
                     "teacher_epochs": preset.teacher_epochs},
        "not_in_paper": list(preset.not_in_paper),
        "meta": {"device": str(device), "smoke": args.smoke, "seed": args.seed,
                 "pretrained": {"student": student_weights.describe(),
                                "teacher": teacher_weights.describe()},
                 "teacher_checkpoint": (str(args.teacher_checkpoint)
                                        if args.teacher_checkpoint else None),
                 "seconds": round(time.perf_counter() - t_start, 1)},
    }
    (out / "protocol.json").write_text(json.dumps(report, indent=2) + "\n")
    md = markdown(report)
    (out / "protocol.md").write_text(md)
    print(md)
    log(f"wrote {out}/model.pt, protocol.json, protocol.md in {report['meta']['seconds']:.0f}s")
    return report


def markdown(report: dict) -> str:
    """Our Rank-1/3/5 and mAP per test set beside the paper's ("-": not reported)."""
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    meta, s = report["meta"], report["settings"]
    lines = [
        f"Protocol {report['protocol']} (paper Table {report['table']}): train on "
        f"{report['train']}, student {s['student']}, alpha {s['alpha']:g}, beta {s['beta']:g}, "
        f"p {s['keep_ratio']:g}, colour jitter {'on' if s['color_jitter'] else 'off'}, "
        f"{s['epochs']} epochs, {meta['device']}"
        + (" (smoke run: the numbers mean nothing)" if meta["smoke"] else "") + ".",
        "",
        "| test set | queries | gallery | Rank-1 | Rank-3 | Rank-5 | mAP | paper Rank-1 "
        "| paper Rank-3 | paper mAP |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        p = r["paper"]
        lines.append(f"| {r['test']} | {r['num_queries']} | {r['num_gallery']} | "
                     f"{r['rank1']:.1f} | {r['rank3']:.1f} | {r['rank5']:.1f} | {r['mAP']:.1f} | "
                     f"{fmt(p['rank1'])} | {fmt(p['rank3'])} | {fmt(p['mAP'])} |")
    t = ", ".join(f"{k} Rank-1 {v['rank1']:.1f} mAP {v['mAP']:.1f}"
                  for k, v in report["teacher"].items())
    lines += ["", f"Teacher (dense): {t}. Total time {meta['seconds']:.0f} s.", "",
              "Settings not stated in the paper:", ""]
    lines += [f"- {n}" for n in report["not_in_paper"]] + [""]
    return "\n".join(lines)


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
