"""End-to-end: examples/train_protocol.py --smoke on tiny data made here, and its input checks."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from . import load_example

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "train_protocol.py"


def _script():
    return load_example("train_protocol")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """ROOT/Market-1501-v15.09.15 (synthetic smoke set) and, from its test images, ROOT/
    Occluded_REID and ROOT/Partial-REID in their release layouts (<pid>/<pid>_<n>.<ext>)."""
    import sureid

    root = tmp_path_factory.mktemp("data")
    market = root / "Market-1501-v15.09.15"
    sureid.make_synthetic_reid(market, preset="smoke", seed=0, progress=False)
    for name, query_folder in (("Occluded_REID", "occluded_body_images"),
                               ("Partial-REID", "partial_body_images")):
        for src, dst in (("query", query_folder), ("bounding_box_test", "whole_body_images")):
            for img in sorted((market / src).glob("*.jpg")):
                pid = int(img.name.split("_")[0])
                if pid == 0:  # distractors have no identity in these datasets
                    continue
                folder = root / name / dst / f"{pid:03d}"
                folder.mkdir(parents=True, exist_ok=True)
                n = len(list(folder.iterdir())) + 1
                shutil.copy(img, folder / f"{pid:03d}_{n:02d}.jpg")
    return root


def run(*args, timeout=300):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_cross_domain_smoke_end_to_end(data_root, tmp_path):
    out = tmp_path / "run"
    proc = run("--protocol", "market_to_occluded_partial", "--data-root", data_root, "--smoke",
               "--output-dir", out, "--workers", "0", "--no-progress")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "protocol.json").read_text())
    assert report["protocol"] == "market_to_occluded_partial" and report["table"] == "II"
    s = report["settings"]
    assert (s["alpha"], s["beta"], s["keep_ratio"], s["color_jitter"]) == (2.0, 1.0, 0.7, True)
    rows = {r["test"]: r for r in report["results"]}
    assert list(rows) == ["occluded_reid", "partial_reid"]
    for r in rows.values():
        assert all(0 <= r[k] <= 100 for k in ("rank1", "rank3", "rank5", "mAP"))
        assert r["rank1"] <= r["rank3"] <= r["rank5"] and r["num_queries"] > 0
    assert rows["occluded_reid"]["paper"] == {"rank1": 86.8, "mAP": 80.7, "rank3": None}
    assert rows["partial_reid"]["paper"] == {"rank1": 85.3, "mAP": None, "rank3": 90.7}
    assert any("color jitter" in n for n in report["not_in_paper"])
    md = (out / "protocol.md").read_text()
    assert "| occluded_reid |" in md and "86.8" in md and "90.7" in md and "smoke run" in md
    assert (out / "teacher.pt").is_file()

    import sureid

    model = sureid.load(out / "model.pt")
    assert model.metadata["protocol"] == "market_to_occluded_partial"


@pytest.mark.slow
def test_same_dataset_smoke_and_teacher_reuse(data_root, tmp_path):
    script = _script()
    out = tmp_path / "run"
    args = ["--protocol", "market1501", "--data-root", str(data_root), "--smoke",
            "--output-dir", str(out), "--workers", "0", "--no-progress"]
    report = script.main(args)
    (row,) = report["results"]
    assert row["test"] == "market1501" and row["paper"]["rank1"] == 94.5
    assert row["num_queries"] == 32
    assert (report["settings"]["alpha"], report["settings"]["color_jitter"]) == (1.0, False)
    # a second run into the same folder reuses the teacher and the finished student
    again = script.main(args)
    assert again["results"][0]["rank1"] == row["rank1"]


def test_missing_dataset_folder_exits_2_before_training(data_root, tmp_path, capsys):
    out = tmp_path / "run"
    # market1501 is there, DukeMTMC-reID is not
    code = _script().run(["--protocol", "dukemtmc", "--data-root", str(data_root), "--smoke",
                          "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: protocol 'dukemtmc'")
    assert "bounding_box_train" in err and "DukeMTMC-reID" in err
    assert not out.exists()


def test_missing_test_dataset_names_its_folder(data_root, tmp_path, capsys):
    train_only = tmp_path / "only_market"
    train_only.mkdir()
    (train_only / "Market-1501-v15.09.15").symlink_to(data_root / "Market-1501-v15.09.15")
    out = tmp_path / "run"
    code = _script().run(["--protocol", "market_to_partial_reid", "--data-root", str(train_only),
                          "--smoke", "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "partial_body_images" in err and "Partial-REID" in err
    assert not out.exists()


def test_separate_train_and_test_roots(data_root, tmp_path):
    script = _script()
    args = script.parse_args(["--protocol", "market_to_occluded_reid",
                              "--train-root", str(data_root / "Market-1501-v15.09.15"),
                              "--test-root", str(data_root / "Occluded_REID")])
    script.check_args(args)
    train, tests = script.read_data(script.PROTOCOLS[args.protocol], args)
    assert train.name == "market1501" and list(tests) == ["occluded_reid"]
    assert not tests["occluded_reid"].train and tests["occluded_reid"].query


@pytest.mark.parametrize("argv, message", [
    ([], "--data-root is required"),
    (["--data-root", "x", "--epochs", "0"], "--epochs must be >= 1, got 0"),
    (["--data-root", "x", "--workers", "-1"], "--workers must be >= 0, got -1"),
    (["--data-root", "x", "--device", "gpu0"], "--device must be a torch device"),
    (["--data-root", "x", "--teacher-checkpoint", "nope.pt"], "'nope.pt' does not exist"),
    (["--data-root", "DATA", "--student-weights", "nope.pth"],
     "--student-weights 'nope.pth' does not exist"),
])
def test_bad_arguments_exit_2(argv, message, data_root, tmp_path, capsys):
    argv = [str(data_root) if a == "DATA" else a for a in argv]
    out = tmp_path / "run"
    code = _script().run(["--protocol", "market1501", "--smoke", "--output-dir", str(out), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not out.exists()


def test_unknown_protocol_is_refused(tmp_path):
    proc = run("--protocol", "cuhk03", "--data-root", tmp_path)
    assert proc.returncode == 2 and "invalid choice: 'cuhk03'" in proc.stderr


def test_pretrained_weights_that_cannot_be_had(data_root, tmp_path, capsys, monkeypatch):
    """Without --smoke the student starts from timm's weights: no hub means an error naming
    --student-weights, before anything is trained."""
    script = _script()

    def no_hub(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr("sureid.ablation.recipe.build_backbone", no_hub)
    out = tmp_path / "run"
    code = script.run(["--protocol", "market1501", "--data-root", str(data_root),
                       "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "deit_small_distilled_patch16_224" in err
    assert "OSError: no network" in err and "--student-weights PATH" in err
    assert not out.exists()
