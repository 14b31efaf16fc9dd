"""Kept for imports of ``sureid.engine.progress.Progress``; the bar lives in ``sureid._progress``
so that every package (data generation, inference, the engine) may use it."""

from .._progress import Progress

__all__ = ["Progress"]
