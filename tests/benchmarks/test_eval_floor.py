"""benchmarks/eval_floor.py at tiny sizes: a cold run in a fresh process, then the warm ones."""

import sys

import pytest

from . import load_benchmark


@pytest.mark.slow  # a fresh Python process: imports torch again
def test_cold_and_warm_sections(monkeypatch, capsys):
    script = load_benchmark("eval_floor")
    monkeypatch.setattr(sys, "argv", [
        "eval_floor.py", "--gallery", "2000", "--queries", "20", "--kinds", "clustered",
        "--repeats", "1", "--cold-runs", "1", "--check", "4",
    ])
    script.main()
    out = capsys.readouterr().out
    assert out.startswith("CPU ")
    assert "[cold, clustered] 20 x 2000 x 768" in out
    # below the compiled kernel's gallery size: nothing is loaded, and the run says so
    assert "run 1: cold evaluate" in out and "nothing compiled" in out
    assert "[warm] this process" in out and "[clustered] 20 x 2000 x 768" in out
    assert "4 queries: AP, INP, first match identical" in out
