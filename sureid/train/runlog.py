"""The log of a training run: ``log.csv`` and, when ``tensorboard`` imports, its events."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..engine import Trainer
from .folders import _write_text

__all__ = ["RunLog"]


class RunLog:
    """``log.csv`` and, when ``tensorboard`` imports, TensorBoard events of a run.

    One row per call of :meth:`write`; the header grows when a stage brings new columns
    (the file is then rewritten once). A stage that resumes at step ``S`` first drops its
    rows after ``S`` (written after the checkpoint it resumes from).
    """

    FIRST = ("stage", "kind", "epoch", "step")

    def __init__(self, folder: Path, *, tensorboard: bool, log: Callable[[str], None]):
        self.path = folder / "log.csv"
        self.folder, self.log = folder, log
        self.tensorboard = tensorboard
        self.columns: list[str] = list(self.FIRST)
        self.rows: list[dict[str, str]] = []
        if self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or self.FIRST)
                self.rows = list(reader)
        self._writers: dict[str, Any] = {}

    def start(self, stage: str, step: int) -> None:
        """``stage`` (re)starts after ``step`` optimizer steps: later rows are dropped."""
        keep = [r for r in self.rows if r["stage"] != stage or int(r["step"]) <= step]
        if len(keep) != len(self.rows):
            self.rows = keep
            self._rewrite()
        if self.tensorboard and stage not in self._writers:
            self._writers[stage] = self._summary_writer(stage, step)

    def _summary_writer(self, stage: str, step: int):
        try:
            from torch.utils.tensorboard import SummaryWriter  # needs `pip install tensorboard`
        except ImportError:
            if not self._writers:
                self.log("tensorboard is not installed: log.csv only")
            self.tensorboard = False
            return None
        return SummaryWriter(str(self.folder / "tensorboard" / stage), purge_step=step + 1)

    def write(self, row: Mapping[str, object]) -> None:
        """Append ``row`` (``stage``, ``kind``, ``epoch``, ``step``, then numbers) to the log;
        its floats also go to the stage's TensorBoard events."""
        text = {k: _cell(v) for k, v in row.items()}
        new = [k for k in text if k not in self.columns]
        self.rows.append(text)
        if new or not self.path.is_file():
            self.columns += new
            self._rewrite()
        else:
            with open(self.path, "a", newline="", encoding="utf-8") as f:
                csv.DictWriter(f, self.columns).writerow(text)
        writer = self._writers.get(str(row["stage"]))
        if writer is not None:
            for k, v in row.items():
                if k not in self.FIRST and isinstance(v, float):
                    writer.add_scalar(f"{row['kind']}/{k}", v, int(row["step"]))
            writer.flush()

    def _rewrite(self) -> None:
        text = io.StringIO(newline="")  # csv's \r\n kept as written
        w = csv.DictWriter(text, self.columns)
        w.writeheader()
        w.writerows(self.rows)
        _write_text(self.path, text.getvalue(), newline="")

    def close(self) -> None:
        """Close the TensorBoard writers (``log.csv`` is closed after every write)."""
        for writer in self._writers.values():
            if writer is not None:
                writer.close()
        self._writers.clear()


def _cell(value: object) -> str:
    """``value`` as a ``log.csv`` cell: floats to 6 significant digits."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _lrs(trainer: Trainer) -> dict[str, float]:
    """``lr0``, ``lr1``, ...: the learning rate of each parameter group (make_optimizer: 0 is
    the ViT's own weights, 1 the new layers)."""
    return {f"lr{i}": float(g["lr"]) for i, g in enumerate(trainer.optimizer.param_groups)}
