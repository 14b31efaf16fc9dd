"""``sureid train`` end to end on the smoke preset and a tiny synthetic folder: outputs,
exact repeats from the written config, resume, and refusals before any work."""

import csv
import json
import shutil

import pytest
import torch

import sureid
from sureid.cli import main
from sureid.train import RunLog, default_format, detect_layout, dumps, load_config, merge, to_dict

FAST = ["--no-progress", "--set", "data.workers=0"]
CONFIG = f"config.{default_format()}"  # toml, or json on Python 3.10 without tomli


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "smoke"
    sureid.make_synthetic_reid(root, preset="smoke", progress=False)
    return root


@pytest.fixture(scope="module")
def first(data, tmp_path_factory):
    """The documented command, run once for the tests of this module."""
    out = tmp_path_factory.mktemp("runs") / "out"
    torch.manual_seed(0)
    assert main(["train", "--preset", "smoke", "--data-root", str(data), "-o", str(out),
                 "--set", "log.steps=1", *FAST]) == 0
    return out


def _rows(out):
    with open(out / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def _same_weights(a, b):
    sa, sb = sureid.load(a).state_dict(), sureid.load(b).state_dict()
    assert list(sa) == list(sb)
    return all(torch.equal(sa[k], sb[k]) for k in sa)


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
    rows = _rows(first)
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
    assert _same_weights(first / "model.pt", again / "model.pt")
    assert _same_weights(first / "teacher.pt", again / "teacher.pt")
    assert _rows(again) == _rows(first)
    assert (again / CONFIG).read_text() == (first / CONFIG).read_text()


def test_the_same_command_resumes_and_trains_nothing(first, data, capsys):
    before = _rows(first)
    argv = ["train", "--preset", "smoke", "--data-root", str(data), "-o", str(first),
            "--set", "log.steps=1", *FAST]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "[teacher] resumed from" in printed and "[student] resumed from" in printed
    assert "epoch 1 " not in printed
    assert _rows(first) == before
    assert main(["train", str(first / CONFIG), "-o", str(first), "--no-progress"]) == 0


def test_an_interrupted_run_resumes_its_log(first, tmp_path):
    out = tmp_path / "cut"
    shutil.copytree(first, out)
    (out / "model.pt").unlink()
    # as if killed after the student's log rows but before its checkpoint: the rows are redone
    (out / "checkpoints" / "student.pt").unlink()
    assert main(["train", str(out / CONFIG), "-o", str(out), "--no-progress"]) == 0
    assert _rows(out) == _rows(first)
    assert _same_weights(first / "model.pt", out / "model.pt")


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
    rows = _rows(out)
    assert [(r["stage"], r["kind"]) for r in rows] == [("student", "epoch")]
    assert float(rows[0]["kd"]) > 0


@pytest.mark.parametrize("case", ["foreign file", "other config", "inside the data",
                                  "a file", "holds the data"])
def test_output_folders_that_are_refused_before_any_work(first, data, tmp_path, capsys, case):
    argv = ["train", "--preset", "smoke", "--data-root", str(data), *FAST]
    if case == "foreign file":
        out = tmp_path / "out"
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        match = "holds files and no config.toml/config.json"
    elif case == "other config":
        out = tmp_path / "out"
        shutil.copytree(first, out)
        argv += ["--set", "schedule.epochs=2"]
        match = "another config.*schedule.epochs 1 -> 2"
    elif case == "inside the data":
        out = data / "runs"
        match = "inside the input folder"
    elif case == "a file":
        out = tmp_path / "f"
        out.write_text("x")
        match = "must be a folder path"
    else:
        out = data.parent
        match = "holds the input"
    listing = sorted(p.name for p in out.iterdir()) if out.is_dir() else None
    assert main([*argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sureid: error: ") and err.count("\n") == 1
    assert pytest.importorskip("re").search(match, err), err
    assert (sorted(p.name for p in out.iterdir()) if out.is_dir() else None) == listing


@pytest.mark.parametrize("argv, match", [
    (["--preset", "smoke", "-o", "{tmp}/o"], "data.root is not set"),
    (["--preset", "smoke", "--data-root", "{tmp}/none", "-o", "{tmp}/o"],
     "data.root .*none' is not a folder"),
    (["--preset", "smoke", "--data-root", "{data}"], "-o/--output OUT is required"),
    (["--preset", "nope", "--data-root", "{data}", "-o", "{tmp}/o"], "--preset must be one of"),
    (["{tmp}/bad.json", "--data-root", "{data}", "-o", "{tmp}/o"], r"unknown key data\.foo"),
    (["--data-root", "{data}", "--set", "student.weights={tmp}/none.pt", "-o", "{tmp}/o"],
     "student.weights .*none.pt': no such file"),
    (["--data-root", "{data}", "--set", "teacher.source=checkpoint", "--set",
      "teacher.checkpoint={tmp}/bad.json", "-o", "{tmp}/o"], "teacher.checkpoint"),
    (["--preset", "smoke", "--data-root", "{data}", "--set", "data.ids_per_batch=100",
      "-o", "{tmp}/o"], "data .*P = data.ids_per_batch"),
    (["--preset", "smoke", "--data-root", "{data}", "--set", "data.layout=partial_reid",
      "-o", "{tmp}/o"], "partial_reid"),
    (["--preset", "smoke", "--data-root", "{data}", "--set", "device=gpu", "-o", "{tmp}/o"],
     "device 'gpu' cannot be used"),
])
def test_bad_inputs_end_with_one_line_and_write_nothing(data, tmp_path, capsys, argv, match):
    (tmp_path / "bad.json").write_text('{"data": {"foo": 1}}')
    argv = [a.format(tmp=tmp_path, data=data) for a in argv]
    assert main(["train", *argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sureid: error: ") and err.count("\n") == 1
    assert pytest.importorskip("re").search(match, err), err
    assert not (tmp_path / "o").exists()


def test_template_prints_the_defaults(capsys):
    assert main(["train", "--template"]) == 0
    text = capsys.readouterr().out
    assert "[student]" in text and "# HTS keep ratio" in text
    assert main(["train", "--template", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["schedule"]["lr"] == 0.008


def test_detect_layout(tmp_path, data):
    assert detect_layout(data) == "occluded_duke"
    market = tmp_path / "market"
    for sub in ("bounding_box_train", "query", "bounding_box_test"):
        (market / sub).mkdir(parents=True)
    (market / "query" / "0002_c1s1_000451_03.jpg").write_bytes(b"")
    assert detect_layout(market) == "market1501"
    custom = tmp_path / "custom"
    (custom / "query").mkdir(parents=True)
    assert detect_layout(custom) == "custom"
    with pytest.raises(FileNotFoundError, match="no known layout"):
        detect_layout(tmp_path)


def test_run_log_drops_rows_a_resumed_stage_redoes(tmp_path):
    log = RunLog(tmp_path, tensorboard=False, log=print)
    for step in (1, 2, 3):
        log.write({"stage": "teacher", "kind": "step", "epoch": 1, "step": step, "total": 1.0})
    log.write({"stage": "student", "kind": "step", "epoch": 1, "step": 1, "total": 2.0,
               "kd": 0.5})
    log = RunLog(tmp_path, tensorboard=False, log=print)  # a new process reads the file
    assert log.columns == ["stage", "kind", "epoch", "step", "total", "kd"]
    log.start("teacher", 2)
    log.start("student", 0)
    assert [(r["stage"], r["step"]) for r in _rows(tmp_path)] == [("teacher", "1"),
                                                                  ("teacher", "2")]


def test_the_trained_model_deploys_to_onnx(first, tmp_path):
    pytest.importorskip("onnxruntime")
    assert main(["export", str(first / "model.pt"), str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 0
