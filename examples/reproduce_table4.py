"""Reproduce the SUReID ablations (Table IV, and Tables V-VII) end to end.

Trains a dense teacher once, then one student per table row, measures every row's
inference throughput in the same run (batch 32, interleaved), evaluates Rank-1 / mAP and
writes ``tableN.json`` / ``tableN.md`` into ``--output-dir``.

Data: ``--data-root`` points at a real Occluded-DukeMTMC folder; without it the built-in
synthetic occluded-ReID benchmark is generated (deterministically) under the output dir.

    python examples/reproduce_table4.py --preset quick            # README main job, CPU
    python examples/reproduce_table4.py --preset smoke            # < 3 min, used by the tests
    python examples/reproduce_table4.py --preset paper --data-root /data/Occluded_Duke \\
        --student deit_small_patch16_224 --teacher vit_base_patch16_224 --pretrained --device cuda
    python examples/reproduce_table4.py --preset quick --table 5   # keep-ratio sweep

Only sureid's public API is used; torchvision is needed for the augmentations
(``pip install 'sureid[vision]'``) and timm for ``--student/--teacher`` names.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader

import sureid
from sureid.data import ImageDataset, RandomIdentitySampler, read_occluded_duke
from sureid.engine import (
    ReIDModel,
    Trainer,
    cosine_with_warmup,
    evaluate_model,
    load_checkpoint,
    measure_throughput,
    save_checkpoint,
)
from sureid.viz import render_kept_tokens

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# The paper's Occluded-DukeMTMC numbers (RTX 2080Ti, DeiT-S student), for side-by-side tables.
PAPER = {
    4: {
        "vanilla": (1074, 57.6, 49.2),
        "+HTS": (1585, 55.6, 46.7),
        "+HTS+NPKD": (1585, 64.8, 53.2),
        "+HTS+NPKD+NODA": (1585, 65.8, 54.9),
    },
    5: {f"p={p}": v for p, v in zip((0.5, 0.6, 0.7, 0.8, 0.9), (
        (2269, 64.2, 53.2), (1843, 65.6, 54.2), (1585, 65.8, 54.9), (1392, 65.5, 55.3), (1279, 65.9, 55.7)))},
    6: {
        "S-T (Linear)": (None, 56.6, 46.7),
        "T-S (Linear)": (None, 57.2, 47.1),
        "S-T (Interpolation)": (None, 64.3, 53.3),
        "T-S (Interpolation)": (None, 65.8, 54.9),
    },
    7: {
        "Vanilla ViT": (None, 61.9, 54.0),
        "Vanilla ViT + NODA": (None, 61.1, 51.6),
        "SUViT w/o NODA": (None, 64.8, 53.2),
        "SUReID": (None, 65.8, 54.9),
    },
}


@dataclass(frozen=True)
class Arch:
    """A sureid ViT shape (or a timm model name)."""

    embed_dim: int = 384
    depth: int = 12
    num_heads: int = 6
    patch_size: int = 16
    stem: str = "patch"  # "conv": sureid's ConvStem, for training from scratch
    timm_name: str | None = None


@dataclass(frozen=True)
class Preset:
    synthetic: str | None  # synthetic preset name, or None when --data-root is required
    synthetic_overrides: tuple[tuple[str, object], ...] = ()  # e.g. more training ids
    img_size: tuple[int, int] = (256, 128)
    student: Arch = Arch()
    teacher: Arch = Arch(embed_dim=768, num_heads=12)
    epochs: int = 200
    teacher_epochs: int = 200
    ids_per_batch: int = 16  # P
    instances: int = 4  # K
    optimizer: str = "sgd"
    lr: float = 0.008
    weight_decay: float = 1e-4
    warmup_epochs: int = 1
    padding: int = 10
    erasing_p: float = 0.5  # view 1: random erasing probability
    patch_p: float = 0.5  # view 1: RandomPatch probability
    keep_ratio: float = 0.7
    alpha: float = 1.0
    beta: float = 1.0
    ratio_weight: float = 2.0
    kl_weight: float = 0.1
    metric: str = "euclidean"
    grad_clip: float | None = None
    max_steps_per_epoch: int | None = None
    throughput_rounds: int = 5


PRESETS = {
    # whole pipeline on a tiny dataset: a plumbing check, numbers mean nothing
    "smoke": Preset(
        synthetic="smoke", img_size=(64, 32),
        student=Arch(embed_dim=64, depth=12, num_heads=2, patch_size=8),
        teacher=Arch(embed_dim=96, depth=12, num_heads=3, patch_size=8),
        epochs=1, teacher_epochs=1, ids_per_batch=8, instances=4,
        optimizer="adamw", lr=1e-3, weight_decay=0.05, warmup_epochs=0, padding=4,
        max_steps_per_epoch=3, throughput_rounds=10,
    ),
    # README main job: minutes on a laptop CPU, from scratch (no pretrained weights here)
    "quick": Preset(
        synthetic="quick", synthetic_overrides=(("num_train_ids", 200),), img_size=(96, 48),
        student=Arch(embed_dim=64, depth=12, num_heads=2, patch_size=8, stem="conv"),
        teacher=Arch(embed_dim=96, depth=12, num_heads=3, patch_size=8, stem="conv"),
        epochs=9, teacher_epochs=16, optimizer="adamw", lr=2e-3, weight_decay=0.05,
        warmup_epochs=1, padding=4, erasing_p=0.25, patch_p=0.25, throughput_rounds=10,
    ),
    # the paper's settings (Sec. IV-B): DeiT-S student, ViT-B teacher, 256x128, 200 epochs
    "paper": Preset(
        synthetic="paper-like", img_size=(256, 128),
        student=Arch(embed_dim=384, depth=12, num_heads=6, patch_size=16),
        teacher=Arch(embed_dim=768, depth=12, num_heads=12, patch_size=16),
        epochs=200, teacher_epochs=200, optimizer="sgd", lr=0.008, warmup_epochs=5,
    ),
}


@dataclass(frozen=True)
class Row:
    """One table row: which SUReID components are on."""

    name: str
    hts: bool
    npkd: bool
    noda: bool
    keep_ratio: float | None = None  # None: the preset's
    align: str = "interpolate"
    direction: str = "t2s"


def table_rows(table: int, keep_ratio: float) -> list[Row]:
    if table == 4:
        return [
            Row("vanilla", hts=False, npkd=False, noda=False),
            Row("+HTS", hts=True, npkd=False, noda=False),
            Row("+HTS+NPKD", hts=True, npkd=True, noda=False),
            Row("+HTS+NPKD+NODA", hts=True, npkd=True, noda=True),
        ]
    if table == 5:
        return [Row(f"p={p}", True, True, True, keep_ratio=p) for p in (0.5, 0.6, 0.7, 0.8, 0.9)]
    if table == 6:
        return [
            Row("S-T (Linear)", True, True, True, align="linear", direction="s2t"),
            Row("T-S (Linear)", True, True, True, align="linear", direction="t2s"),
            Row("S-T (Interpolation)", True, True, True, direction="s2t"),
            Row("T-S (Interpolation)", True, True, True, direction="t2s"),
        ]
    if table == 7:
        return [
            Row("Vanilla ViT", False, False, False),
            Row("Vanilla ViT + NODA", False, False, True),
            Row("SUViT w/o NODA", True, True, False),
            Row("SUReID", True, True, True),
        ]
    raise ValueError(f"--table must be 4, 5, 6 or 7, got {table}")


# ----------------------------------------------------------------------------- building blocks


def build_backbone(arch: Arch, img_size, *, pretrained: bool, keep_ratio: float, prune: bool):
    if arch.timm_name is not None:
        import timm  # pip install 'sureid[timm]'

        vit = timm.create_model(arch.timm_name, pretrained=pretrained, img_size=img_size, num_classes=0)
        return sureid.HTSViT.from_timm(vit, keep_ratio=keep_ratio, prune=prune)
    vit = sureid.VisionTransformer(
        img_size=img_size, patch_size=arch.patch_size, embed_dim=arch.embed_dim,
        depth=arch.depth, num_heads=arch.num_heads, stem=arch.stem,
    )
    return sureid.HTSViT(vit, keep_ratio=keep_ratio, prune=prune)


def transforms(preset: Preset, occluders):
    from torchvision.transforms import v2  # pip install 'sureid[vision]'

    noda = sureid.NODA(occluders, p=0.5)
    first, second = sureid.paper_dual_views(
        noda, size=preset.img_size, padding=preset.padding, mean=MEAN, std=STD,
        random_patch=sureid.RandomPatch(p=preset.patch_p), erasing_p=preset.erasing_p,
    )
    test = v2.Compose([
        v2.ToImage(), v2.Resize(list(preset.img_size), antialias=True),
        v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(MEAN), list(STD)),
    ])
    return first, second, test


class Limit:
    """At most ``n`` batches of ``loader`` per epoch (smoke runs); keeps ``sampler``."""

    def __init__(self, loader, n):
        self.loader, self.n, self.sampler = loader, n, loader.sampler

    def __len__(self):
        return min(len(self.loader), self.n)

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if i >= self.n:
                break
            yield batch


def train_loader(ds, preset: Preset, *, dual: bool, first, second, workers: int, seed: int):
    from sureid.transforms import DualViewDataset, dual_collate

    sampler = RandomIdentitySampler(
        ds.pids, batch_size=preset.ids_per_batch * preset.instances, num_instances=preset.instances, seed=seed,
    )
    dataset = DualViewDataset(ds, first, second) if dual else ImageDataset(ds.records, transform=first)
    loader = DataLoader(
        dataset, batch_size=sampler.batch_size, sampler=sampler, num_workers=workers,
        collate_fn=dual_collate if dual else None, drop_last=True,
        persistent_workers=workers > 0, generator=torch.Generator().manual_seed(seed),
    )
    return Limit(loader, preset.max_steps_per_epoch) if preset.max_steps_per_epoch else loader


def make_optimizer(preset: Preset, params, steps_per_epoch: int, epochs: int):
    params = [p for p in params if p.requires_grad]
    if preset.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=preset.lr, momentum=0.9, weight_decay=preset.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=preset.lr, weight_decay=preset.weight_decay)
    total = max(1, steps_per_epoch * epochs)
    warmup = min(total - 1, steps_per_epoch * preset.warmup_epochs)
    return opt, cosine_with_warmup(opt, total_steps=total, warmup_steps=warmup)


def log(msg: str) -> None:
    print(msg, flush=True)


# ----------------------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--table", type=int, default=4, choices=(4, 5, 6, 7))
    p.add_argument("--data-root", type=Path, help="real Occluded-DukeMTMC folder (default: synthetic benchmark)")
    p.add_argument("--output-dir", type=Path, help="default: runs/table<N>-<preset>")
    p.add_argument("--occluders", type=Path, help="folder of real occluder crops for NODA (default: procedural)")
    p.add_argument("--student", help="timm model name for the student (e.g. deit_small_patch16_224)")
    p.add_argument("--teacher", help="timm model name for the teacher (e.g. vit_base_patch16_224)")
    p.add_argument("--pretrained", action="store_true", help="load timm pretrained weights (needs them cached)")
    p.add_argument("--teacher-checkpoint", type=Path, help="use this trained teacher instead of training one")
    p.add_argument("--epochs", type=int, help="override the preset's student epochs")
    p.add_argument("--teacher-epochs", type=int, help="override the preset's teacher epochs")
    p.add_argument("--keep-ratio", type=float, help="override the preset's p")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--throughput-threads", type=int, default=1,
                   help="CPU threads per forward for the table's throughput (default 1: per core, "
                        "as a CPU server runs one worker per core); all-core figures go in the meta file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def check_args(args, preset: Preset) -> None:
    """Every bad input is reported here, before any data is generated or model trained."""
    if args.data_root is not None:
        read_occluded_duke(args.data_root)  # raises FileNotFoundError/ValueError naming the folder
    elif preset.synthetic is None:
        raise SystemExit("error: this preset needs --data-root")
    if args.teacher_checkpoint is not None and not args.teacher_checkpoint.is_file():
        raise SystemExit(f"error: --teacher-checkpoint {str(args.teacher_checkpoint)!r} does not exist")
    if args.occluders is not None and not args.occluders.is_dir():
        raise SystemExit(f"error: --occluders {str(args.occluders)!r} is not a folder")
    if args.keep_ratio is not None and not 0 < args.keep_ratio <= 1:
        raise SystemExit(f"error: --keep-ratio must be in (0, 1], got {args.keep_ratio}")
    for name in ("epochs", "teacher_epochs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SystemExit(f"error: --{name.replace('_', '-')} must be >= 1, got {value}")
    if args.throughput_threads < 1:
        raise SystemExit(f"error: --throughput-threads must be >= 1, got {args.throughput_threads}")
    if args.workers < 0:
        raise SystemExit(f"error: --workers must be >= 0, got {args.workers}")


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    preset = PRESETS[args.preset]
    check_args(args, preset)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("teacher_epochs", args.teacher_epochs),
                                   ("keep_ratio", args.keep_ratio)) if v is not None}
    if args.student:
        overrides["student"] = Arch(timm_name=args.student)
    if args.teacher:
        overrides["teacher"] = Arch(timm_name=args.teacher)
    preset = replace(preset, **overrides)
    out = args.output_dir or Path("runs") / f"table{args.table}-{args.preset}"
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    progress = not args.no_progress
    torch.manual_seed(args.seed)
    t_start = time.perf_counter()

    # data -------------------------------------------------------------------------------
    if args.data_root is not None:
        root = args.data_root
    else:
        root = out / "data"
        summary = sureid.make_synthetic_reid(root, preset=preset.synthetic, seed=args.seed, progress=progress,
                                             **dict(preset.synthetic_overrides))
        log(f"synthetic {preset.synthetic!r} benchmark at {root}: {summary.num_images} images")
    data = read_occluded_duke(root)
    log(f"dataset: {data}")
    if args.occluders is not None:
        occluders = sureid.OccluderBank(args.occluders)
    else:
        occ_dir = out / "occluders"
        if not occ_dir.is_dir():
            sureid.save_occluders(sureid.make_procedural_occluders(200, seed=args.seed), occ_dir)
        occluders = sureid.OccluderBank(occ_dir)
    first, second, test_tf = transforms(preset, occluders)
    train_ds = ImageDataset(data.train)
    eval_loader = lambda recs: DataLoader(  # noqa: E731
        ImageDataset(recs, transform=test_tf), batch_size=128, num_workers=args.workers)
    query_loader, gallery_loader = eval_loader(data.query), eval_loader(data.gallery)
    num_classes = data.num_train_pids

    def evaluate(model):
        r = evaluate_model(model, query_loader, gallery_loader, metric=preset.metric, device=device)
        return {"rank1": 100 * r.rank1, "mAP": 100 * r.mAP}

    def fit(name, model, objective, teacher, *, dual, epochs):
        loader = train_loader(train_ds, preset, dual=dual, first=first, second=second,
                              workers=args.workers, seed=args.seed)
        opt, sched = make_optimizer(preset, [*model.parameters(), *objective.parameters()], len(loader), epochs)
        trainer = Trainer(model.to(device), objective, opt, scheduler=sched, teacher=teacher,
                          device=device, grad_clip=preset.grad_clip, log=lambda s: log(f"[{name}] {s}"))
        trainer.fit(loader, epochs=epochs, eval_fn=evaluate, eval_every=max(1, epochs // 2),
                    checkpoint_path=out / "checkpoints" / f"{slug(name)}.pt", progress=progress)
        return trainer.state.history[-1]

    # teacher: dense, larger, trained once -----------------------------------------------
    # eval_feature="after": the frozen teacher emits its BNNeck feature, the feature its
    # classifier W was trained on, so g^t = W f^t are the teacher's real logits (with the
    # pre-BN feature they would be meaningless); see docs/reproduce.md
    teacher_net = ReIDModel(
        build_backbone(preset.teacher, preset.img_size, pretrained=args.pretrained, keep_ratio=1.0, prune=False),
        num_classes, eval_feature="after",
    ).to(device)
    teacher_path = args.teacher_checkpoint or out / "teacher.pt"
    teacher_cfg = json.dumps(dataclasses.asdict(preset.teacher) | {"epochs": preset.teacher_epochs,
                             "img_size": list(preset.img_size), "seed": args.seed, "data": str(root)}, sort_keys=True)
    state = load_checkpoint(teacher_path) if teacher_path.is_file() else None
    if state is not None and (args.teacher_checkpoint is not None or state.get("config") == teacher_cfg):
        teacher_net.load_state_dict(state["model"])
        teacher_metrics = state.get("metrics", {})
        log(f"teacher loaded from {teacher_path}: {teacher_metrics}")
    else:
        torch.manual_seed(args.seed)
        objective = sureid.SUReIDLoss(use_kd=False, use_ratio=False, use_reweight=False)
        teacher_metrics = fit("teacher", teacher_net, objective, None, dual=False, epochs=preset.teacher_epochs)
        save_checkpoint({"model": teacher_net.state_dict(), "config": teacher_cfg,
                         "metrics": {k: float(v) for k, v in teacher_metrics.items()}}, teacher_path)
    teacher = sureid.FrozenTeacher(teacher_net, teacher_net.classifier_weight.detach()).to(device)

    # table rows ---------------------------------------------------------------------------
    rows, models = [], {}
    for row in table_rows(args.table, preset.keep_ratio):
        p = row.keep_ratio if row.keep_ratio is not None else preset.keep_ratio
        torch.manual_seed(args.seed)  # every row starts from the same initial weights
        backbone = build_backbone(preset.student, preset.img_size, pretrained=args.pretrained,
                                  keep_ratio=p if row.hts else 1.0, prune=row.hts)
        model = ReIDModel(backbone, num_classes, reweight=row.hts).to(device)
        kd = None
        if row.npkd:
            kd = sureid.NPKDLoss(kl_weight=preset.kl_weight, align=row.align, direction=row.direction,
                                 student_dim=backbone.embed_dim, teacher_dim=teacher_net.embed_dim)
        objective = sureid.SUReIDLoss(
            alpha=preset.alpha, beta=preset.beta, ratio_weight=preset.ratio_weight, kd=kd,
            ratio=sureid.RatioLoss(backbone.keep_ratios) if row.hts else None,
            use_kd=row.npkd, use_ratio=row.hts, use_reweight=row.hts,
        ).to(device)
        log(f"== row {row.name}: HTS={row.hts} (p={p if row.hts else 1.0}) NPKD={row.npkd} NODA={row.noda}")
        metrics = fit(row.name, model, objective, teacher if row.npkd else None, dual=row.noda, epochs=preset.epochs)
        models[row.name] = model.backbone
        rows.append({"name": row.name, "hts": row.hts, "npkd": row.npkd, "noda": row.noda,
                     "keep_ratio": p if row.hts else 1.0,
                     "rank1": round(metrics["rank1"], 2), "mAP": round(metrics["mAP"], 2)})

    # throughput of every row, interleaved in one measurement -------------------------------
    cpu = device.type == "cpu"
    threads = args.throughput_threads if cpu else None
    log(f"measuring throughput (batch 32, interleaved{f', {threads} thread(s)' if cpu else ''})...")
    shape = (3, *preset.img_size)
    tput = measure_throughput(models, shape, batch_size=32, rounds=preset.throughput_rounds,
                              device=device, num_threads=threads)
    for r in rows:
        r["throughput"] = round(tput[r["name"]], 1)
    all_cores = None
    if cpu and threads != torch.get_num_threads():  # the all-core figure too, for the record
        all_cores = measure_throughput(models, shape, batch_size=32, rounds=preset.throughput_rounds, device=device)
        all_cores = {"threads": torch.get_num_threads(), **{k: round(v, 1) for k, v in all_cores.items()}}
    rows = [{"name": r["name"], "throughput": r["throughput"], "rank1": r["rank1"], "mAP": r["mAP"],
             **{k: r[k] for k in ("hts", "npkd", "noda", "keep_ratio")}} for r in rows]

    # outputs -------------------------------------------------------------------------------
    meta = {"preset": args.preset, "table": args.table, "data": "real" if args.data_root else "synthetic",
            "device": str(device), "throughput_threads": threads, "throughput_all_cores": all_cores,
            "teacher": teacher_metrics, "seconds": round(time.perf_counter() - t_start, 1)}
    (out / f"table{args.table}.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / f"table{args.table}_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    md = markdown_table(args.table, rows, meta)
    (out / f"table{args.table}.md").write_text(md)
    print(md)
    last = table_rows(args.table, preset.keep_ratio)[-1].name
    render_fig6(models[last], query_loader, out / "fig6_kept_tokens.png", preset)
    log(f"wrote {out}/table{args.table}.json, table{args.table}.md, fig6_kept_tokens.png "
        f"in {meta['seconds']:.0f}s")
    return rows


def markdown_table(table: int, rows: list[dict], meta: dict) -> str:
    base = rows[0]["throughput"]
    label = "synthetic occluded-ReID benchmark" if meta["data"] == "synthetic" else "Occluded-DukeMTMC"
    threads = meta.get("throughput_threads")
    per = {None: "", 1: ", throughput per core (1 thread)"}.get(threads, f", throughput with {threads} threads")
    lines = [
        f"Table {table} reproduction ({label}, preset {meta['preset']!r}, {meta['device']}{per}); "
        "paper values: Occluded-DukeMTMC on an RTX 2080Ti.",
        "",
        "| row | throughput (img/s) | speed-up | Rank-1 | mAP | paper throughput | paper Rank-1 | paper mAP |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        pt, pr, pm = PAPER.get(table, {}).get(r["name"], (None, None, None))
        fmt = lambda v: "-" if v is None else f"{v}"  # noqa: E731
        lines.append(f"| {r['name']} | {r['throughput']:.0f} | {r['throughput'] / base:.2f}x | "
                     f"{r['rank1']:.1f} | {r['mAP']:.1f} | {fmt(pt)} | {fmt(pr)} | {fmt(pm)} |")
    allc = meta.get("throughput_all_cores")
    if allc:
        ups = ", ".join(f"{r['name']} {allc[r['name']] / allc[rows[0]['name']]:.2f}x" for r in rows[1:])
        lines += ["", f"With all {allc['threads']} threads on one forward: {allc[rows[0]['name']]:.0f} img/s "
                  f"for {rows[0]['name']}; speed-ups {ups}."]
    lines += ["", f"Teacher: {json.dumps({k: round(v, 2) for k, v in meta['teacher'].items() if k in ('rank1', 'mAP')})}; "
              f"total time {meta['seconds']:.0f}s.", ""]
    return "\n".join(lines)


@torch.inference_mode()
def render_fig6(backbone, query_loader, path: Path, preset: Preset, n: int = 8) -> None:
    """Fig. 6: kept patches of the last row's model on the first query images."""
    images = next(iter(query_loader))[0][:n]
    backbone.eval()
    _, kept = backbone.forward_features(images.to(next(backbone.parameters()).device), return_indices=True)
    if not kept:
        return
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    raw = ((images * std + mean).clamp(0, 1) * 255).round().to(torch.uint8)
    ps = backbone.backbone.patch_embed.patch_size
    render_kept_tokens(raw, [k.cpu() for k in kept], tuple(ps) if not isinstance(ps, int) else (ps, ps), path)


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
