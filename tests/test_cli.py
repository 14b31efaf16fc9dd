import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sureid.cli import _labels_of, build_parser, main
from tests.smoke_run import smoke_run

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["extract", "evaluate", "rank", "export", "info"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return smoke_run(tmp_path_factory.getbasetemp() / "smoke_run")


def test_help_of_the_console_script():
    out = subprocess.run([sys.executable, "-m", "sureid.cli", "--help"], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0
    assert all(c in out.stdout for c in COMMANDS) and "examples:" in out.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_each_subcommand(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: sureid {command}" in text and "example" in text and "model" in text


def test_extract_evaluate_rank_end_to_end(run, tmp_path, capsys):
    model, data = run["model"], run["data"]
    feats = tmp_path / "q.pt"
    assert main(["extract", model, f"{data}/query", "-o", str(feats), "--no-progress",
                 "--kept"]) == 0
    state = torch.load(feats, weights_only=True)
    want = torch.load(Path(model).parent / "query_feats.pt")
    assert torch.equal(state["features"], want)
    assert len(state["paths"]) == len(want) and state["pids"].shape == (len(want),)
    assert len(state["kept"]) == 2

    out_json = tmp_path / "r.json"
    assert main(["evaluate", model, "--data-root", data, "--no-progress",
                 "--json", str(out_json)]) == 0
    result = json.loads(out_json.read_text())
    assert result["rank1"] == run["rank1"] and result["mAP"] == run["mAP"]
    assert main(["evaluate", model, "--data-root", data, "--no-progress", "--rerank"]) == 0
    assert "re-ranked" in capsys.readouterr().out

    ranks = tmp_path / "ranks"
    assert main(["rank", model, f"{data}/query", f"{data}/bounding_box_test", "--topk", "5",
                 "-o", str(ranks), "--max-pictures", "3", "--no-progress"]) == 0
    with open(ranks / "ranking.csv") as f:
        rows = list(csv.DictReader(f))
    num_q = len(state["paths"])
    assert len(rows) == 5 * num_q
    assert set(rows[0]) == {"query", "rank", "gallery", "distance", "match"}
    assert {r["match"] for r in rows} <= {"0", "1"}
    for r in rows:  # same pid and camera never listed
        assert _labels_of(r["query"]) != _labels_of(r["gallery"])
    assert len(list(ranks.glob("*.png"))) == 3
    assert main(["info", model]) == 0
    assert "GFLOPs" in capsys.readouterr().out


def test_export(run, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    assert main(["export", run["model"], str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 0


@pytest.mark.parametrize("argv,message", [
    (["extract", "{tmp}/missing.pt", "{data}/query", "-o", "{tmp}/f.pt"], "model file not found"),
    (["extract", "{model}", "{tmp}/nope", "-o", "{tmp}/f.pt"], "no such image or folder"),
    (["extract", "{tmp}/text.pt", "{data}/query", "-o", "{tmp}/f.pt"], "not a sureid model"),
    (["evaluate", "{model}", "--data-root", "{tmp}/nope"], "not found"),
    (["rank", "{model}", "{data}/query", "{tmp}/nope", "-o", "{tmp}/r"], "gallery folder"),
    (["export", "{tmp}/ckpt.pt", "{tmp}/m.onnx"], "training checkpoint"),
    (["info", "{data}"], "is a folder"),
    (["extract", "{model}", "{data}/query", "-o", "{tmp}/f.pt", "--batch-size", "0"], ">= 1"),
])
def test_errors_are_one_line_with_status_2(run, tmp_path, capsys, argv, message):
    (tmp_path / "text.pt").write_text("hello")
    from sureid.engine import save_checkpoint

    save_checkpoint({"model": {}, "optimizer": {}}, tmp_path / "ckpt.pt")
    args = [a.format(tmp=tmp_path, data=run["data"], model=run["model"]) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("sureid: error: ") and err.count("\n") == 1 and message in err


def test_argparse_errors_exit_2():
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["rank", "m.pt"])
    assert e.value.code == 2


def test_labels_of():
    assert _labels_of("x/0002_c1s1_000451_03.jpg") == (2, 0)
    assert _labels_of("x/0007/3_a.jpg") == (7, 3)
    assert _labels_of("x/foo.jpg") is None
