"""A small, readable ReID training loop for the Eq. 14 objective."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._amp import autocast_available, autocast_to, grad_scaler
from .._checks import check_output_path, check_real, is_int, is_real
from .._progress import Progress
from ..losses.objective import SUReIDLoss
from ..models.model_file import model_config
from ..models.reid_model import ReIDModel
from ..models.teacher import FrozenTeacher
from .checkpoint import check_settings, load_checkpoint, normalize_settings, save_checkpoint

_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _amp_dtype(amp: object, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp``; refuses unknown values and devices without autocast."""
    if amp is None:
        return None
    if not isinstance(amp, str) or amp not in _AMP_DTYPES:
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


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images (B', 3, H, W), labels (B',))`` from a loader batch.

    Accepts an ``(images, pids, ...)`` tuple/list, or a batch with a ``joint()`` method
    returning ``(images, (pids, ...))``, such as a :class:`~sureid.DualBatch` (both halves
    stacked, ``B' = 2B``, the paper's dual-batch scheme).
    """
    joint = getattr(batch, "joint", None)
    if callable(joint):
        images, targets = joint()
        return images, targets[0]
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        images, labels = batch[0], batch[1]
        if (
            isinstance(images, torch.Tensor)
            and isinstance(labels, torch.Tensor)
            and labels.ndim == images.ndim == 4
        ):
            raise TypeError(
                "a training batch must be (images (B, 3, H, W), pids (B,), ...), got two image "
                f"tensors {tuple(images.shape)} and {tuple(labels.shape)}: this looks like "
                "sureid.DualViewDataset items merged by the default collate; build the "
                "DataLoader with collate_fn=sureid.dual_collate"
            )
        if isinstance(labels, torch.Tensor) and (
            labels.ndim != 1 or labels.is_floating_point() or labels.is_complex()
        ):
            raise TypeError(
                "a training batch must be (images (B, 3, H, W), pids (B,), ...) with integer "
                f"pids, got pids of shape {tuple(labels.shape)} and dtype {labels.dtype}"
            )
        return images, labels
    raise TypeError(
        "a training batch must be a sureid.DualBatch or an (images, pids, ...) tuple, "
        f"got {type(batch).__name__}"
    )


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


def _qualname(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _check_optimizer_state(state: Mapping[str, Any], optimizer: torch.optim.Optimizer,
                           *, where: str) -> None:
    """Refuse optimizer state saved by another optimizer (class, or groups and parameters).

    ``torch.optim.Optimizer.load_state_dict`` takes another class's hyper-parameters as they
    are, so e.g. an SGD checkpoint resumed with Adam failed at the first step with
    ``KeyError: 'betas'``. Checked before anything is loaded.
    """
    saved = state.get("optimizer")
    if not isinstance(saved, Mapping) or not isinstance(saved.get("param_groups"), list):
        raise ValueError(f"{where} holds no optimizer state dict (no 'param_groups')")
    have = _qualname(optimizer)
    cls = state.get("optimizer_class")
    if cls is not None and cls != have:
        raise ValueError(
            f"{where} was trained with the optimizer {cls}, this Trainer has {have}: its "
            "state (momentum buffers, hyper-parameters) does not carry over; build the same "
            "optimizer, or resume=False to train from scratch"
        )
    groups, now = saved["param_groups"], optimizer.param_groups
    sizes = [len(g.get("params", ())) for g in groups]
    want = [len(g["params"]) for g in now]
    if sizes != want:
        raise ValueError(
            f"{where}: the optimizer state has parameter groups of sizes {sizes}, this "
            f"optimizer {want}; build the optimizer over the same parameters in the same order"
        )
    # a checkpoint without the class (older sureid): a hyper-parameter this optimizer needs
    # and the saved groups lack means another class (bool/None flags get torch's defaults)
    for i, (old, new) in enumerate(zip(groups, now, strict=True)):
        missing = sorted(k for k, v in new.items() if k != "params" and k not in old
                         and not isinstance(v, (bool, type(None))))
        if missing:
            raise ValueError(
                f"{where}: parameter group {i} of the saved optimizer state lacks {missing}, "
                f"which {have} needs: it was saved by another optimizer class; build the same "
                "optimizer, or resume=False to train from scratch"
            )


@dataclass
class TrainState:
    """What a checkpoint resumes: the position in training and the best score so far."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best_score: float = -math.inf
    history: list[dict[str, float]] = field(default_factory=list)
    settings: dict[str, Any] | None = None  # what the run was trained with (JSON values)


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
        >>> trainer = Trainer(model, SUReIDLoss(use_kd=False), optimizer)  # doctest: +SKIP
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
                "objective uses NPKD (use_kd=True) but teacher is None; pass a FrozenTeacher"
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
            eval_fn: called on the unwrapped model (in eval mode) every ``eval_every``
                epochs and after the last one; returns metrics, ``"mAP"`` is the score
                tracked as best. Every value must be a finite number.
            checkpoint_path: written (main process only) after every epoch.
            resume: load ``checkpoint_path`` when it exists; ``False`` trains from scratch
                and overwrites it.
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
            ValueError: bad ``epochs``; ``checkpoint_path`` or ``model_path`` is a folder, lies
                below a file, or both are the same file (checked before training); the
                checkpoint's settings differ from ``settings`` (each differing key is named
                with both values) or it stores none; the checkpoint's optimizer state is of
                another optimizer class or parameter layout; the loader yields no batch in an
                epoch.
            FloatingPointError: a non-finite loss, or ``eval_fn`` returns NaN or infinity.
        """
        if not is_int(epochs) or epochs < 1:
            raise ValueError(f"epochs must be a positive int, got {epochs!r}")
        if not is_int(eval_every) or eval_every < 0:
            raise ValueError(
                f"eval_every must be an int >= 0 (0: after the last epoch only), got {eval_every!r}"
            )
        epochs, eval_every = int(epochs), int(eval_every)  # numpy ints stored as plain ints
        if eval_fn is not None and not callable(eval_fn):
            raise TypeError(f"eval_fn must be callable or None, got {type(eval_fn).__name__}")
        if model_path is not None and not callable(getattr(self.module, "save", None)):
            raise TypeError(f"model_path needs a model with a save() method (a sureid "
                            f"ReIDModel), got {type(self.module).__name__}")
        if model_path is not None and isinstance(self.module, ReIDModel):
            model_config(self.module)  # refuses a backbone save could not describe, now
        # output paths first: a folder here used to fail after the first or the last epoch
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
        wanted = normalize_settings(settings) if settings is not None else None
        if checkpoint_path is not None and resume and checkpoint_path.is_file():
            state = load_checkpoint(checkpoint_path, map_location=self.device)
            if wanted is not None:  # before anything is loaded into the trainer
                check_settings(state.get("settings"), wanted, path=checkpoint_path)
            _check_optimizer_state(state, self.optimizer, where=repr(str(checkpoint_path)))
            self.load_state_dict(state)
            if self.is_main:
                self.log(f"resumed from {checkpoint_path} at epoch {self.state.epoch}")
                if wanted is None and self.state.settings is not None:
                    self.log(f"settings=None: the checkpoints of this run store no settings "
                             f"(the resumed one had {self.state.settings})")
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
            "optimizer_class": _qualname(self.optimizer),
            "torch_rng": torch.get_rng_state(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_optimizer_state(state, self.optimizer, where="the state dict")
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
