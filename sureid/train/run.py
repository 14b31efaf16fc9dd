"""One training run from a :class:`~sureid.train.config.TrainConfig`: check, build, train, log.

:func:`~sureid.train.plan.prepare` checks every input and the output folder and builds the
models, loaders, objectives and optimizers without writing anything; :func:`run` trains (the
teacher first when ``teacher.source = "train"``, then the student) and writes into the output
folder:

============================  ===============================================================
``config.toml|json``          the config as run (paths made absolute); ``sureid train`` on it
                              repeats the run (seeded)
``model.pt``                  the student, a :func:`sureid.load` file with its DataConfig
``best.pt``                   the student at its best validation mAP (data with query/gallery)
``teacher.pt``                a teacher trained here (a :func:`sureid.load` file)
``checkpoints/*.pt``          Trainer checkpoints: running the same command again resumes
``log.csv``                   one row per epoch (and every ``log.steps`` steps): stage, loss
                              terms, keep fractions, learning rates, validation metrics
``tensorboard/``              the same as TensorBoard events, when ``tensorboard`` imports
============================  ===============================================================

The output folder must be new, empty, or hold only these files of a run with the same config
(then it resumes); anything else is refused before any work.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..ablation.recipe import MEAN, STD
from ..engine import Trainer
from ..hub import DataConfig
from .config import TrainConfig, to_dict
from .files import dumps
from .folders import _write_text
from .plan import Plan, _Stage, prepare
from .runlog import RunLog, _lrs

__all__ = ["RunResult", "run", "train"]


@dataclass
class RunResult:
    """Where a run wrote its files and how the student ended."""

    out: Path
    model: Path
    best: Path | None
    metrics: dict[str, float]
    epochs: int


def run(plan: Plan) -> RunResult:
    """Train what :func:`prepare` built and write the outputs (see the module docstring)."""
    cfg, out, log = plan.config, plan.out, plan.log
    out.mkdir(parents=True, exist_ok=True)
    config_file = out / f"config.{plan.fmt}"
    if not plan.resume or not config_file.is_file():
        _write_text(config_file, dumps(cfg, plan.fmt))
    data_config = DataConfig(cfg.data.img_size, MEAN, STD)
    runlog = RunLog(out, tensorboard=cfg.log.tensorboard, log=log)
    best: Path | None = None
    try:
        for stage in plan.stages:
            best = _fit(stage, plan, runlog, data_config) or best
    finally:
        runlog.close()
    student = plan.stages[-1]
    state = student.trainer.state
    metrics = {k: v for k, v in (state.history[-1] if state.history else {}).items()
               if k != "epoch"}
    best_path = out / "best.pt"
    log(f"wrote {out}: model.pt{', best.pt' if best_path.is_file() else ''}, log.csv, "
        f"config.{plan.fmt}")
    return RunResult(out, student.model_file, best_path if best_path.is_file() else None,
                     metrics, state.epoch)


def _fit(stage: _Stage, plan: Plan, runlog: RunLog, data_config: DataConfig) -> Path | None:
    """Train ``stage`` (resuming from its checkpoint), log its rows and write its model file;
    the student also writes ``best.pt`` at each new best mAP. Returns ``best.pt`` if written."""
    cfg, out = plan.config, plan.out
    if stage.trainer is None:
        stage.trainer = stage.build()
    trainer, name = stage.trainer, stage.name
    every = cfg.log.steps
    started = False
    best_path = out / "best.pt"
    wrote_best = None

    def on_step(tr: Trainer, terms: dict[str, float]) -> None:
        nonlocal started
        if not started:  # rows after the checkpoint this stage resumed from are redone
            runlog.start(name, tr.state.step - 1)
            started = True
        if every and tr.state.step % every == 0:
            runlog.write({"stage": name, "kind": "step", "epoch": tr.state.epoch + 1,
                          "step": tr.state.step, **terms, **_lrs(tr)})

    def on_epoch_end(tr: Trainer, record: dict[str, float]) -> None:
        nonlocal wrote_best
        row = {"stage": name, "kind": "epoch", "epoch": int(record["epoch"]),
               "step": tr.state.step, **{k: v for k, v in record.items() if k != "epoch"},
               **_lrs(tr)}
        runlog.write(row)
        if name == "student" and "mAP" in record:
            earlier = [h["mAP"] for h in tr.state.history[:-1] if "mAP" in h]
            if not earlier or record["mAP"] > max(earlier):
                tr.module.save(best_path, data_config=data_config, metadata={
                    "identities": plan.dataset.label_map,
                    "epoch": int(record["epoch"]), "step": tr.state.step,
                    **{k: v for k, v in record.items() if k != "epoch"}})
                wrote_best = best_path
                plan.log(f"[{name}] best mAP so far {record['mAP']:.2f}: wrote {best_path}")

    trainer.on_step, trainer.on_epoch_end = on_step, on_epoch_end
    torch.manual_seed(cfg.seed)  # a fresh stage starts alike whether or not the one before resumed
    evaluate = plan.evaluate
    trainer.fit(stage.loader, epochs=stage.epochs, eval_fn=evaluate,
                eval_every=stage.eval_every, checkpoint_path=out / "checkpoints" / f"{name}.pt",
                settings=stage.settings, progress=plan.progress)
    state = trainer.state
    last = state.history[-1] if state.history else {}
    # identities: {name or raw pid: classifier label}, the map of the training folder
    trainer.module.save(stage.model_file, data_config=data_config, metadata={
        "stage": name, "identities": plan.dataset.label_map,
        "epochs": state.epoch, "step": state.step,
        "metrics": {k: v for k, v in last.items() if k != "epoch"},
        "config": to_dict(cfg)})
    return wrote_best


def train(cfg: TrainConfig, out: str | os.PathLike, *, fmt: str = "toml",
          config_path: str | os.PathLike | None = None, progress: bool = True,
          log: Callable[[str], None] | None = None) -> RunResult:
    """:func:`prepare` then :func:`run`: the whole of ``sureid train``.

    Example:
        >>> cfg = apply_sets(from_preset("smoke"), ["data.root=data/synth"])  # doctest: +SKIP
        >>> train(cfg, "runs/smoke").model  # doctest: +SKIP
        PosixPath('runs/smoke/model.pt')
    """
    return run(prepare(cfg, out, fmt=fmt, config_path=config_path, progress=progress, log=log))
