"""The networks and objectives a training config describes.

The student is an HTS :class:`~sureid.models.ReIDModel` (dense when ``student.keep_ratio`` is
1); the teacher is a dense one trained here (:func:`_teacher_net`) or a trained one loaded
and frozen (:func:`_loaded_teacher`); :func:`_objective` is the student's Eq. 14 objective
and :func:`_teacher_objective` the teacher's ID + triplet loss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from .._optional import require
from ..engine import load_checkpoint
from ..hub import FORMAT as MODEL_FORMAT
from ..hub import load
from ..losses import NPKDLoss, RatioLoss, SUReIDLoss
from ..losses.reid import CrossEntropyLabelSmooth, TripletLoss
from ..models import FrozenTeacher, HTSViT, ReIDModel, VisionTransformer, create_timm_model
from ..models.pretrained import load_pretrained
from .config import StudentSection, TeacherSection, TrainConfig
from .folders import _weights_file


def _vit(sec: StudentSection | TeacherSection, key: str, img_size: tuple[int, int],
         log: Callable[[str], None]) -> nn.Module:
    """The plain ViT of a student/teacher section, with its starting weights."""
    if sec.timm_name:
        timm = require("timm", purpose=f"{key}.timm_name {sec.timm_name!r}")
        if sec.timm_name not in timm.list_models(pretrained=sec.weights == "timm"):
            raise ValueError(f"{key}.timm_name {sec.timm_name!r} is not a timm model"
                             + (" with pretrained weights" if sec.weights == "timm" else ""))
        try:
            vit = create_timm_model(sec.timm_name, pretrained=sec.weights == "timm",
                                    img_size=img_size, num_classes=0)
        except Exception as err:  # a hub or download failure comes in many kinds
            raise ValueError(
                f"{key}.weights = 'timm': could not get timm's weights for {sec.timm_name!r} "
                f"({type(err).__name__}: {err}); download them where a hub is reachable and "
                f"set {key}.weights to the file") from None
    else:
        vit = VisionTransformer(img_size=img_size, patch_size=sec.patch_size,
                                embed_dim=sec.embed_dim, depth=sec.depth,
                                num_heads=sec.num_heads, stem=sec.stem)
    path = _weights_file(f"{key}.weights", sec.weights)
    if path is not None:
        log(f"{key} weights from {path}: {load_pretrained(vit, path)}")
    return vit


def _hts(vit: nn.Module, timm: bool, **kwargs: Any) -> HTSViT:
    """``vit`` wrapped as an :class:`~sureid.models.HTSViT` (a timm ViT through its adapter)."""
    return HTSViT.from_timm(vit, **kwargs) if timm else HTSViT(vit, **kwargs)


def _student(cfg: TrainConfig, num_classes: int, log: Callable[[str], None]) -> ReIDModel:
    """The student of ``[student]``: HTS with the reweight head when ``keep_ratio < 1``."""
    s = cfg.student
    hts = s.keep_ratio < 1.0
    backbone = _hts(_vit(s, "student", cfg.data.img_size, log), bool(s.timm_name),
                    keep_ratio=s.keep_ratio if hts else 1.0, prune=hts,
                    prune_layers=s.prune_layers, keep_score=s.keep_score,
                    decision_init_keep=s.decision_init_keep or None)
    return ReIDModel(backbone, num_classes, reweight=hts and s.reweight)


def _teacher_net(cfg: TrainConfig, num_classes: int, log: Callable[[str], None]
                 ) -> ReIDModel:
    """A dense teacher whose eval forward is its BNNeck feature (docs/objectives.md)."""
    t = cfg.teacher
    vit = _vit(t, "teacher", cfg.data.img_size, log)
    depth = len(vit.blocks)
    # the examples' teachers' stages, so their checkpoints load here
    layers = tuple(i for i in (3, 6, 9) if i < depth) or (0,)
    backbone = _hts(vit, bool(t.timm_name), keep_ratio=1.0, prune=False, prune_layers=layers)
    return ReIDModel(backbone, num_classes, eval_feature="after")


def _loaded_teacher(cfg: TrainConfig, num_classes: int, log: Callable[[str], None]
                    ) -> FrozenTeacher:
    """The trained teacher of ``teacher.checkpoint``, frozen, emitting its BNNeck feature."""
    key = "teacher.checkpoint"
    path = _weights_file(key, cfg.teacher.checkpoint)  # a file, or a shipped name
    state = load_checkpoint(path)
    if isinstance(state, dict) and state.get("format") == MODEL_FORMAT:
        model = load(path)
        net: nn.Module = nn.Sequential(model.backbone, model.neck.bn)  # the BN feature
    elif isinstance(state, dict) and isinstance(state.get("model"), Mapping):
        model = _teacher_net(cfg, num_classes, log)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as err:
            raise ValueError(f"{key} {str(path)!r} does not fit the [teacher] architecture: "
                             f"{' '.join(str(err).split())[:400]}") from None
        net = model
    else:
        raise ValueError(f"{key} {str(path)!r} is neither a sureid model file "
                         "(ReIDModel.save) nor a Trainer checkpoint with a 'model' entry")
    if model.num_classes != num_classes:
        raise ValueError(f"{key} {str(path)!r} was trained on {model.num_classes} identities, "
                         f"the training set has {num_classes}: NPKD's KL needs the same ones")
    log(f"teacher loaded from {path}")
    return FrozenTeacher(net, model.classifier_weight.detach())


def _objective(cfg: TrainConfig, model: ReIDModel, teacher_dim: int | None) -> SUReIDLoss:
    """The student's objective (Eq. 14): NPKD when there is a teacher of feature width
    ``teacher_dim``, the ratio loss when decision modules learn which tokens to keep."""
    o, s = cfg.objective, cfg.student
    hts = model.backbone.prune
    learns = hts and s.keep_score == "decision"  # the ratio loss has decisions to train
    kd = None
    if teacher_dim is not None:
        kd = NPKDLoss(kl_weight=o.kl_weight, temperature=o.temperature, align=o.align,
                      direction=o.direction, student_dim=model.embed_dim,
                      teacher_dim=teacher_dim, align_corners=o.align_corners,
                      feature_weight=o.feature_weight, feature_reduction=o.feature_reduction)
    return SUReIDLoss(
        alpha=o.alpha, beta=o.beta, ratio_weight=o.ratio_weight, kd=kd,
        id_loss=CrossEntropyLabelSmooth(epsilon=o.label_smoothing),
        triplet=TripletLoss(margin=o.margin),
        ratio=RatioLoss(model.backbone.keep_ratios) if learns else None,
        aux_weight=o.aux_weight if model.reweight is not None else 0.0,
    )


def _teacher_objective(cfg: TrainConfig) -> SUReIDLoss:
    """The ID + triplet loss a teacher trained here learns with (no KD, ratio or reweight)."""
    return SUReIDLoss(
        kd=None, ratio=None, aux_weight=0,
        id_loss=CrossEntropyLabelSmooth(epsilon=cfg.objective.label_smoothing),
        triplet=TripletLoss(margin=cfg.objective.margin))


def _feature_dim(teacher: FrozenTeacher, img_size: tuple[int, int]) -> int:
    """The width ``C`` of the teacher's ``(B, C)`` features: its classifier's input width, or
    that of one forward pass on a zero image ``(1, 3, H, W)``."""
    weight = teacher.classifier_weight
    if weight is not None:
        return int(weight.shape[1])
    device = next(teacher.parameters()).device
    return int(teacher(torch.zeros(1, 3, *img_size, device=device))[0].shape[1])
