"""Train SUReID with DistributedDataParallel under torchrun (gloo on CPU, nccl on GPUs).

One process per device; every rank builds the same model, reads the same dataset and gets
its own disjoint P x K batches from ``RandomIdentitySampler(rank=, world_size=)``. Only rank
0 logs, evaluates and writes ``OUT/last.pt`` (a training checkpoint: re-running the same
command resumes from it) and, at the end, ``OUT/model.pt``: the model file to deploy
(``sureid.load``, ``sureid info``, ``sureid evaluate``, ``sureid export``). The frozen NPKD
teacher runs on every rank without gradient.

CPU smoke run (synthetic data, tiny ViT, a few steps)::

    torchrun --standalone --nproc_per_node 2 examples/train_ddp.py \
        --data data/synth-smoke --out runs/ddp --arch test --img-size 32 16 --epochs 2

Several GPUs (paper-size model; see docs/distributed.md)::

    torchrun --standalone --nproc_per_node 4 examples/train_ddp.py --data data/occluded_duke \
        --dataset occluded_duke --arch deit_small --batch-size 16 --epochs 120 --sync-bn \
        --teacher-checkpoint runs/teacher/last.pt
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

import sureid
from sureid.engine import (
    Trainer,
    barrier,
    broadcast_module,
    cleanup,
    cosine_with_warmup,
    evaluate_model,
    init_distributed,
    load_checkpoint,
    sync_gradients,
    wrap_ddp,
)
from sureid.models import ReIDModel

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


class ToTensor:
    """PIL image -> normalised ``(3, H, W)`` tensor, optionally flipped (torch RNG)."""

    def __init__(self, size: tuple[int, int], flip: bool) -> None:
        self.size, self.flip = size, flip

    def __call__(self, img: Image.Image) -> torch.Tensor:
        img = img.resize((self.size[1], self.size[0]), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(img, dtype=np.float32).copy()).permute(2, 0, 1) / 255
        if self.flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return (x - MEAN) / STD


def build_backbone(arch: str, img_size: tuple[int, int], *, prune: bool) -> sureid.HTSViT:
    if arch == "test":
        vit = sureid.VisionTransformer(img_size=img_size, patch_size=8, embed_dim=32, depth=4,
                                       num_heads=2)
        layers = (1, 3)
    else:
        make = {"deit_tiny": sureid.deit_tiny, "deit_small": sureid.deit_small}[arch]
        vit = make(img_size=img_size)
        layers = (3, 6, 9)
    return sureid.HTSViT(vit, keep_ratio=0.7, prune_layers=layers, prune=prune)


def build_teacher(args, num_classes: int, device: torch.device, log) -> sureid.FrozenTeacher:
    """A dense (unpruned) trained ReIDModel, frozen, on this rank's device.

    The recommended teacher (docs/objectives.md): the ReIDModel itself with
    ``eval_feature="after"``, so ``f^t`` is its BN feature and ``g^t = W^t f^t`` are the logits
    its classifier was trained to give. Wrapping the raw backbone instead collapses NPKD.
    """
    net = ReIDModel(build_backbone(args.arch, args.img_size, prune=False), num_classes,
                    eval_feature="after")
    if args.teacher_checkpoint:
        net.load_state_dict(load_checkpoint(args.teacher_checkpoint)["model"])
    else:
        log("note: no --teacher-checkpoint, the NPKD teacher is randomly initialised (demo only)")
    return sureid.FrozenTeacher(net, net.classifier_weight.detach()).to(device)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True,
                   help="dataset root (a synthetic smoke set is written there if missing)")
    p.add_argument("--dataset", default="occluded_duke")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--arch", default="test", choices=["test", "deit_tiny", "deit_small"])
    p.add_argument("--img-size", type=int, nargs=2, default=(256, 128), metavar=("H", "W"))
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16, help="per process")
    p.add_argument("--num-instances", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.008, help="for the global batch")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--no-kd", action="store_true")
    p.add_argument("--teacher-checkpoint", type=Path)
    p.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm for the BNNeck (CUDA)")
    p.add_argument("--eval-every", type=int, default=0)
    p.add_argument("--amp", choices=["bf16", "fp16"], default=None,
                   help="mixed precision (torch.autocast; fp16 adds a GradScaler)")
    p.add_argument("--timeout", type=float, default=600.0, help="collective timeout, seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-rank-weights", action="store_true",
                   help="every rank writes its parameters to OUT/rank{r}_weights.pt (checks)")
    args = p.parse_args(argv)
    args.img_size = tuple(args.img_size)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    info = init_distributed(timeout_s=args.timeout)
    log = print if info.is_main else (lambda *a, **k: None)
    # Same seed on every rank: identical initialisation, and every rank's RNG state equals
    # the one rank 0 checkpoints, so a resumed run continues exactly (see docs/distributed.md).
    torch.manual_seed(args.seed)
    try:
        if info.is_main and not args.data.exists():
            sureid.make_synthetic_reid(args.data, preset="smoke", progress=False)
        barrier()  # the other ranks read what rank 0 wrote
        ds = sureid.build_dataset(args.dataset, args.data)
        train = sureid.ImageDataset(ds.train, transform=ToTensor(args.img_size, flip=True))
        sampler = sureid.RandomIdentitySampler(
            train.pids, batch_size=args.batch_size, num_instances=args.num_instances,
            seed=args.seed, rank=info.rank, world_size=info.world_size,
        )
        loader = DataLoader(train, batch_size=sampler.batch_size, sampler=sampler,
                            num_workers=args.workers, pin_memory=info.device.type == "cuda")

        model = ReIDModel(build_backbone(args.arch, args.img_size, prune=True), ds.num_train_pids,
                          reweight=True).to(info.device)
        teacher = None if args.no_kd else build_teacher(args, ds.num_train_pids, info.device, log)
        objective = sureid.SUReIDLoss(
            ratio=sureid.RatioLoss(model.backbone.keep_ratios),
            kd=None if args.no_kd else "default",
        ).to(info.device)
        if info.distributed:
            ddp = wrap_ddp(model, objective=objective, sync_batchnorm=args.sync_bn)
            broadcast_module(objective)  # objective parameters (if any) live outside DDP
            sync_gradients(objective)
        else:
            ddp = model
        params = [p for p in [*model.parameters(), *objective.parameters()] if p.requires_grad]
        opt = torch.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=1e-4)
        total = args.epochs * math.ceil(len(sampler) / sampler.batch_size)
        sched = cosine_with_warmup(opt, total_steps=total, warmup_steps=max(1, total // 20))
        trainer = Trainer(ddp, objective, opt, scheduler=sched, teacher=teacher,
                          device=info.device, is_main=info.is_main, log=log, amp=args.amp)

        def eval_fn(net):  # rank 0 only (the Trainer calls it on the main process)
            tf = ToTensor(args.img_size, flip=False)
            q = DataLoader(sureid.ImageDataset(ds.query, transform=tf), batch_size=64)
            g = DataLoader(sureid.ImageDataset(ds.gallery, transform=tf), batch_size=64)
            r = evaluate_model(net, q, g, device=info.device)
            return {"rank1": r.rank1, "mAP": r.mAP}

        log(f"world_size {info.world_size} backend {info.backend} device {info.device}; "
            f"{len(sampler) // sampler.batch_size} steps/epoch of {sampler.batch_size} per rank")
        trainer.fit(loader, epochs=args.epochs, eval_fn=eval_fn, eval_every=args.eval_every,
                    checkpoint_path=args.out / "last.pt", progress=False)
        if info.is_main:  # the deployable model: weights, architecture and preprocessing
            data = sureid.DataConfig(args.img_size, tuple(MEAN.flatten().tolist()),
                                     tuple(STD.flatten().tolist()))
            path = model.save(args.out / "model.pt", data_config=data,
                              metadata={"example": "train_ddp.py", "epochs": args.epochs,
                                        "world_size": info.world_size, "seed": args.seed})
            log(f"wrote {path} (sureid.load) beside the checkpoint {args.out / 'last.pt'}")
        if args.save_rank_weights:
            args.out.mkdir(parents=True, exist_ok=True)
            weights = {k: v.detach().cpu() for k, v in trainer.module.named_parameters()}
            torch.save(weights, args.out / f"rank{info.rank}_weights.pt")
        barrier()
    finally:
        cleanup()


if __name__ == "__main__":
    main()
