"""What every training of one reproduction run shares: its output folder, device, loader
workers, progress display and log; with the three things both example scripts do with them
(the occluder bank, a test split read once, one resumable training)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..data import ImageDataset
from ..engine import Trainer
from ..transforms import OccluderBank, make_procedural_occluders, save_occluders
from .presets import Preset
from .recipe import Weights, make_optimizer, train_loader
from .teacher import fine_tune_teacher, teacher_settings

__all__ = ["DATA_SEED", "Workspace", "log_line", "slug"]

DATA_SEED = 0  # the synthetic benchmark and the occluders do not change with training seeds


def log_line(msg: str) -> None:
    """The examples' log: ``HH:MM:SS msg`` on stdout, flushed."""
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def slug(name: str) -> str:
    """A file-name stem for a row or run name: ``"+HTS+NPKD seed 0"`` -> ``"hts_npkd_seed_0"``."""
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()


@dataclass
class Workspace:
    """One run's output folder and the settings every training in it shares.

    Attributes:
        out: the output folder (checkpoints go to ``out / "checkpoints"``).
        device: where models train and are evaluated.
        workers: DataLoader workers for training and test loaders.
        progress: show progress bars.
        log: called with each log line.
    """

    out: Path
    device: torch.device
    workers: int = 0
    progress: bool = True
    log: Callable[[str], None] = field(default=log_line)

    def occluders(self, folder: Path | None, count: int = 200) -> tuple[OccluderBank, Path]:
        """``(bank, folder)``: the user's occluder folder, or ``count`` procedural occluders
        written once under ``out / "occluders"`` (rewritten when absent or incomplete)."""
        if folder is not None:
            return OccluderBank(folder), Path(folder)
        folder = self.out / "occluders"
        try:
            return OccluderBank(folder), folder
        except (FileNotFoundError, ValueError):  # absent, or left incomplete: (re)write it
            save_occluders(make_procedural_occluders(count, seed=DATA_SEED), folder)
            return OccluderBank(folder), folder

    def test_loader(self, records, transform) -> DataLoader:
        """A test split in order, batches of 128."""
        return DataLoader(ImageDataset(records, transform=transform), batch_size=128,
                          num_workers=self.workers)

    def decoded(self, records, transform) -> list[tuple]:
        """A test split read and transformed once: the ``(images, pids, camids)`` batches
        every evaluation reuses."""
        return [tuple(batch[:3]) for batch in self.test_loader(records, transform)]

    def fit(self, name: str, model, objective, teacher, *, records, preset: Preset, first,
            second, epochs: int, seed: int, settings: dict) -> None:
        """Train ``model`` on ``records`` with the preset's loader and optimizer, resumable
        from ``out/checkpoints/<slug(name)>.pt`` when its settings match."""
        loader = train_loader(records, preset, first=first, second=second,
                              workers=self.workers, seed=seed)
        opt, sched = make_optimizer(preset, model, objective, len(loader), epochs)
        trainer = Trainer(model.to(self.device), objective, opt, scheduler=sched,
                          teacher=teacher, device=self.device, grad_clip=preset.grad_clip,
                          log=lambda s: self.log(f"[{name}] {s}"))
        trainer.fit(loader, epochs=epochs,
                    checkpoint_path=self.out / "checkpoints" / f"{slug(name)}.pt",
                    progress=self.progress, settings=settings)

    def teacher(self, weights: Weights, *, records, preset: Preset, first, num_classes: int,
                common: dict, seed: int, checkpoint: Path | None = None):
        """``(teacher, settings)``: the dense teacher fine-tuned once on ``records`` (ID +
        triplet, ``preset.teacher_epochs``) and cached in ``out / "teacher.pt"``, or loaded
        from ``checkpoint`` (trusted: a file the user named). ``settings`` identify it
        (:func:`~sureid.ablation.teacher.teacher_settings`)."""
        settings = teacher_settings(common, seed=seed, weights=weights)
        net = fine_tune_teacher(
            weights, preset.img_size, num_classes,
            path=checkpoint or self.out / "teacher.pt", settings=settings,
            trusted=checkpoint is not None, device=self.device, seed=seed, log=self.log,
            fit=lambda model, objective: self.fit(
                "teacher", model, objective, None, records=records, preset=preset, first=first,
                second=None, epochs=preset.teacher_epochs, seed=seed, settings=settings))
        return net, settings
