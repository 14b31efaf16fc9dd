"""End-to-end: the Table IV reproduction on the smoke preset, and its input checks."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "reproduce_table4.py"


def run(*args, timeout=600):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_smoke_preset_end_to_end(tmp_path):
    out = tmp_path / "run"
    proc = run("--preset", "smoke", "--output-dir", out, "--workers", "0", "--no-progress")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads((out / "table4.json").read_text())
    assert [r["name"] for r in rows] == ["vanilla", "+HTS", "+HTS+NPKD", "+HTS+NPKD+NODA"]
    for r in rows:
        assert {"name", "throughput", "rank1", "mAP"} <= set(r)
        assert all(math.isfinite(r[k]) for k in ("throughput", "rank1", "mAP"))
        assert 0 <= r["rank1"] <= 100 and 0 <= r["mAP"] <= 100
    vanilla = rows[0]["throughput"]
    assert all(r["throughput"] > vanilla for r in rows[1:]), rows
    md = (out / "table4.md").read_text()
    assert md.count("\n|") == 6 and "synthetic" in md and "per core (1 thread)" in md
    meta = json.loads((out / "table4_meta.json").read_text())
    assert meta["throughput_threads"] == 1
    if meta["throughput_all_cores"] is not None:  # recorded when the machine has > 1 thread
        assert {r["name"] for r in rows} < set(meta["throughput_all_cores"])
    assert (out / "fig6_kept_tokens.png").stat().st_size > 0
    assert (out / "teacher.pt").is_file()
    assert "teacher loaded" not in proc.stdout

    # a rerun reuses the teacher and the finished rows' checkpoints: no training, same accuracy
    again = run("--preset", "smoke", "--output-dir", out, "--workers", "0", "--no-progress")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "teacher loaded" in again.stdout and again.stdout.count("resumed from") == 4
    assert "epoch 1 " not in again.stdout
    rows2 = json.loads((out / "table4.json").read_text())
    assert [(r["rank1"], r["mAP"]) for r in rows2] == [(r["rank1"], r["mAP"]) for r in rows]


def test_data_root_that_is_not_a_dataset_fails_before_training(tmp_path):
    (tmp_path / "not_a_dataset").mkdir()
    proc = run("--preset", "smoke", "--data-root", tmp_path / "not_a_dataset", "--output-dir", tmp_path / "o")
    assert proc.returncode != 0
    assert "bounding_box_train" in proc.stderr
    assert not (tmp_path / "o" / "teacher.pt").exists() and "epoch" not in proc.stdout


def test_missing_teacher_checkpoint_fails_before_training(tmp_path):
    proc = run("--preset", "smoke", "--teacher-checkpoint", tmp_path / "nope.pt", "--output-dir", tmp_path / "o")
    assert proc.returncode != 0
    assert "nope.pt" in proc.stderr and "does not exist" in proc.stderr
    assert "epoch" not in proc.stdout


@pytest.mark.parametrize("args,match", [
    (["--keep-ratio", "1.5"], "--keep-ratio"),
    (["--epochs", "0"], "--epochs"),
    (["--throughput-threads", "0"], "--throughput-threads"),
])
def test_bad_numbers(tmp_path, args, match):
    proc = run("--preset", "smoke", "--output-dir", tmp_path / "o", *args)
    assert proc.returncode != 0 and match in proc.stderr


def _load_example():
    import importlib.util

    spec = importlib.util.spec_from_file_location("reproduce_table4", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_table_rows_switch_the_paper_components():
    ex = _load_example()
    t4 = ex.table_rows(4, 0.7)
    assert [(r.hts, r.npkd, r.noda) for r in t4] == [
        (False, False, False), (True, False, False), (True, True, False), (True, True, True)]
    assert [r.keep_ratio for r in ex.table_rows(5, 0.7)] == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert {(r.align, r.direction) for r in ex.table_rows(6, 0.7)} == {
        ("linear", "s2t"), ("linear", "t2s"), ("interpolate", "s2t"), ("interpolate", "t2s")}
    assert [(r.hts, r.noda) for r in ex.table_rows(7, 0.7)] == [
        (False, False), (False, True), (True, False), (True, True)]
    assert set(ex.PRESETS) == {"smoke", "quick", "paper"}
    assert ex.PRESETS["paper"].img_size == (256, 128) and ex.PRESETS["paper"].optimizer == "sgd"
    assert ex.PRESETS["paper"].ids_per_batch * ex.PRESETS["paper"].instances == 64
