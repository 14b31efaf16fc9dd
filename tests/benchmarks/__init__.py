"""Tests of the scripts in benchmarks/: tiny sizes, the output's form, no timing."""

import runpy
from pathlib import Path
from types import SimpleNamespace

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark(name: str) -> SimpleNamespace:
    """The names ``benchmarks/<name>.py`` defines, freshly run (not as ``__main__``)."""
    return SimpleNamespace(**runpy.run_path(str(BENCHMARKS / f"{name}.py")))
