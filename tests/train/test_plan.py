"""sureid.train.plan: a bad input ends ``sureid train`` with one line before anything is
written."""

import re

import pytest

from sureid.cli import main


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
    assert re.search(match, err), err
    assert not (tmp_path / "o").exists()
