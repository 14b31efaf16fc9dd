"""The data of a training run: the dataset, its training loaders and the validation.

A training batch is ``(images (B, 3, H, W), pids (B,), camids (B,))`` with ``B = P x K``
(``data.ids_per_batch`` x ``data.instances``), or a dual batch of two views when
``data.noda`` is on; validation embeds the query and gallery splits and scores them with the
Market-1501 protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..ablation.presets import Preset
from ..ablation.recipe import train_loader, view_transforms
from ..data import DATASETS, ImageDataset, ReIDDataset, build_dataset, detect_layout
from ..engine import evaluate_model
from ..transforms import OccluderBank, make_procedural_occluders
from .config import TrainConfig


def _read_dataset(cfg: TrainConfig, log: Callable[[str], None]) -> tuple[str, ReIDDataset]:
    """``(layout, dataset)`` of ``data.root`` (the layout detected when ``data.layout`` is
    ``'auto'``).

    Raises:
        FileNotFoundError: ``data.root`` is not a folder, or holds no known layout.
        ValueError: an unknown layout, or fewer than 2 training identities.
    """
    root = Path(cfg.data.root)
    if not root.is_dir():
        raise FileNotFoundError(f"data.root {str(root)!r} is not a folder")
    layout = detect_layout(root) if cfg.data.layout == "auto" else cfg.data.layout
    if layout not in DATASETS:
        raise ValueError(f"data.layout must be 'auto' or one of {sorted(DATASETS)}, got "
                         f"{layout!r}")
    dataset = build_dataset(layout, root)
    if dataset.num_train_pids < 2:
        raise ValueError(f"data.root {str(root)!r} ({layout}) has {dataset.num_train_pids} "
                         "training identities; training needs at least 2")
    log(f"data: {dataset} (layout {layout})")
    return layout, dataset


def _occluders(cfg: TrainConfig) -> OccluderBank:
    """The occluders NODA pastes: ``data.occluders``' crops, or procedural ones (seed 0)."""
    if cfg.data.occluders:
        return OccluderBank(cfg.data.occluders)
    return OccluderBank(make_procedural_occluders(cfg.data.num_occluders, seed=0))


def _train_loader(cfg: TrainConfig, preset: Preset, occluders: OccluderBank,
                  dataset: ReIDDataset, *, dual: bool) -> DataLoader:
    """A P x K loader of the training split, seeded by ``seed``; ``dual``: NODA dual batches.

    Each call makes its own views: RandomPatch keeps a pool of patches from earlier images,
    so a student must not start with the pool its teacher's training filled (or not).

    Raises:
        ValueError: the training split cannot fill a P x K batch (the message names P and K).
    """
    first, second, _, _ = view_transforms(preset, occluders, color_jitter=cfg.data.color_jitter)
    try:
        return train_loader(dataset.train, preset, first=first, second=second if dual else None,
                            workers=cfg.data.workers, seed=cfg.seed)
    except ValueError as err:
        raise ValueError(f"data (P = data.ids_per_batch, K = data.instances): {err}") from None


def _evaluator(cfg: TrainConfig, dataset: ReIDDataset, transform: Callable,
               device: torch.device) -> Callable[[nn.Module], dict[str, float]] | None:
    """A function scoring a model on the query/gallery split (None: the data has none).

    It returns ``rank1``, ``rank5``, ``rank10`` (those the gallery allows), ``mAP`` and
    ``mINP``, in percent, with ``eval.metric`` as the feature distance.
    """
    if not (dataset.query and dataset.gallery):
        return None

    def split(records):  # in order; its own generator keeps the global RNG untouched
        return DataLoader(ImageDataset(records, transform=transform), batch_size=64,
                          num_workers=cfg.data.workers, generator=torch.Generator())

    q_loader, g_loader = split(dataset.query), split(dataset.gallery)

    def evaluate(model: nn.Module) -> dict[str, float]:
        r = evaluate_model(model, q_loader, g_loader, metric=cfg.eval.metric, device=device)
        ranks = {f"rank{k}": 100 * r.rank(k) for k in (1, 5, 10) if k <= len(r.cmc)}
        return {**ranks, "mAP": 100 * r.mAP, "mINP": 100 * r.mINP}

    return evaluate
