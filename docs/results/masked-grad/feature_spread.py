"""Spread of the pre-BN embedding of saved Table IV models on the training images (a diagnostic
record of the masked-attention gradient fix, docs/reproduce.md; not part of the test suite).

For each NAME=MODEL: the embedding of every training image on the inference path and on the
training path (Gumbel masks), its mean norm, mean pairwise Euclidean distance ("spread"), mean
per-channel standard deviation, and the batch-hard triplet loss (margin 0.3) with the
hardest-positive minus hardest-negative gap over 200 random P=16 x K=4 batches (numpy seed 0).

Usage::

    python docs/results/masked-grad/feature_spread.py DATA_DIR OUT.json NAME=MODEL ...
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import sureid
from sureid.inference import preprocess
from sureid.losses import TripletLoss

torch.set_num_threads(1)
data = Path(sys.argv[1]) / "bounding_box_train"
files = sorted(data.glob("*.jpg")) + sorted(data.glob("*.png"))
pids = np.array([int(f.name.split("_")[0]) for f in files])


def features(model, train_path: bool) -> torch.Tensor:
    """Pre-BN embeddings: the inference path (top-k) or the training path (Gumbel masks)."""
    out, backbone = [], model.backbone
    backbone.train(train_path)
    torch.manual_seed(0)
    with torch.no_grad():
        for i in range(0, len(files), 64):
            x = torch.stack([preprocess(Image.open(f).convert("RGB"), model.data_config)
                             for f in files[i:i + 64]])
            y = backbone(x)
            out.append(y.features if train_path else y)
    backbone.eval()
    return torch.cat(out)


def pk_triplet(f, rng, p=16, k=4, batches=200):
    triplet, ids = TripletLoss(margin=0.3), np.unique(pids)
    losses, gaps = [], []
    for _ in range(batches):
        idx = np.concatenate([
            rng.choice(np.flatnonzero(pids == c), k,
                       replace=len(np.flatnonzero(pids == c)) < k)
            for c in rng.choice(ids, p, replace=False)])
        fb, lb = f[idx], torch.as_tensor(pids[idx])
        losses.append(float(triplet(fb, lb)))
        d = torch.cdist(fb, fb)
        same = lb[:, None] == lb[None]
        eye = torch.eye(len(lb), dtype=torch.bool)
        hardest_pos = d.masked_fill(~same | eye, -1).amax(1)
        hardest_neg = d.masked_fill(same, float("inf")).amin(1)
        gaps.append((hardest_pos - hardest_neg).numpy())
    g = np.concatenate(gaps)
    return float(np.mean(losses)), float(g.mean()), float((g > -0.3).mean())


res = {}
for spec in sys.argv[3:]:
    name, path = spec.split("=", 1)
    model = sureid.load(path).eval()
    for path_name, train_path in (("inference", False), ("training", True)):
        f = features(model, train_path)
        norm = f.norm(dim=1)
        loss, gap, active = pk_triplet(f, np.random.default_rng(0))
        r = {"norm_mean": float(norm.mean()), "norm_std": float(norm.std()),
             "pdist_mean": float(torch.pdist(f).mean()), "pk_triplet": loss, "gap_mean": gap,
             "active": active, "per_dim_std_mean": float(f.std(0).mean())}
        res[f"{name} {path_name}"] = r
        print(f"{name:22s} {path_name:9s} " + " ".join(f"{k} {v:.4f}" for k, v in r.items()),
              flush=True)
Path(sys.argv[2]).write_text(json.dumps(res, indent=1))
