"""Training configs from the presets of :mod:`sureid.ablation`, and back.

:func:`from_preset` starts a :class:`~sureid.train.config.TrainConfig` from one of
:data:`sureid.ablation.PRESETS` (or any :class:`~sureid.ablation.Preset`); :func:`to_preset`
gives the :class:`~sureid.ablation.Preset` that the recipe helpers of
:mod:`sureid.ablation.recipe` read.

Example:
    >>> from_preset("smoke").student.embed_dim
    64
"""

from __future__ import annotations

from typing import Any

from ..ablation.presets import PRESETS, Arch, Preset
from .config import (
    DataSection,
    EvalSection,
    ObjectiveSection,
    ScheduleSection,
    StudentSection,
    TeacherSection,
    TrainConfig,
)

__all__ = ["from_preset", "to_preset"]


def from_preset(preset: str | Preset) -> TrainConfig:
    """The config of a :data:`sureid.ablation.PRESETS` entry (its full SUReID model: HTS,
    NPKD from a teacher fine-tuned first, NODA), or of a :class:`~sureid.ablation.Preset`.

    Shipped backbones (``Preset.pretrained``) become ``student.weights = "<name>_student"``
    (and ``_teacher``); ``timm_pretrained`` becomes ``weights = "timm"``; a shipped trained
    teacher (``Preset.trained_teacher``) becomes ``teacher.source = "checkpoint"``. The preset's
    ``seeds`` are not a training setting (``seed`` picks one).

    Raises:
        ValueError: an unknown preset name (the message lists the names).
    """
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"--preset must be one of {sorted(PRESETS)}, got {preset!r}")
        preset = PRESETS[preset]
    if not isinstance(preset, Preset):
        raise TypeError(f"preset must be a name or a sureid.ablation.Preset, got "
                        f"{type(preset).__name__}")
    p = preset

    def arch(a: Arch, role: str) -> dict[str, Any]:
        weights = ""
        if p.pretrained is not None and a.timm_name is None:
            weights = f"{p.pretrained}_{role}"
        elif a.timm_name is not None and p.timm_pretrained:
            weights = "timm"
        return {"timm_name": a.timm_name or "", "embed_dim": a.embed_dim, "depth": a.depth,
                "num_heads": a.num_heads, "patch_size": a.patch_size, "stem": a.stem,
                "weights": weights}

    return TrainConfig(
        data=DataSection(img_size=p.img_size, ids_per_batch=p.ids_per_batch,
                         instances=p.instances, padding=p.padding, erasing_p=p.erasing_p,
                         patch_p=p.patch_p, noda_p=p.noda_p),
        student=StudentSection(**arch(p.student, "student"), keep_ratio=p.keep_ratio,
                               decision_init_keep=p.decision_init_keep or 0.0),
        teacher=TeacherSection(**arch(p.teacher, "teacher"), epochs=p.teacher_epochs)
        if p.trained_teacher is None else  # a shipped trained teacher: nothing to fine-tune
        TeacherSection(**arch(p.teacher, "teacher") | {"weights": ""}, source="checkpoint",
                       checkpoint=p.trained_teacher, epochs=p.teacher_epochs),
        objective=ObjectiveSection(alpha=p.alpha, beta=p.beta, ratio_weight=p.ratio_weight,
                                   kl_weight=p.kl_weight),
        schedule=ScheduleSection(
            epochs=p.epochs, optimizer=p.optimizer, lr=p.lr, backbone_lr_mult=p.backbone_lr_mult,
            weight_decay=p.weight_decay, warmup_epochs=p.warmup_epochs,
            predictor_warmup_epochs=p.predictor_warmup_epochs, grad_clip=p.grad_clip or 0.0,
            max_steps_per_epoch=p.max_steps_per_epoch or 0),
        eval=EvalSection(metric=p.metric),
    )


def to_preset(cfg: TrainConfig) -> Preset:
    """The :class:`~sureid.ablation.Preset` the recipe helpers (``view_transforms``,
    ``train_loader``, ``make_optimizer``) read, with this config's values."""
    d, s, t, o, sc = cfg.data, cfg.student, cfg.teacher, cfg.objective, cfg.schedule
    return Preset(
        synthetic=None, img_size=d.img_size,
        student=Arch(s.embed_dim, s.depth, s.num_heads, s.patch_size, s.stem, s.timm_name or None),
        teacher=Arch(t.embed_dim, t.depth, t.num_heads, t.patch_size, t.stem, t.timm_name or None),
        epochs=sc.epochs, teacher_epochs=t.epochs, ids_per_batch=d.ids_per_batch,
        instances=d.instances, optimizer=sc.optimizer, lr=sc.lr,
        backbone_lr_mult=sc.backbone_lr_mult, weight_decay=sc.weight_decay,
        warmup_epochs=sc.warmup_epochs, predictor_warmup_epochs=sc.predictor_warmup_epochs,
        decision_init_keep=s.decision_init_keep or None, padding=d.padding,
        erasing_p=d.erasing_p, patch_p=d.patch_p, noda_p=d.noda_p, keep_ratio=s.keep_ratio,
        alpha=o.alpha, beta=o.beta, ratio_weight=o.ratio_weight, kl_weight=o.kl_weight,
        metric=cfg.eval.metric, grad_clip=sc.grad_clip or None,
        max_steps_per_epoch=sc.max_steps_per_epoch or None,
    )
