"""A table row turned into what it trains: the student ``ReIDModel`` and its Eq. 14 objective."""

from __future__ import annotations

from pathlib import Path

import torch

from ..hub import ModelFileError, load
from ..losses import NPKDLoss, RatioLoss, SUReIDLoss
from ..models import ReIDModel
from .presets import Preset, Row
from .recipe import Weights

__all__ = ["build_row", "load_teacher_model", "row_objective"]


def row_objective(row: Row, preset: Preset, *, student_dim: int, teacher_dim: int | None,
                  keep_ratios: list[float] | None) -> SUReIDLoss:
    """The Eq. 14 objective of ``row``: ID + triplet always; ``L_ratio`` toward
    ``keep_ratios`` when given (HTS with learned decision modules); NPKD (Eqs. 10-13, the row's
    direction, alignment and terms) when ``row.npkd``; the reweight head's terms when
    ``row.hts``. Weights ``α``, ``β``, ``λ_ratio`` and the KL weight come from the preset."""
    kd = None
    if row.npkd:
        kd = NPKDLoss(kl_weight=0.0 if row.kd_terms == "feature" else preset.kl_weight,
                      feature_weight=0.0 if row.kd_terms == "kl" else 1.0,
                      feature_reduction=row.feature_reduction,
                      align_corners=row.align_corners, align=row.align,
                      direction=row.direction, student_dim=student_dim,
                      teacher_dim=teacher_dim)
    learned = keep_ratios is not None
    return SUReIDLoss(
        alpha=preset.alpha, beta=preset.beta, ratio_weight=preset.ratio_weight, kd=kd,
        ratio=RatioLoss(keep_ratios) if learned else None,
        aux_weight=1.0 if row.hts else 0.0,
    )


def build_row(row: Row, preset: Preset, weights: Weights, num_classes: int, *,
              teacher_dim: int | None, keep_score: str = "decision", seed: int,
              device: torch.device | str = "cpu") -> tuple[ReIDModel, SUReIDLoss, float]:
    """``(model, objective, p)`` for one row and seed.

    The random state is reset to ``seed`` first, so every row of a seed starts from the same
    weights. HTS rows prune at ``p`` (the row's keep ratio, else the preset's) and carry the
    class-token reweight head; dense rows keep every token. ``L_ratio`` is on only where
    decision modules learn the selection (``keep_score="decision"``).
    """
    p = row.keep_ratio if row.keep_ratio is not None else preset.keep_ratio
    torch.manual_seed(seed)
    backbone = weights.build(preset.img_size, keep_ratio=p if row.hts else 1.0, prune=row.hts,
                             keep_score=keep_score, decision_init_keep=preset.decision_init_keep)
    learned = row.hts and keep_score == "decision"  # a ratio loss has work to do
    model = ReIDModel(backbone, num_classes, reweight=row.hts).to(device)
    objective = row_objective(row, preset, student_dim=backbone.embed_dim,
                              teacher_dim=teacher_dim,
                              keep_ratios=backbone.keep_ratios if learned else None)
    return model, objective.to(device), p


def load_teacher_model(path: Path, num_classes: int) -> ReIDModel | None:
    """The :class:`~sureid.ReIDModel` in ``path`` if it is a ``sureid.load`` model file (a
    shipped or exported teacher), None if it is a training checkpoint.

    Raises:
        ValueError: the model does not emit its BNNeck feature (``eval_feature="after"``) or
            does not classify ``num_classes`` identities: NPKD's logits are ``W f^t`` over the
            student's labels.
    """
    try:
        model = load(path)
    except ModelFileError:
        return None
    if model.eval_feature != "after" or model.num_classes != num_classes:
        raise ValueError(
            f"teacher {str(path)!r} must emit its BNNeck feature (eval_feature='after', got "
            f"{model.eval_feature!r}) and classify the {num_classes} training identities (got "
            f"{model.num_classes}): NPKD's logits are W f^t over the same labels")
    return model
