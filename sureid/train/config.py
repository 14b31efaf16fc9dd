"""The training configuration of ``sureid train``: sections, defaults, checks, files.

One :class:`TrainConfig` describes a whole run: ``data``, ``student``, ``teacher``,
``objective``, ``schedule``, ``eval`` and ``log`` sections plus the top-level ``seed`` and
``device``. The defaults are those of :class:`sureid.ablation.Preset` (the paper's recipe with
a sureid ViT-S student); :func:`from_preset` starts from one of
:data:`sureid.ablation.PRESETS`. Files are TOML (read with :mod:`tomllib`, Python >= 3.11, or
the optional ``tomli`` package) or JSON, and are written back in the same format
(:func:`dumps`); ``docs/training.md`` explains the choice.

"Not set" is spelled without ``None`` (TOML has no null): ``""`` for a string and ``0`` for
``schedule.grad_clip``, ``schedule.max_steps_per_epoch`` and ``student.decision_init_keep``.

Example:
    >>> cfg = apply_sets(from_preset("smoke"), ["data.root=data/synth", "schedule.epochs=2"])
    >>> cfg.schedule.epochs, cfg.student.embed_dim
    (2, 64)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._checks import is_int, is_real
from ..ablation.presets import PRESETS, Arch, Preset

__all__ = [
    "DataSection",
    "EvalSection",
    "LogSection",
    "ObjectiveSection",
    "ScheduleSection",
    "StudentSection",
    "TeacherSection",
    "TrainConfig",
    "apply_sets",
    "build_config",
    "default_format",
    "dumps",
    "from_preset",
    "load_config",
    "merge",
    "read_config_file",
    "template",
    "to_dict",
    "to_preset",
]

_STEMS = ("patch", "conv")


def _opt(default: Any, doc: str, *, choices: Iterable[str] | None = None,
         low: float | None = None, high: float | None = None, low_open: bool = False,
         high_open: bool = False, length: int | None = None) -> Any:
    """A config field: its default, the comment the template prints, and its checks."""
    meta = {"doc": doc, "choices": tuple(choices) if choices is not None else None,
            "low": low, "high": high, "low_open": low_open, "high_open": high_open,
            "length": length}
    return field(default=default, metadata=meta)


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
    return [f for f in dataclasses.fields(cls) if f.name not in _SECTIONS]


def _kind(f: dataclasses.Field) -> str:
    return str(f.type).replace(" ", "")


def _checked(key: str, value: object, f: dataclasses.Field) -> object:
    """``value`` of config key ``key`` checked against field ``f``, in its plain type."""
    kind, meta = _kind(f), f.metadata
    if kind == "bool":
        if not isinstance(value, bool):
            raise TypeError(f"{key} must be true or false, got {type(value).__name__} {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise TypeError(f"{key} must be a string, got {type(value).__name__} {value!r}")
        if meta["choices"] is not None and value not in meta["choices"]:
            raise ValueError(f"{key} must be one of {list(meta['choices'])}, got {value!r}")
        return value
    if kind.startswith("tuple"):
        if not isinstance(value, (list, tuple)) or not all(is_int(v) for v in value):
            raise TypeError(f"{key} must be a list of ints, got {type(value).__name__} {value!r}")
        if meta["length"] is not None and len(value) != meta["length"]:
            raise ValueError(f"{key} must hold {meta['length']} ints, got {list(value)!r}")
        items = tuple(int(v) for v in value)
        for v in items:
            _check_range(key, v, meta, list(value))
        return items
    if kind == "int":
        if not is_int(value):
            raise TypeError(f"{key} must be an int, got {type(value).__name__} {value!r}")
        value = int(value)
    elif kind == "float":
        if not is_real(value):
            raise TypeError(f"{key} must be a number, got {type(value).__name__} {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{key} must be finite, got {value!r}")
    else:  # pragma: no cover - a field of a kind this module does not know
        raise AssertionError(f"{key}: unknown field type {kind}")
    _check_range(key, value, meta, value)
    return value


def _check_range(key: str, v: float, meta: Mapping[str, Any], shown: object) -> None:
    low, high = meta["low"], meta["high"]
    bad_low = low is not None and (v <= low if meta["low_open"] else v < low)
    bad_high = high is not None and (v >= high if meta["high_open"] else v > high)
    if bad_low or bad_high:
        if high is None:
            bound = f"{'>' if meta['low_open'] else '>='} {low:g}"
        elif low is None:
            bound = f"{'<' if meta['high_open'] else '<='} {high:g}"
        else:
            bound = (f"in {'(' if meta['low_open'] else '['}{low:g}, {high:g}"
                     f"{')' if meta['high_open'] else ']'}")
        raise ValueError(f"{key} must be {bound}, got {shown!r}")


def _check_together(cfg: TrainConfig) -> None:
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


# ----------------------------------------------------------------------------- presets
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


# ----------------------------------------------------------------------------- dicts
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


def _field_of(key: str) -> dataclasses.Field:
    section, dot, name = key.partition(".")
    if not dot:
        fields = {f.name: f for f in _scalar_fields(TrainConfig)}
        if key in _SECTIONS:
            raise ValueError(f"--set {key}: a section; set one of its keys, e.g. "
                             f"{key}.{dataclasses.fields(_SECTIONS[key])[0].name}=...")
        if key not in fields:
            raise ValueError(f"--set {key}: no such setting; top-level keys {sorted(fields)}, "
                             f"sections {list(_SECTIONS)} (keys as section.key)")
        return fields[key]
    if section not in _SECTIONS:
        raise ValueError(f"--set {key}: no section {section!r}; sections {list(_SECTIONS)}")
    fields = {f.name: f for f in dataclasses.fields(_SECTIONS[section])}
    if name not in fields:
        raise ValueError(f"--set {key}: no such setting; the [{section}] keys are "
                         f"{sorted(fields)}")
    return fields[name]


def _parse_value(key: str, text: str, f: dataclasses.Field) -> object:
    """``--set`` text as the field's kind: strings as given (quotes optional), numbers,
    ``true``/``false`` and ``[a, b]`` lists as in TOML or JSON."""
    text = text.strip()
    if _kind(f) == "str":
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            return text[1:-1]
        return text
    if text in ("True", "False"):  # Python spelling, also accepted
        text = text.lower()
    text = text.replace("(", "[").replace(")", "]")  # a Python tuple as a list
    try:
        return _toml_reader().loads(f"v = {text}")["v"]  # TOML's spelling: inf, 1e-3, [1, 2]
    except (ImportError, ValueError):
        pass
    try:
        return json.loads(text)
    except ValueError:
        return text  # the type check names the key and quotes the text


def apply_sets(cfg: TrainConfig, assignments: Iterable[str]) -> TrainConfig:
    """``cfg`` with ``--set section.key=VALUE`` assignments applied, in order.

    Raises:
        ValueError: no ``=``, an unknown key (named, with the known ones), a bad value.
        TypeError: a value of the wrong type (named).
    """
    for item in assignments:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep:
            raise ValueError(f"--set takes KEY=VALUE (e.g. schedule.epochs=5), got {item!r}")
        value = _parse_value(key, text, _field_of(key))
        section, dot, name = key.partition(".")
        cfg = merge(cfg, {section: {name: value}} if dot else {key: value}, where=None)
    return cfg


# ----------------------------------------------------------------------------- files
def read_config_file(path: str | os.PathLike) -> tuple[dict[str, Any], str]:
    """``(nested values, format)`` of a ``.toml`` or ``.json`` config file.

    TOML is read with :mod:`tomllib` (Python >= 3.11) or, on Python 3.10, the ``tomli``
    package when installed.

    Raises:
        FileNotFoundError: no such file.
        ValueError: another extension, or the file does not parse (the parser's message).
        ImportError: a TOML file on Python 3.10 without ``tomli``.
    """
    path = Path(path).expanduser()
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("toml", "json"):
        raise ValueError(f"config {str(path)!r}: expected a .toml or .json file, got "
                         f"{path.suffix or 'no extension'!r}")
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {str(path)!r}")
    text = path.read_text(encoding="utf-8")
    if fmt == "json":
        try:
            values = json.loads(text)
        except ValueError as err:
            raise ValueError(f"config {str(path)!r} is not valid JSON: {err}") from None
    else:
        toml = _toml_reader()
        try:
            values = toml.loads(text)
        except toml.TOMLDecodeError as err:
            raise ValueError(f"config {str(path)!r} is not valid TOML: {err}") from None
    if not isinstance(values, dict):
        raise ValueError(f"config {str(path)!r} must hold a table of settings, got "
                         f"{type(values).__name__}")
    return values, fmt


def default_format() -> str:
    """``"toml"`` when a TOML reader is available (``tomllib``, or ``tomli``), else ``"json"``."""
    try:
        _toml_reader()
    except ImportError:
        return "json"
    return "toml"


def _toml_reader():
    try:
        import tomllib  # Python >= 3.11
    except ImportError:
        try:
            import tomli as tomllib  # the same parser, for Python 3.10
        except ImportError:
            raise ImportError("reading a TOML config needs Python >= 3.11 or the tomli "
                              "package (`pip install tomli`); or write the config as JSON "
                              "(`sureid train --template json`)") from None
    return tomllib


def load_config(path: str | os.PathLike, *, base: TrainConfig | None = None
                ) -> tuple[TrainConfig, str]:
    """``(base with the file's settings, format)``; ``base`` defaults to :class:`TrainConfig`.
    Keys the file leaves out keep ``base``'s values."""
    values, fmt = read_config_file(path)
    return merge(base if base is not None else TrainConfig(), values,
                 where=f"config {str(path)!r}"), fmt


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)  # shortest round-trip form; TOML floats need a '.' or an exponent
        return text if any(c in text for c in ".en") else f"{text}.0"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: the same escapes
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} to TOML")


def dumps(cfg: TrainConfig, fmt: str = "toml", *, comments: bool = False) -> str:
    """``cfg`` as a TOML or JSON document that :func:`load_config` reads back to ``cfg``.

    ``comments=True`` (TOML only) puts each setting's description above it, as in
    ``sureid train --template``.
    """
    if fmt == "json":
        return json.dumps(to_dict(cfg), indent=2) + "\n"
    if fmt != "toml":
        raise ValueError(f"fmt must be 'toml' or 'json', got {fmt!r}")
    values = to_dict(cfg)
    lines: list[str] = []
    if comments:
        lines += ["# sureid train configuration (docs/training.md). Every key is optional: a",
                  "# key left out keeps this default (or the --preset's value).", ""]

    def entries(cls, table: Mapping[str, Any], names: list[str]) -> None:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name in names:
            if comments:
                lines.append(f"# {fields[name].metadata['doc']}")
            lines.append(f"{name} = {_toml_value(table[name])}")

    entries(TrainConfig, values, [f.name for f in _scalar_fields(TrainConfig)])
    for name, cls in _SECTIONS.items():
        lines.append("")
        if comments and cls.__doc__:
            lines.append(f"# {cls.__doc__.splitlines()[0]}")
        lines.append(f"[{name}]")
        entries(cls, values[name], [f.name for f in dataclasses.fields(cls)])
    return "\n".join(lines) + "\n"


def build_config(config: str | os.PathLike | None = None, *, preset: str | None = None,
                 data_root: str | os.PathLike | None = None, sets: Iterable[str] = ()
                 ) -> tuple[TrainConfig, str]:
    """``(config, format)`` of a ``sureid train`` command line: the defaults or ``preset``'s
    values, then the file ``config``, then ``data_root``, then the ``--set`` assignments.

    The format is the config file's: the run's config is written back in it. Without a
    file it is ``"toml"``, or ``"json"`` where no TOML reader is installed (Python 3.10
    without ``tomli``), so the written config can always be read back.
    """
    cfg = from_preset(preset) if preset is not None else TrainConfig()
    fmt = default_format()
    if config is not None:
        cfg, fmt = load_config(config, base=cfg)
    if data_root is not None:
        cfg = merge(cfg, {"data": {"root": os.fspath(data_root)}}, where="--data-root")
    return apply_sets(cfg, sets), fmt


def template(fmt: str = "toml") -> str:
    """The default config, commented in TOML (what ``sureid train --template`` prints)."""
    return dumps(TrainConfig(), fmt, comments=fmt == "toml")
