"""A tiny HTS ReID model trained a few steps on the synthetic smoke benchmark, saved with
``ReIDModel.save``: shared by the save/load, inference and CLI tests (built once per worker)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.utils.data import DataLoader

import sureid
from sureid.data import ImageDataset, RandomIdentitySampler, read_occluded_duke
from sureid.engine import Trainer
from sureid.hub import DataConfig
from sureid.inference import FeatureExtractor, preprocess
from sureid.models import ReIDModel

INPUT_SIZE = (64, 32)


def tiny_model(num_classes: int) -> ReIDModel:
    vit = sureid.VisionTransformer(
        img_size=INPUT_SIZE, patch_size=8, embed_dim=32, depth=4, num_heads=2
    )
    hts = sureid.HTSViT(vit, keep_ratio=0.7, prune_layers=(1, 2))
    return ReIDModel(hts, num_classes, reweight=True)


def _transform(img):
    return preprocess(img, DataConfig(INPUT_SIZE))


def smoke_run(base: Path) -> dict:
    """Data under ``base/data``, the model at ``base/model.pt``; returns paths and metrics."""
    done = base / "done.json"
    if done.is_file():
        return json.loads(done.read_text())
    base.mkdir(parents=True, exist_ok=True)
    sureid.make_synthetic_reid(base / "data", preset="smoke", progress=False)
    ds = read_occluded_duke(base / "data")
    torch.manual_seed(0)
    model = tiny_model(ds.num_train_pids)
    train = ImageDataset(ds.train, transform=_transform)
    sampler = RandomIdentitySampler(train.pids, batch_size=32, num_instances=4, seed=0)
    loader = DataLoader(train, batch_size=32, sampler=sampler)
    objective = sureid.SUReIDLoss(kd=None, ratio=sureid.RatioLoss(model.backbone.keep_ratios))
    opt = torch.optim.AdamW([*model.parameters(), *objective.parameters()], lr=1e-3)
    trainer = Trainer(model, objective, opt, log=lambda s: None)
    for step, batch in enumerate(loader):
        if step == 3:
            break
        trainer.train_step(batch[0], batch[1])
    model.eval()
    ext = FeatureExtractor(model)
    qf = ext([r.path for r in ds.query]).features
    gf = ext([r.path for r in ds.gallery]).features
    r = sureid.evaluate(qf, gf, [x.pid for x in ds.query], [x.pid for x in ds.gallery],
                        [x.camid for x in ds.query], [x.camid for x in ds.gallery])
    info = {"data": str(base / "data"), "model": str(base / "model.pt"),
            "rank1": r.rank1, "mAP": r.mAP}
    model.save(base / "model.pt", metadata={"rank1": r.rank1, "mAP": r.mAP})
    torch.save(qf, base / "query_feats.pt")
    done.write_text(json.dumps(info))
    return info
