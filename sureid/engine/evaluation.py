"""Feature extraction and ReID evaluation of a model on query/gallery loaders."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from .._progress import Progress
from ..metrics.evaluate import evaluate
from ..metrics.rank import RankResult


@torch.inference_mode()
def extract_features(
    model: nn.Module,
    loader: Iterable,
    *,
    device: str | torch.device = "cpu",
    progress: bool = False,
    desc: str = "features",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run ``model`` in eval mode over ``loader`` of ``(images, pids, camids, ...)`` batches.

    Returns:
        ``(features (M, C) float32 on the CPU, pids (M,), camids (M,))``.
    """
    was_training = model.training
    model.eval()
    feats, pids, camids = [], [], []
    try:
        for batch in Progress(loader, desc=desc, enabled=progress):
            images = batch[0].to(device, non_blocking=True)
            feats.append(model(images).float().cpu())
            pids.append(torch.as_tensor(batch[1]))
            camids.append(torch.as_tensor(batch[2]))
    finally:
        model.train(was_training)
    if not feats:
        raise ValueError(f"{desc}: the loader yielded no batch")
    return torch.cat(feats), torch.cat(pids), torch.cat(camids)


def evaluate_model(
    model: nn.Module,
    query_loader: Iterable,
    gallery_loader: Iterable,
    *,
    metric: str = "euclidean",
    max_rank: int = 50,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> RankResult:
    """Market-1501-protocol CMC/mAP/mINP of ``model`` (see :func:`sureid.metrics.evaluate`)."""
    qf, qp, qc = extract_features(
        model, query_loader, device=device, progress=progress, desc="query"
    )
    gf, gp, gc = extract_features(
        model, gallery_loader, device=device, progress=progress, desc="gallery"
    )
    return evaluate(
        qf, gf, qp.numpy(), gp.numpy(), qc.numpy(), gc.numpy(), metric=metric, max_rank=max_rank
    )
