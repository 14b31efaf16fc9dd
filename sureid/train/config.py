"""The training configuration of ``sureid train``: its sections, defaults and checks.

One :class:`TrainConfig` describes a whole run: ``data``, ``student``, ``teacher``,
``objective``, ``schedule``, ``eval`` and ``log`` sections plus the top-level ``seed`` and
``device``. The defaults are those of :class:`sureid.ablation.Preset` (the paper's recipe with
a sureid ViT-S student). :func:`to_dict` and :func:`merge` turn a config into nested plain
values and back; :mod:`sureid.train.presets` starts one from a preset and
:mod:`sureid.train.files` reads and writes config files.

"Not set" is spelled without ``None`` (TOML has no null): ``""`` for a string and ``0`` for
``schedule.grad_clip``, ``schedule.max_steps_per_epoch`` and ``student.decision_init_keep``.

Example:
    >>> cfg = merge(TrainConfig(), {"schedule": {"epochs": 2}})
    >>> cfg.schedule.epochs, cfg.student.embed_dim
    (2, 384)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .fields import _checked, _opt

__all__ = [
    "DataSection",
    "EvalSection",
    "LogSection",
    "ObjectiveSection",
    "ScheduleSection",
    "StudentSection",
    "TeacherSection",
    "TrainConfig",
    "merge",
    "to_dict",
]

_STEMS = ("patch", "conv")


@dataclass(frozen=True)
class DataSection:
    """Where the images are and how training batches are made (Sec. III-C, IV-B)."""

    root: str = _opt("", "dataset folder (or --data-root); relative paths are relative to the "
                     "current folder")
    layout: str = _opt("auto", "folder layout: 'auto' (detected), or a reader of "
                       "sureid.data.DATASETS: market1501, dukemtmc, occluded_duke, "
                       "occluded_reid, partial_reid, custom")
    img_size: tuple[int, int] = _opt((256, 128), "input size [H, W]", low=1, length=2)
    ids_per_batch: int = _opt(16, "P: identities per batch", low=1)
    instances: int = _opt(4, "K: images per identity in a batch", low=1)
    workers: int = _opt(2, "DataLoader worker processes (part of the run: results depend on "
                        "it)", low=0)
    padding: int = _opt(10, "pad-and-crop augmentation, pixels", low=0)
    erasing_p: float = _opt(0.5, "view 1: random erasing probability", low=0.0, high=1.0)
    patch_p: float = _opt(0.5, "view 1: RandomPatch probability", low=0.0, high=1.0)
    color_jitter: bool = _opt(False, "colour jitter on the training views (Table II's "
                              "protocol)")
    noda: bool = _opt(True, "dual batch with NODA occluders on view 2 (Sec. III-C); false: one "
                      "view")
    noda_p: float = _opt(0.5, "probability that NODA pastes an occluder", low=0.0, high=1.0)
    occluders: str = _opt("", "folder of RGBA occluder crops; '': procedural ones "
                          "(make_procedural_occluders, seed 0)")
    num_occluders: int = _opt(200, "how many procedural occluders", low=1)


@dataclass(frozen=True)
class StudentSection:
    """The HTS student: a timm ViT or a sureid ViT shape, its start and its token budget."""

    timm_name: str = _opt("", "timm model name (e.g. deit_small_patch16_224); '': a sureid "
                          "ViT of the shape below")
    embed_dim: int = _opt(384, "sureid ViT width", low=1)
    depth: int = _opt(12, "sureid ViT blocks", low=1)
    num_heads: int = _opt(6, "sureid ViT attention heads", low=1)
    patch_size: int = _opt(16, "sureid ViT patch size", low=1)
    stem: str = _opt("patch", "sureid ViT stem: 'patch' or 'conv'", choices=_STEMS)
    weights: str = _opt("", "starting weights: '' random; 'timm' timm's pretrained weights "
                        "(timm_name only); a shipped name (quick_student, see "
                        "sureid.pretrained) or a file (timm/DeiT/TransReID .pth, "
                        "safetensors, sureid backbone file)")
    keep_ratio: float = _opt(0.7, "HTS keep ratio p (stages keep p, p^2, p^3); 1.0: dense, no "
                             "HTS", low=0.0, high=1.0, low_open=True)
    prune_layers: tuple[int, ...] = _opt((3, 6, 9), "blocks before which tokens are pruned",
                                         low=0)
    keep_score: str = _opt("decision", "what ranks tokens: 'decision' (the paper's modules) "
                           "or 'attention' (class-token attention, not in the paper)",
                           choices=("decision", "attention"))
    decision_init_keep: float = _opt(0.95, "where untrained decision modules start; 0: "
                                     "PyTorch's init", low=0.0, high=1.0, high_open=True)
    reweight: bool = _opt(True, "class-token reweight head (Eqs. 7-8) when HTS is on")


@dataclass(frozen=True)
class TeacherSection:
    """The NPKD teacher (Eq. 13): trained here first, loaded, or none."""

    source: str = _opt("train", "'train': fine-tune a dense teacher on the training set "
                       "first; 'checkpoint': load a trained one; 'none': no NPKD",
                       choices=("train", "checkpoint", "none"))
    checkpoint: str = _opt("", "source = 'checkpoint': a sureid model file (ReIDModel.save), a "
                           "Trainer checkpoint of the architecture below, or a shipped name "
                           "(quick_teacher_finetuned)")
    timm_name: str = _opt("", "timm model name; '': a sureid ViT of the shape below")
    embed_dim: int = _opt(768, "sureid ViT width", low=1)
    depth: int = _opt(12, "sureid ViT blocks", low=1)
    num_heads: int = _opt(12, "sureid ViT attention heads", low=1)
    patch_size: int = _opt(16, "sureid ViT patch size", low=1)
    stem: str = _opt("patch", "sureid ViT stem: 'patch' or 'conv'", choices=_STEMS)
    weights: str = _opt("", "starting weights of a teacher trained here (as student.weights)")
    epochs: int = _opt(200, "source = 'train': the teacher's epochs", low=1)


@dataclass(frozen=True)
class ObjectiveSection:
    """Eq. 14: ``alpha (L_KD + ratio_weight L_ratio) + beta (L_cls + L_tri)``."""

    alpha: float = _opt(1.0, "weight of the KD + ratio group", low=0.0)
    beta: float = _opt(1.0, "weight of the ID + triplet group", low=0.0)
    ratio_weight: float = _opt(2.0, "lambda_ratio (Eq. 9)", low=0.0)
    kl_weight: float = _opt(0.1, "lambda of NPKD's KL term (Eq. 13)", low=0.0)
    feature_weight: float = _opt(1.0, "weight of NPKD's feature term", low=0.0)
    feature_reduction: str = _opt("mean", "NPKD feature term over channels: 'mean' or 'sum' "
                                  "(Eq. 13 literally)", choices=("mean", "sum"))
    temperature: float = _opt(1.0, "KD temperature", low=0.0, low_open=True)
    align: str = _opt("interpolate", "NPKD feature alignment: 'interpolate' or 'linear'",
                      choices=("interpolate", "linear"))
    direction: str = _opt("t2s", "NPKD alignment direction: 't2s' or 's2t'",
                          choices=("t2s", "s2t"))
    align_corners: bool = _opt(False, "interpolation grid of the alignment")
    aux_weight: float = _opt(1.0, "weight of the reweight head's ID + triplet terms", low=0.0)
    label_smoothing: float = _opt(0.1, "epsilon of the ID loss", low=0.0, high=1.0,
                                  high_open=True)
    margin: float = _opt(0.3, "triplet margin", low=0.0)


@dataclass(frozen=True)
class ScheduleSection:
    """Optimizer and learning-rate schedule (cosine with linear warm-up)."""

    epochs: int = _opt(200, "student epochs", low=1)
    optimizer: str = _opt("sgd", "'sgd' (momentum 0.9) or 'adamw'", choices=("sgd", "adamw"))
    lr: float = _opt(0.008, "learning rate of the new layers", low=0.0, low_open=True)
    backbone_lr_mult: float = _opt(1.0, "the ViT's own weights train at lr * this", low=0.0)
    weight_decay: float = _opt(1e-4, "weight decay", low=0.0)
    warmup_epochs: float = _opt(1.0, "linear warm-up, epochs (fractions allowed)", low=0.0)
    predictor_warmup_epochs: float = _opt(0.0, "HTS: the ViT's weights held while the "
                                          "decision modules learn, epochs", low=0.0)
    grad_clip: float = _opt(0.0, "max gradient norm; 0: no clipping", low=0.0)
    max_steps_per_epoch: int = _opt(0, "cut every epoch after this many steps; 0: whole "
                                    "epochs", low=0)
    amp: str = _opt("", "mixed precision: '', 'bf16' or 'fp16'", choices=("", "bf16", "fp16"))


@dataclass(frozen=True)
class EvalSection:
    """Validation on the query/gallery split (Market-1501 protocol), when the data has one."""

    every: int = _opt(1, "evaluate every N epochs (and after the last); 0: after the last "
                      "only", low=0)
    metric: str = _opt("euclidean", "feature distance", choices=("euclidean", "cosine"))


@dataclass(frozen=True)
class LogSection:
    """What ``log.csv`` (and TensorBoard) receive besides one row per epoch."""

    steps: int = _opt(0, "also a row every N optimizer steps; 0: epoch rows only", low=0)
    tensorboard: bool = _opt(True, "write TensorBoard events when tensorboard is installed")


_SECTIONS: dict[str, type] = {
    "data": DataSection, "student": StudentSection, "teacher": TeacherSection,
    "objective": ObjectiveSection, "schedule": ScheduleSection, "eval": EvalSection,
    "log": LogSection,
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything one ``sureid train`` run needs; every value checked when built.

    Raises:
        TypeError: a value of the wrong type (the message names the key, e.g. ``data.noda``).
        ValueError: a value out of range or not one of the choices, or settings that do not
            fit together (``teacher.source = 'checkpoint'`` without ``teacher.checkpoint``).
    """

    seed: int = _opt(0, "seeds the weights, the batches and the augmentations", low=0)
    device: str = _opt("auto", "'auto' (cuda when available, else cpu), 'cpu', 'cuda', "
                       "'cuda:1', ...")
    data: DataSection = field(default_factory=DataSection)
    student: StudentSection = field(default_factory=StudentSection)
    teacher: TeacherSection = field(default_factory=TeacherSection)
    objective: ObjectiveSection = field(default_factory=ObjectiveSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    eval: EvalSection = field(default_factory=EvalSection)
    log: LogSection = field(default_factory=LogSection)

    def __post_init__(self) -> None:
        for f in _scalar_fields(TrainConfig):
            object.__setattr__(self, f.name, _checked(f.name, getattr(self, f.name), f))
        for name, cls in _SECTIONS.items():
            section = getattr(self, name)
            if not isinstance(section, cls):
                raise TypeError(f"{name} must be a {cls.__name__}, got {type(section).__name__}")
            values = {f.name: _checked(f"{name}.{f.name}", getattr(section, f.name), f)
                      for f in dataclasses.fields(cls)}
            object.__setattr__(self, name, cls(**values))
        _check_together(self)


def _scalar_fields(cls) -> list[dataclasses.Field]:
    """The top-level fields of ``cls`` (``seed``, ``device``), not its sections."""
    return [f for f in dataclasses.fields(cls) if f.name not in _SECTIONS]


def _check_together(cfg: TrainConfig) -> None:
    """Refuse settings that are each valid but do not fit together (``ValueError``)."""
    s, t = cfg.student, cfg.teacher
    if t.source == "checkpoint" and not t.checkpoint:
        raise ValueError("teacher.checkpoint must name a trained teacher when teacher.source "
                         "is 'checkpoint'")
    if t.source != "checkpoint" and t.checkpoint:
        raise ValueError(f"teacher.checkpoint is {t.checkpoint!r} but teacher.source is "
                         f"{t.source!r}; set teacher.source = 'checkpoint' or clear it")
    for name, sec in (("student", s), ("teacher", t)):
        if sec.weights == "timm" and not sec.timm_name:
            raise ValueError(f"{name}.weights = 'timm' loads timm's pretrained weights: set "
                             f"{name}.timm_name to a timm model name")
    if not s.timm_name:
        if s.embed_dim % s.num_heads:
            raise ValueError(f"student.embed_dim ({s.embed_dim}) must be divisible by "
                             f"student.num_heads ({s.num_heads})")
        bad = [i for i in s.prune_layers if i >= s.depth]
        if bad:
            raise ValueError(f"student.prune_layers must be blocks of the student (< "
                             f"student.depth = {s.depth}), got {list(s.prune_layers)}")
    if list(s.prune_layers) != sorted(set(s.prune_layers)) or not s.prune_layers:
        raise ValueError(f"student.prune_layers must be increasing block indices, got "
                         f"{list(s.prune_layers)}")
    if not t.timm_name and t.embed_dim % t.num_heads:
        raise ValueError(f"teacher.embed_dim ({t.embed_dim}) must be divisible by "
                         f"teacher.num_heads ({t.num_heads})")
    if cfg.device.strip() == "":
        raise ValueError("device must be 'auto' or a torch device such as 'cpu' or 'cuda'")


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """``cfg`` as nested plain values (tuples as lists): what the config files hold."""
    out: dict[str, Any] = {f.name: getattr(cfg, f.name) for f in _scalar_fields(TrainConfig)}
    for name in _SECTIONS:
        section = getattr(cfg, name)
        out[name] = {f.name: list(v) if isinstance(v := getattr(section, f.name), tuple) else v
                     for f in dataclasses.fields(section)}
    return out


def merge(base: TrainConfig, values: Mapping[str, Any], *, where: str | None = "config"
          ) -> TrainConfig:
    """``base`` with the keys of a (partial) nested mapping replaced; every key checked.

    Raises:
        ValueError: an unknown section or key (named, with the known ones), a section that is
            not a table; TypeError/ValueError: a bad value (named).
    """
    label = where or "config"
    if not isinstance(values, Mapping):
        raise TypeError(f"{label} must be a table of settings, got {type(values).__name__}")
    top = {f.name for f in _scalar_fields(TrainConfig)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key in _SECTIONS:
            if not isinstance(value, Mapping):
                raise ValueError(f"{label}: [{key}] must be a table of settings, got "
                                 f"{type(value).__name__} {value!r}")
            cls = _SECTIONS[key]
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise ValueError(f"{label}: unknown key {key}.{unknown[0]}; the [{key}] keys are "
                                 f"{sorted(known)}")
            changes[key] = dataclasses.replace(getattr(base, key), **dict(value))
        elif key in top:
            changes[key] = value
        else:
            raise ValueError(f"{label}: unknown key {key!r}; the top-level keys are "
                             f"{sorted(top)} and the sections {list(_SECTIONS)}")
    try:
        return dataclasses.replace(base, **changes)
    except (TypeError, ValueError) as err:
        if where is None:
            raise
        raise type(err)(f"{where}: {err}") from None
