"""``sureid train`` end to end on the smoke preset and a tiny synthetic folder: outputs,
exact repeats from the written config, resume, a loaded teacher and ONNX export."""

import json
import shutil

import pytest
import torch

import sureid
from sureid.cli import main
from sureid.train import dumps, load_config, merge, to_dict

from .runs import CONFIG, FAST, read_rows, same_weights


def test_writes_a_loadable_model_a_log_and_the_config(first, data):
    assert sorted(p.name for p in first.iterdir()) == [
        "best.pt", "checkpoints", CONFIG, "log.csv", "model.pt", "teacher.pt"]
    model = sureid.load(first / "model.pt")
    assert model.data_config.input_size == (64, 32)
    assert model.backbone.prune and model.backbone.keep_ratios[0] == pytest.approx(0.7)
    out = model(torch.zeros(2, 3, 64, 32))
    assert out.shape == (2, 64) and torch.isfinite(out).all()
    assert sureid.load(first / "best.pt").metadata["epoch"] == 1
    assert sureid.load(first / "teacher.pt").embed_dim == 96
    cfg, fmt = load_config(first / CONFIG)
    assert f"config.{fmt}" == CONFIG and cfg.data.root == str(data.resolve())
    assert cfg.student.embed_dim == 64 and cfg.data.workers == 0 and cfg.log.steps == 1
    rows = read_rows(first)
    # 3 steps and an epoch row for each of the teacher and the student
    assert [(r["stage"], r["kind"]) for r in rows] == (
        [("teacher", "step")] * 3 + [("teacher", "epoch")]
        + [("student", "step")] * 3 + [("student", "epoch")])
    last = rows[-1]
    for key in ("total", "cls", "tri", "kd", "ratio", "aux_cls", "keep1", "keep3", "lr0", "lr1",
                "rank1", "mAP", "mINP"):
        assert float(last[key]) == float(last[key]), key  # a number, not empty or NaN
    assert rows[0]["mAP"] == "" and rows[3]["mAP"] != ""  # the teacher's own evaluation
    assert float(last["mAP"]) == pytest.approx(sureid.load(first / "best.pt").metadata["mAP"],
                                               rel=1e-5)


def test_the_written_config_repeats_the_run_exactly(first, tmp_path, capsys):
    again = tmp_path / "again"
    assert main(["train", str(first / CONFIG), "-o", str(again), "--no-progress"]) == 0
    assert same_weights(first / "model.pt", again / "model.pt")
    assert same_weights(first / "teacher.pt", again / "teacher.pt")
    assert read_rows(again) == read_rows(first)
    assert (again / CONFIG).read_text() == (first / CONFIG).read_text()


def test_the_same_command_resumes_and_trains_nothing(first, data, capsys):
    before = read_rows(first)
    argv = ["train", "--preset", "smoke", "--data-root", str(data), "-o", str(first),
            "--set", "log.steps=1", *FAST]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "[teacher] resumed from" in printed and "[student] resumed from" in printed
    assert "epoch 1 " not in printed
    assert read_rows(first) == before
    assert main(["train", str(first / CONFIG), "-o", str(first), "--no-progress"]) == 0


def test_an_interrupted_run_resumes_its_log(first, tmp_path):
    out = tmp_path / "cut"
    shutil.copytree(first, out)
    (out / "model.pt").unlink()
    # as if killed after the student's log rows but before its checkpoint: the rows are redone
    (out / "checkpoints" / "student.pt").unlink()
    assert main(["train", str(out / CONFIG), "-o", str(out), "--no-progress"]) == 0
    assert read_rows(out) == read_rows(first)
    assert same_weights(first / "model.pt", out / "model.pt")


def test_a_json_config_with_a_trained_teacher_and_epoch_rows_only(first, data, tmp_path):
    cfg = load_config(first / CONFIG)[0]
    cfg = merge(cfg, {"teacher": {"source": "checkpoint",
                                  "checkpoint": str(first / "teacher.pt")},
                      "data": {"noda": False}, "log": {"steps": 0}})
    path = tmp_path / "run.json"
    path.write_text(dumps(cfg, "json"))
    out = tmp_path / "out"
    assert main(["train", str(path), "-o", str(out), "--no-progress"]) == 0
    assert json.loads((out / "config.json").read_text()) == to_dict(cfg)
    assert not (out / "teacher.pt").exists() and (out / "model.pt").is_file()
    rows = read_rows(out)
    assert [(r["stage"], r["kind"]) for r in rows] == [("student", "epoch")]
    assert float(rows[0]["kd"]) > 0


def test_the_trained_model_deploys_to_onnx(first, tmp_path):
    pytest.importorskip("onnxruntime")
    assert main(["export", str(first / "model.pt"), str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 0
