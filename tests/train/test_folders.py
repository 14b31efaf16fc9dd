"""sureid.train.folders: which output folders a run writes into, resumes or refuses, and
how weights settings name their files."""

import re
import shutil

import pytest

from sureid.cli import main
from sureid.train import OUTPUT_NAMES, load_config, prepare
from sureid.train.folders import _weights_file

from .runs import CONFIG, FAST


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
    assert re.search(match, err), err
    assert (sorted(p.name for p in out.iterdir()) if out.is_dir() else None) == listing


def test_files_a_killed_run_left_do_not_stop_a_resume(first, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(first, out)
    (out / ".log.csv.tmp-host-1-abcd").write_text("partial")
    assert main(["train", str(out / CONFIG), "-o", str(out), "--no-progress"]) == 0
    assert {p.name for p in out.iterdir()} <= {*OUTPUT_NAMES, CONFIG, ".log.csv.tmp-host-1-abcd"}


def test_a_config_of_the_other_format_is_refused(first, data, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(first, out)
    other = "config.json" if CONFIG == "config.toml" else "config.toml"
    (out / CONFIG).rename(out / other)
    cfg_file = tmp_path / CONFIG
    shutil.copy(first / CONFIG, cfg_file)
    with pytest.raises(FileExistsError, match=f"holds {other}, this run's config is {CONFIG}"):
        prepare(load_config(cfg_file)[0], out, fmt=CONFIG.rpartition(".")[2], progress=False)


def test_weights_name_a_file_or_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.setenv("SUREID_WEIGHTS_DIR", str(tmp_path / "shipped"))
    (tmp_path / "shipped").mkdir()
    (tmp_path / "shipped" / "mine.pt").write_bytes(b"")
    (tmp_path / "w.pth").write_bytes(b"")
    assert _weights_file("student.weights", "") is None
    assert _weights_file("student.weights", "timm") is None
    assert _weights_file("student.weights", str(tmp_path / "w.pth")) == tmp_path / "w.pth"
    assert _weights_file("student.weights", "mine") == (tmp_path / "shipped" / "mine.pt")
    with pytest.raises(FileNotFoundError, match=r"student\.weights 'other': no such file, and "
                                                r"not a shipped name in .*SUREID_WEIGHTS_DIR"):
        _weights_file("student.weights", "other")
