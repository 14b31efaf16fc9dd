"""What a training run will do, checked and built before anything is written.

:func:`prepare` checks every input and the output folder, reads the dataset and builds the
models, loaders, objectives and optimizers of each stage (the teacher first when
``teacher.source = "train"``, then the student) into a :class:`Plan`, which
:func:`sureid.train.run.run` trains.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._checks import check_device, check_output_path
from .._optional import require
from ..ablation.recipe import file_digest, make_optimizer, view_transforms
from ..data import ReIDDataset
from ..engine import Trainer, normalize_settings
from ..models import FrozenTeacher
from .build import (
    _feature_dim,
    _loaded_teacher,
    _objective,
    _student,
    _teacher_net,
    _teacher_objective,
)
from .config import TrainConfig, to_dict
from .files import _check_format
from .folders import _absolute, _check_out, _weights_file
from .loaders import _evaluator, _occluders, _read_dataset, _train_loader
from .presets import to_preset

__all__ = ["Plan", "prepare"]


@dataclass
class _Stage:
    """One model to train: how to build its trainer, its data, and where its model goes."""

    name: str
    build: Callable[[], Trainer]  # called when the stage starts (the teacher must be trained)
    loader: Any
    epochs: int
    settings: dict[str, Any]
    eval_every: int
    model_file: Path
    trainer: Trainer | None = None


@dataclass
class Plan:
    """What :func:`prepare` checked and built; :func:`~sureid.train.run.run` trains it."""

    config: TrainConfig
    fmt: str
    out: Path
    resume: bool
    layout: str
    dataset: ReIDDataset
    device: torch.device
    stages: list[_Stage]
    evaluate: Callable[[nn.Module], dict[str, float]] | None
    log: Callable[[str], None]
    progress: bool = True


def _default_log(line: str) -> None:
    """Print ``line`` after the time of day."""
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def prepare(cfg: TrainConfig, out: str | os.PathLike, *, fmt: str = "toml",
            config_path: str | os.PathLike | None = None, progress: bool = True,
            log: Callable[[str], None] | None = None) -> Plan:
    """Check every input and the output folder, and build the run; nothing is written.

    Args:
        cfg: the run (relative paths are taken from the current folder).
        out: the output folder: new, empty, or an earlier run of the same config (resumed).
        fmt: ``"toml"`` or ``"json"``, the format ``config.<fmt>`` is written in.
        config_path: the config file read, if any (an input: ``out`` may not replace it).
        progress: progress bars.
        log: called with each log line (default: print with the time).

    Raises:
        FileNotFoundError: a missing data folder, weights file, occluder folder or teacher
            checkpoint. FileExistsError: ``out`` holds something else (see
            :mod:`sureid.train.run`). ValueError/TypeError: a bad setting or input, named.
            ImportError: torchvision (or timm for ``timm_name``) is not installed.
    """
    log = log if log is not None else _default_log
    _check_format(fmt)
    if not cfg.data.root:
        raise ValueError("data.root is not set: give --data-root DIR or set data.root in the "
                         "config")
    cfg = _absolute(cfg)
    device = check_device("device", ("cuda" if torch.cuda.is_available() else "cpu")
                          if cfg.device == "auto" else cfg.device)
    require("torchvision", purpose="the training augmentations of sureid train")
    # inputs, then the output folder, before anything is read in bulk or written
    if cfg.data.occluders and not Path(cfg.data.occluders).is_dir():
        raise FileNotFoundError(f"data.occluders {cfg.data.occluders!r} is not a folder")
    checkpoint_file = (_weights_file("teacher.checkpoint", cfg.teacher.checkpoint)
                       if cfg.teacher.checkpoint else None)
    student_file = _weights_file("student.weights", cfg.student.weights)
    teacher_file = (_weights_file("teacher.weights", cfg.teacher.weights)
                    if cfg.teacher.source == "train" else None)
    inputs = [Path(cfg.data.root), cfg.data.occluders or None, checkpoint_file, student_file,
              teacher_file]
    out = Path(out).expanduser()
    if config_path is not None:
        src = Path(config_path).expanduser().resolve()
        if src != (out / f"config.{fmt}").resolve():  # a run's own config: reruns it
            inputs.append(src)
    out = check_output_path("-o", out, folder=True, inputs=inputs)
    resume = _check_out(out, cfg, fmt)

    layout, dataset = _read_dataset(cfg, log)
    preset = to_preset(cfg)
    occluders = _occluders(cfg)
    test_tf = view_transforms(preset, occluders, color_jitter=cfg.data.color_jitter)[3]
    num_classes = dataset.num_train_pids
    evaluate = _evaluator(cfg, dataset, test_tf, device)

    data_record = {"layout": layout, "train_images": len(dataset.train),
                   "train_ids": num_classes}
    common = {"config": to_dict(cfg), "data": data_record,
              "weights": {k: file_digest(p) for k, p in
                          (("student", student_file), ("teacher", teacher_file))
                          if p is not None}}
    stages: list[_Stage] = []
    amp = cfg.schedule.amp or None
    clip = cfg.schedule.grad_clip or None

    def loader(dual: bool):
        return _train_loader(cfg, preset, occluders, dataset, dual=dual)

    def trainer(name, model, objective, teacher, train_load, epochs):
        opt, sched = make_optimizer(preset, model, objective, len(train_load), epochs)
        return Trainer(model.to(device), objective.to(device), opt, scheduler=sched,
                       teacher=teacher, device=device, grad_clip=clip, amp=amp,
                       log=lambda line: log(f"[{name}] {line}"))

    torch.manual_seed(cfg.seed)
    teacher = None
    teacher_dim = None
    if cfg.teacher.source == "train":
        net = _teacher_net(cfg, num_classes, log)
        teacher_objective = _teacher_objective(cfg)
        teacher_load = loader(False)
        built = trainer("teacher", net, teacher_objective, None, teacher_load,
                        cfg.teacher.epochs)
        stages.append(_Stage(
            "teacher", lambda: built, teacher_load, cfg.teacher.epochs,
            normalize_settings({**common, "stage": "teacher"}), 0, out / "teacher.pt", built))
        teacher_dim = net.embed_dim
    elif cfg.teacher.source == "checkpoint":
        teacher = _loaded_teacher(cfg, num_classes, log).to(device)
        common["weights"]["teacher_checkpoint"] = file_digest(checkpoint_file)
        teacher_dim = _feature_dim(teacher, cfg.data.img_size)
    torch.manual_seed(cfg.seed)
    student = _student(cfg, num_classes, log)
    objective = _objective(cfg, student, teacher_dim)
    train_load = loader(cfg.data.noda)

    def build_student() -> Trainer:  # a teacher trained here is frozen once it is trained
        frozen = teacher
        if stages and stages[0].name == "teacher":
            net = stages[0].trainer.module
            frozen = FrozenTeacher(net, net.classifier_weight.detach()).to(device)
        return trainer("student", student, objective, frozen, train_load, cfg.schedule.epochs)

    stage = _Stage("student", build_student, train_load, cfg.schedule.epochs,
                   normalize_settings({**common, "stage": "student"}), cfg.eval.every,
                   out / "model.pt")
    if not stages:  # checked now when nothing has to be trained first
        stage.trainer = build_student()
    stages.append(stage)
    return Plan(cfg, fmt, out, resume, layout, dataset, device, stages, evaluate, log, progress)
