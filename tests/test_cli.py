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


def test_keep_ratio_changes_the_tokens_an_hts_model_keeps(run, tmp_path, capsys):
    import sureid
    from sureid.inference import FeatureExtractor
    from sureid.models.hts import num_kept_tokens

    model, data = run["model"], run["data"]
    ref = sureid.load(model)
    n = ref.backbone.backbone.patch_embed.num_patches
    for p in (0.7, 0.4, 1.0):  # 0.7: the trained ratio, gives the default features exactly
        out = tmp_path / f"q{p}.pt"
        assert main(["extract", model, f"{data}/query", "-o", str(out), "--no-progress",
                     "--kept", "--keep-ratio", str(p)]) == 0
        state = torch.load(out, weights_only=True)
        ref.backbone.keep_ratios = [p, p * p]  # the reference: set by hand on a loaded model
        want = FeatureExtractor(ref, progress=False)(f"{data}/query")
        torch.testing.assert_close(state["features"], want.features, rtol=0, atol=0)
        if p < 1:
            kept_per_stage = [k.shape[1] for k in state["kept"]]
            assert kept_per_stage == [num_kept_tokens(n, p), num_kept_tokens(n, p * p)]
        else:  # p = 1 drops nothing: every token is computed, no kept indices to store
            assert "kept" not in state
    assert torch.equal(torch.load(tmp_path / "q0.7.pt")["features"],
                       torch.load(Path(model).parent / "query_feats.pt"))
    capsys.readouterr()
    assert main(["info", model, "--keep-ratio", "0.4"]) == 0
    low = float(capsys.readouterr().out.split(" GFLOPs")[0].split()[-1])
    assert main(["info", model]) == 0
    assert low < float(capsys.readouterr().out.split(" GFLOPs")[0].split()[-1])


@pytest.mark.parametrize("p", ["0", "1.5", "nan"])
def test_keep_ratio_out_of_range_is_refused(run, tmp_path, capsys, p):
    assert main(["info", run["model"], "--keep-ratio", p]) == 2
    assert "--keep-ratio must be in (0, 1]" in capsys.readouterr().err


def test_keep_ratio_on_a_dense_model_is_refused(tmp_path, capsys):
    import sureid
    from sureid.engine import ReIDModel

    vit = sureid.VisionTransformer(img_size=(32, 16), patch_size=8, embed_dim=16, depth=2,
                                   num_heads=2)
    ReIDModel(sureid.HTSViT(vit, prune=False, prune_layers=(1,)), 3).save(tmp_path / "dense.pt")
    assert main(["info", str(tmp_path / "dense.pt"), "--keep-ratio", "0.5"]) == 2
    assert "needs an HTS model" in capsys.readouterr().err
