"""A small, readable ReID training loop for the Eq. 14 objective."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._amp import autocast_available, autocast_to, grad_scaler
from .._checkpoint import load_checkpoint, save_checkpoint
from .._checks import check_int, check_output_path, check_real, is_real
from .._progress import Progress
from ..losses.objective import SUReIDLoss
from ..models.model_file import model_config
from ..models.reid_model import ReIDModel
from ..models.teacher import FrozenTeacher
from .batch import split_batch
from .checkpoint import (
    TrainState,
    check_optimizer_state,
    check_settings,
    normalize_settings,
    optimizer_class_name,
)

_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _amp_dtype(amp: object, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp``; refuses unknown values and devices without autocast."""
    if amp is None:
        return None
    if not isinstance(amp, str):
        raise TypeError(f"amp must be None, 'bf16' or 'fp16', got {type(amp).__name__} {amp!r}")
    if amp not in _AMP_DTYPES:
        raise ValueError(f"amp must be None, 'bf16' or 'fp16', got {amp!r}")
    if not autocast_available(device.type):
        raise ValueError(
            f"amp={amp!r} needs torch.autocast on device type {device.type!r}, which this torch "
            f"({torch.__version__}) does not provide; use amp=None"
        )
    dtype = _AMP_DTYPES[amp]
    try:  # an unsupported (device, dtype) pair fails (or only warns) when autocast is entered
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with torch.autocast(device.type, dtype=dtype):
                pass
    except (RuntimeError, UserWarning) as exc:
        raise ValueError(
            f"amp={amp!r}: torch {torch.__version__} cannot autocast to {dtype} on "
            f"{device.type!r} ({exc}); use amp='bf16' or amp=None"
        ) from exc
    return dtype


def _output_paths(
    checkpoint_path: str | os.PathLike | None, model_path: str | os.PathLike | None
) -> tuple[Path | None, Path | None]:
    """Both output paths checked as files that can be written, and not one file."""
    if checkpoint_path is not None:
        checkpoint_path = check_output_path("checkpoint_path", checkpoint_path)
    if model_path is not None:
        model_path = check_output_path("model_path", model_path)
        if checkpoint_path is not None and (
            model_path.resolve() == checkpoint_path.resolve()
            or (model_path.exists() and checkpoint_path.exists()
                and os.path.samefile(model_path, checkpoint_path))
        ):
            raise ValueError(
                f"model_path and checkpoint_path are the same file {str(model_path)!r}: the "
                "final model would replace the checkpoint; give two paths"
            )
    return checkpoint_path, model_path


def _check_metrics(metrics: object, epoch: int) -> dict[str, float]:
    """``eval_fn``'s result as floats; NaN, infinity and non-numbers are refused."""
    if not isinstance(metrics, Mapping):
        raise TypeError(
            "eval_fn must return a mapping of metric names to numbers, got "
            f"{type(metrics).__name__}"
        )
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if not is_real(value):
            raise TypeError(
                f"eval_fn returned {name!r} = {value!r} at epoch {epoch}; expected a number"
            )
        if not math.isfinite(value):
            raise FloatingPointError(
                f"eval_fn returned {name!r} = {value!r} at epoch {epoch}; expected a finite "
                f"number (all metrics: {dict(metrics)})"
            )
        out[str(name)] = float(value)
    return out


class Trainer:
    """Runs Eq. 14: ``α(L_KD + λ_ratio L_ratio) + β(L_cls + L_tri)`` on a :class:`ReIDModel`.

    The teacher (if any) runs outside the loss, without gradient, on the same images.
    Checkpoints hold model, optimizer, scheduler and objective state plus
    :class:`TrainState`, are written atomically and load with ``weights_only=True``.

    Args:
        model: a :class:`~sureid.engine.ReIDModel` (or a ``DistributedDataParallel`` around one).
        objective: the :class:`~sureid.SUReIDLoss` with the terms of this run switched on.
        optimizer: built over ``model`` and ``objective`` parameters (the latter matter
            for ``NPKDLoss(align="linear")``).
        scheduler: stepped once per iteration, or ``None``.
        teacher: a :class:`~sureid.FrozenTeacher`, required when the objective uses KD.
        device: where batches are moved.
        grad_clip: max gradient norm, or ``None``.
        is_main: whether this process logs and writes checkpoints (rank 0 under DDP).
        log: called with each log line.
        amp: mixed precision for the student and teacher forwards: ``None`` (float32),
            ``"bf16"`` (``torch.autocast(device.type, torch.bfloat16)``) or ``"fp16"``
            (float16 autocast with a ``torch.amp.GradScaler``, whose state is checkpointed).
            The losses always run in float32 with autocast off, and the masked attention
            computes its softmax in float32. Both work on CPU and CUDA with torch >= 2.4.
        on_step: called as ``on_step(trainer, terms)`` after each optimizer step (main process
            only) with that step's loss terms; ``trainer.state.step`` is the steps taken.
        on_epoch_end: called as ``on_epoch_end(trainer, record)`` after each epoch (main
            process only, before the checkpoint is written) with the epoch's record: the
            mean terms and, when evaluated, the metrics (what ``state.history`` keeps).

    Logged terms: the loss terms of :class:`~sureid.SUReIDLoss`, plus, with HTS on,
    ``keep1``, ``keep2``, ... (the mean of each stage's hard training mask), printed beside
    the stage's target ratio.

    Example:
        >>> trainer = Trainer(model, SUReIDLoss(kd=None), optimizer)  # doctest: +SKIP
        >>> trainer.fit(loader, epochs=10, checkpoint_path="run/last.pt")  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        objective: SUReIDLoss,
        optimizer: torch.optim.Optimizer,
        *,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        teacher: FrozenTeacher | None = None,
        device: str | torch.device = "cpu",
        grad_clip: float | None = None,
        is_main: bool = True,
        log: Callable[[str], None] | None = None,
        amp: str | None = None,
        on_step: Callable[[Trainer, dict[str, float]], None] | None = None,
        on_epoch_end: Callable[[Trainer, dict[str, float]], None] | None = None,
    ) -> None:
        if not isinstance(objective, SUReIDLoss):
            raise TypeError(
                f"objective must be a sureid.SUReIDLoss, got {type(objective).__name__}"
            )
        if objective.needs_teacher and teacher is None:
            raise ValueError(
                "objective uses NPKD (objective.kd is set) but teacher is None; pass a "
                "FrozenTeacher"
            )
        if grad_clip is not None:  # True would clip at norm 1, "no" compare as a str
            grad_clip = check_real("grad_clip", grad_clip, low=0.0, low_open=True)
        self.model = model
        self.objective = objective
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.teacher = teacher
        self.device = torch.device(device)
        self.grad_clip = grad_clip
        self.is_main = is_main
        self.log = log if log is not None else (lambda line: print(line, flush=True))
        self.amp = amp
        self.amp_dtype = _amp_dtype(amp, self.device)
        self.scaler = grad_scaler(self.device.type) if amp == "fp16" else None
        for name, hook in (("on_step", on_step), ("on_epoch_end", on_epoch_end)):
            if hook is not None and not callable(hook):
                raise TypeError(f"{name} must be callable or None, got {type(hook).__name__}")
        self.on_step, self.on_epoch_end = on_step, on_epoch_end
        self.state = TrainState()
        self._keep_targets: tuple[float, ...] = ()  # from the last training output, for logs

    @property
    def module(self) -> nn.Module:
        """The model without a DistributedDataParallel wrapper."""
        return getattr(self.model, "module", self.model)

    def _autocast(self):
        return autocast_to(self.device.type, self.amp_dtype)

    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """One optimisation step; returns the loss terms (and keep fractions) as floats."""
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        self.model.train()
        with self._autocast():
            out = self.model(images)
            teacher_feat = teacher_logits = None
            if self.objective.needs_teacher:
                teacher_feat, teacher_logits = self.teacher(images)
        self._keep_targets = tuple(out.keep_ratios)
        # outside autocast: SUReIDLoss computes every term in float32
        loss = self.objective(
            out.features,
            out.logits,
            labels,
            teacher_feat=teacher_feat,
            teacher_logits=teacher_logits,
            keep_masks=out.keep_masks,
            target_ratios=out.keep_ratios or None,
            aux_feat=out.aux_feature,
            aux_logits=out.aux_logits,
        )
        if not torch.isfinite(loss.total):
            raise FloatingPointError(
                f"non-finite loss at step {self.state.step}: {loss.to_floats()}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        stepped = True
        if self.scaler is None:
            loss.total.backward()
            self._clip()
            self.optimizer.step()
        else:  # fp16: scaled backward; a step with inf/NaN gradients is skipped
            scale = self.scaler.get_scale()
            self.scaler.scale(loss.total).backward()
            self.scaler.unscale_(self.optimizer)
            self._clip()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            stepped = self.scaler.get_scale() >= scale
        if self.scheduler is not None and stepped:
            self.scheduler.step()
        self.state.step += 1
        return loss.to_floats()

    def _clip(self) -> None:
        if self.grad_clip is not None:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)

    def train_epoch(self, loader: Iterable, *, progress: bool = True) -> dict[str, float]:
        """One pass over ``loader``; returns the mean of each loss term."""
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self.state.epoch)
        sums: dict[str, float] = {}
        n = 0
        bar = Progress(
            loader, desc=f"epoch {self.state.epoch + 1}", enabled=progress and self.is_main
        )
        for batch in bar:
            terms = self.train_step(*split_batch(batch))
            if self.on_step is not None and self.is_main:
                self.on_step(self, terms)
            n += 1
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v
            lr = self.optimizer.param_groups[0]["lr"]
            bar.set_postfix(f"loss {terms['total']:.3f} lr {lr:.2e}")
        if n == 0:
            raise ValueError(
                f"loader yielded no batch in epoch {self.state.epoch + 1}: expected at least one "
                "(an empty dataset, or drop_last=True / a P x K sampler asking for more images "
                "or identities than the dataset has)"
            )
        return {k: v / n for k, v in sums.items()}

    def fit(
        self,
        loader: Iterable,
        *,
        epochs: int,
        eval_fn: Callable[[nn.Module], Mapping[str, float]] | None = None,
        eval_every: int = 0,
        checkpoint_path: str | os.PathLike | None = None,
        resume: bool = True,
        progress: bool = True,
        settings: Mapping[str, Any] | None = None,
        model_path: str | os.PathLike | None = None,
    ) -> TrainState:
        """Train until ``epochs`` epochs are completed, resuming ``checkpoint_path`` if it exists.

        Args:
            loader: yields training batches (see :func:`split_batch`).
            epochs: the number of completed epochs to stop at (a resumed run counts the
                checkpoint's).
            eval_fn: called on the unwrapped model (in eval mode) every ``eval_every``
                epochs and after the last one; returns metrics, ``"mAP"`` is the score
                tracked as best. Every value must be a finite number.
            eval_every: evaluate every this many epochs; 0 evaluates after the last only.
            checkpoint_path: written (main process only) after every epoch.
            resume: load ``checkpoint_path`` when it exists; ``False`` trains from scratch
                and overwrites it.
            progress: show a progress bar for each epoch (main process only).
            settings: what this run is trained with (keep ratio, data, flags, ...) as a
                mapping of str to JSON values. Stored in every checkpoint; a checkpoint
                trained with other settings, or storing none, is refused on resume.
                ``None`` checks nothing, and the checkpoints this run writes store no settings
                (a resumed checkpoint's settings are dropped, with a log line: they no longer
                describe what the run trains with).
            model_path: where the trained model is written at the end (main process only) in
                the self-describing format of ``ReIDModel.save`` (``sureid.load`` rebuilds
                it, ``sureid rank``/``evaluate``/``export`` take it); the model must have a
                ``save`` method.

        Raises:
            TypeError: ``epochs`` or ``eval_every`` is not an int; ``eval_fn`` is not callable.
            ValueError: ``epochs`` < 1 or ``eval_every`` < 0; ``checkpoint_path`` or
                ``model_path`` is a folder, lies below a file, or both are the same file
                (checked before training); the checkpoint's settings differ from ``settings``
                (each differing key is named with both values) or it stores none; the
                checkpoint's optimizer state is of another optimizer class or parameter
                layout; the loader yields no batch in an epoch.
            FloatingPointError: a non-finite loss, or ``eval_fn`` returns NaN or infinity.
        """
        epochs = check_int("epochs", epochs, low=1)
        eval_every = check_int("eval_every", eval_every, low=0)
        if eval_fn is not None and not callable(eval_fn):
            raise TypeError(f"eval_fn must be callable or None, got {type(eval_fn).__name__}")
        if model_path is not None and not callable(getattr(self.module, "save", None)):
            raise TypeError(f"model_path needs a model with a save() method (a sureid "
                            f"ReIDModel), got {type(self.module).__name__}")
        if model_path is not None and isinstance(self.module, ReIDModel):
            model_config(self.module)  # refuses a backbone save could not describe, now
        # output paths before training, not when the first or the last epoch writes them
        checkpoint_path, model_path = _output_paths(checkpoint_path, model_path)
        wanted = normalize_settings(settings) if settings is not None else None
        if checkpoint_path is not None and resume and checkpoint_path.is_file():
            self._resume(checkpoint_path, wanted)
        # what this run trains with; None when not given (never a resumed run's old record)
        self.state.settings = wanted
        while self.state.epoch < epochs:
            terms = self.train_epoch(loader, progress=progress)
            self.state.epoch += 1
            record = {"epoch": float(self.state.epoch), **terms}
            last = self.state.epoch == epochs
            due = last or (eval_every and self.state.epoch % eval_every == 0)
            if eval_fn is not None and self.is_main and due:
                metrics = _check_metrics(eval_fn(self.module), self.state.epoch)
                record.update(metrics)
                self.state.best_score = max(self.state.best_score, metrics.get("mAP", -math.inf))
            self.state.history.append(record)
            if self.is_main:
                self.log(self._log_line(record))
                if self.on_epoch_end is not None:
                    self.on_epoch_end(self, record)
                if checkpoint_path is not None:
                    save_checkpoint(self.state_dict(), checkpoint_path)
        if model_path is not None and self.is_main:
            self.module.save(model_path, metadata={"epochs": self.state.epoch,
                                                   "step": self.state.step})
        return self.state

    def _resume(self, path: Path, wanted: dict[str, Any] | None) -> None:
        """Load the checkpoint ``path`` after checking its settings and optimizer state."""
        state = load_checkpoint(path, map_location=self.device)
        if wanted is not None:  # before anything is loaded into the trainer
            check_settings(state.get("settings"), wanted, path=path)
        check_optimizer_state(state, self.optimizer, where=repr(str(path)))
        self.load_state_dict(state)
        if self.is_main:
            self.log(f"resumed from {path} at epoch {self.state.epoch}")
            if wanted is None and self.state.settings is not None:
                self.log(f"settings=None: the checkpoints of this run store no settings "
                         f"(the resumed one had {self.state.settings})")

    def _log_line(self, record: Mapping[str, float]) -> str:
        targets = self._keep_targets
        parts = []
        for k, v in record.items():
            part = f"{k} {v:.4g}"
            if k.startswith("keep") and k[4:].isdigit() and int(k[4:]) <= len(targets):
                part += f" (target {targets[int(k[4:]) - 1]:.4g})"
            parts.append(part)
        return "  ".join(parts)

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.module.state_dict(),
            "objective": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": self.state.epoch,
            "step": self.state.step,
            "best_score": self.state.best_score,
            "history": self.state.history,
            "settings": self.state.settings,
            "optimizer_class": optimizer_class_name(self.optimizer),
            "torch_rng": torch.get_rng_state(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_optimizer_state(state, self.optimizer, where="the state dict")
        self.module.load_state_dict(state["model"])
        self.objective.load_state_dict(state["objective"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.state = TrainState(
            epoch=int(state["epoch"]),
            step=int(state["step"]),
            best_score=float(state["best_score"]),
            history=list(state["history"]),
            settings=state.get("settings"),
        )
        if state.get("torch_rng") is not None:  # Gumbel noise continues where it stopped
            torch.set_rng_state(state["torch_rng"].cpu())
