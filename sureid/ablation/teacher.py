"""The dense teacher of the reproduction scripts: fine-tuned once per output folder, resumed
from its checkpoint, or refused when the checkpoint was trained under other settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ..engine import check_settings, load_checkpoint, normalize_settings, save_checkpoint
from ..losses import SUReIDLoss
from ..models import ReIDModel

__all__ = ["TEACHER_FIELDS", "fine_tune_teacher", "teacher_settings"]

# the preset fields a teacher's training depends on: its checkpoint records exactly these
TEACHER_FIELDS = ("teacher", "teacher_epochs", "img_size", "optimizer", "lr", "weight_decay",
                  "warmup_epochs", "ids_per_batch", "instances", "padding", "erasing_p",
                  "patch_p", "max_steps_per_epoch", "backbone_lr_mult")


def teacher_settings(common: dict, *, seed: int, weights) -> dict:
    """The settings that identify a fine-tuned teacher: ``common`` (whose ``"preset"`` is the
    preset as a dict) narrowed to :data:`TEACHER_FIELDS`, the seed and the starting weights."""
    cfg = {**common, "role": "teacher", "seed": seed, "weights": weights.describe()}
    cfg["preset"] = {k: cfg["preset"][k] for k in TEACHER_FIELDS}
    return normalize_settings(cfg)


def fine_tune_teacher(
    weights, img_size, num_classes: int, *, path: Path, settings: dict, trusted: bool,
    fit: Callable[[ReIDModel, SUReIDLoss], None], device, seed: int,
    log: Callable[[str], None],
) -> ReIDModel:
    """The dense teacher (``eval_feature="after"``: it emits the BNNeck feature its classifier
    ``W`` was trained on, so ``g^t = W f^t`` are its real logits; docs/reproduce.md).

    Loaded from ``path`` when it exists (its settings must equal ``settings`` unless
    ``trusted``: a checkpoint the user named), else built from ``weights``, trained with
    ``fit(model, objective)`` (ID + triplet only) and saved to ``path``.
    """
    torch.manual_seed(seed)
    net = ReIDModel(weights.build(img_size), num_classes, eval_feature="after").to(device)
    state = load_checkpoint(path) if path.is_file() else None
    if state is not None and not trusted:  # ours: same settings or refuse
        check_settings(state.get("settings"), settings, path=path)
    if state is not None:
        net.load_state_dict(state["model"])
        log(f"teacher loaded from {path}")
    else:
        fit(net, SUReIDLoss(kd=None, ratio=None, aux_weight=0))
        save_checkpoint({"model": net.state_dict(), "settings": settings}, path)
    return net
