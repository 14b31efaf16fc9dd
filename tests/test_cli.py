import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sureid.cli import build_parser, main
from sureid.data.labels import path_labels
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
        assert path_labels(r["query"])[:2] != path_labels(r["gallery"])[:2]
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
    _refused_by_argparse(capsys, ["info", run["model"], "--keep-ratio", p],
                         f"argument --keep-ratio: expected a number in (0, 1], got '{p}'")


def test_keep_ratio_on_a_dense_model_is_refused(tmp_path, capsys):
    import sureid
    from sureid.models import ReIDModel

    vit = sureid.VisionTransformer(img_size=(32, 16), patch_size=8, embed_dim=16, depth=2,
                                   num_heads=2)
    ReIDModel(sureid.HTSViT(vit, prune=False, prune_layers=(1,)), 3).save(tmp_path / "dense.pt")
    assert main(["info", str(tmp_path / "dense.pt"), "--keep-ratio", "0.5"]) == 2
    assert "needs an HTS model" in capsys.readouterr().err


def test_fused_decision_runs_the_fused_stages(run, tmp_path, monkeypatch):
    import sureid
    from sureid.inference import FeatureExtractor
    from sureid.models import hts_vit

    calls = []
    real = hts_vit.fused_stages
    monkeypatch.setattr(hts_vit, "fused_stages", lambda d: calls.append(1) or real(d))
    model, data = run["model"], run["data"]
    out = tmp_path / "fused.pt"
    assert main(["extract", model, f"{data}/query", "-o", str(out), "--no-progress", "--kept",
                 "--fused-decision"]) == 0
    assert calls  # the CLI's forward went through the kernel
    state = torch.load(out, weights_only=True)
    ref = sureid.load(model)
    ref.backbone.fused_decision = True  # the reference: set by hand on a loaded model
    want = FeatureExtractor(ref, progress=False, kept_indices=True)(f"{data}/query")
    assert torch.equal(state["features"], want.features)
    assert all(torch.equal(a, b) for a, b in zip(state["kept"], want.kept, strict=True))


def test_fused_decision_on_a_dense_model_is_refused(tmp_path, capsys):
    import sureid
    from sureid.models import ReIDModel

    vit = sureid.VisionTransformer(img_size=(32, 16), patch_size=8, embed_dim=16, depth=2,
                                   num_heads=2)
    ReIDModel(sureid.HTSViT(vit, prune=False, prune_layers=(1,)), 3).save(tmp_path / "dense.pt")
    (tmp_path / "images").mkdir()
    assert main(["extract", str(tmp_path / "dense.pt"), str(tmp_path / "images"), "-o",
                 str(tmp_path / "f.pt"), "--fused-decision"]) == 2
    assert "--fused-decision needs an HTS model with decision modules" in \
        capsys.readouterr().err


# ----------------------------------------------------------------------------- issue 26
def _snapshot(folder):
    return {p: p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def _one_line_error(capsys, *fragments):
    err = capsys.readouterr().err
    assert err.startswith("sureid: error: ") and err.count("\n") == 1, err
    for f in fragments:
        assert f in err, err


@pytest.fixture
def small(run, tmp_path):
    """A copy of two query and four gallery images (PNG), so data loss shows."""
    from PIL import Image

    data = Path(run["data"])
    q, g = tmp_path / "query", tmp_path / "gallery"
    q.mkdir()
    g.mkdir()
    for src, dst, n in ((data / "query", q, 2), (data / "bounding_box_test", g, 4)):
        for p in sorted(src.iterdir())[:n]:
            Image.open(p).save(dst / f"{p.stem}.png")
    return {"model": run["model"], "query": q, "gallery": g}


@pytest.mark.parametrize("where", ["query", "gallery", "inside_query", "parent", "model"])
def test_rank_output_never_replaces_or_joins_an_input(small, tmp_path, capsys, where):
    out = {"query": small["query"], "gallery": small["gallery"],
           "inside_query": small["query"] / "ranks", "parent": tmp_path,
           "model": Path(small["model"])}[where]
    before = _snapshot(tmp_path)
    model_bytes = Path(small["model"]).read_bytes()
    assert main(["rank", small["model"], str(small["query"]), str(small["gallery"]), "-o",
                 str(out), "--no-progress", "--topk", "2"]) == 2
    _one_line_error(capsys, "--output")
    assert _snapshot(tmp_path) == before and Path(small["model"]).read_bytes() == model_bytes


def test_outputs_refuse_foreign_content_and_replace_their_own(small, tmp_path, capsys):
    args = ["rank", small["model"], str(small["query"]), str(small["gallery"]), "--topk", "2",
            "--no-progress", "-o"]
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.png").write_bytes(b"mine")
    assert main([*args, str(foreign)]) == 2
    _one_line_error(capsys, "refusing to replace it")
    assert _snapshot(foreign) == {foreign / "holiday.png": b"mine"}
    out = tmp_path / "ranks"
    assert main([*args, str(out)]) == 0
    first = sorted(p.name for p in out.iterdir())
    assert "sureid_rank.json" in first and "ranking.csv" in first
    assert main([*args, str(out), "--max-pictures", "1"]) == 0  # its own output: replaced
    assert len(list(out.glob("*.png"))) == 1
    (out / "notes.txt").write_text("added by hand")
    assert main([*args, str(out)]) == 2
    _one_line_error(capsys, "did not write: 'notes.txt'")
    assert (out / "notes.txt").read_text() == "added by hand"
    feats = tmp_path / "feats.pt"  # extract replaces its own feature file
    for _ in range(2):
        assert main(["extract", small["model"], str(small["query"]), "-o", str(feats),
                     "--no-progress"]) == 0
    assert torch.load(feats, weights_only=True)["features"].shape[0] == 2


@pytest.mark.parametrize("target", ["model", "image", "inside_images", "folder", "below_file",
                                    "foreign_file"])
def test_extract_output_never_destroys_anything(small, tmp_path, capsys, target):
    (tmp_path / "f").write_text("x")
    (tmp_path / "other_model.pt").write_bytes(Path(small["model"]).read_bytes())
    image = sorted(small["query"].iterdir())[0]
    out = {"model": small["model"], "image": image, "inside_images": small["query"] / "f.pt",
           "folder": tmp_path / "gallery", "below_file": tmp_path / "f" / "x.pt",
           "foreign_file": tmp_path / "other_model.pt"}[target]
    before = _snapshot(tmp_path)
    model_bytes = Path(small["model"]).read_bytes()
    assert main(["extract", small["model"], str(small["query"]), "-o", str(out),
                 "--no-progress"]) == 2
    _one_line_error(capsys, "--output")
    assert _snapshot(tmp_path) == before and Path(small["model"]).read_bytes() == model_bytes


@pytest.mark.parametrize("target", ["model", "folder", "below_file", "foreign_file"])
def test_export_output_never_destroys_anything(small, tmp_path, capsys, target):
    (tmp_path / "f").write_text("x")
    (tmp_path / "notes.onnx").write_text("not a graph")
    out = {"model": small["model"], "folder": tmp_path / "query",
           "below_file": tmp_path / "f" / "m.onnx", "foreign_file": tmp_path / "notes.onnx"}[target]
    before = _snapshot(tmp_path)
    model_bytes = Path(small["model"]).read_bytes()
    assert main(["export", small["model"], str(out)]) == 2
    _one_line_error(capsys, "output")
    assert _snapshot(tmp_path) == before and Path(small["model"]).read_bytes() == model_bytes


@pytest.mark.parametrize("target", ["folder", "below_file", "model", "inside_data",
                                    "foreign_file"])
def test_evaluate_json_is_checked_before_the_evaluation(run, tmp_path, capsys, monkeypatch,
                                                        target):
    import sureid.inference

    (tmp_path / "f").write_text("x")
    (tmp_path / "notes.json").write_text('{"mine": 1}')
    out = {"folder": tmp_path, "below_file": tmp_path / "f" / "r.json", "model": run["model"],
           "inside_data": Path(run["data"]) / "r.json", "foreign_file": tmp_path / "notes.json"}
    called = []
    monkeypatch.setattr(sureid.inference.FeatureExtractor, "__call__",
                        lambda self, x: called.append(x))
    assert main(["evaluate", run["model"], "--data-root", run["data"], "--no-progress",
                 "--json", str(out[target])]) == 2
    _one_line_error(capsys, "--json")
    assert not called  # refused before any image was embedded
    assert (tmp_path / "notes.json").read_text() == '{"mine": 1}'


def _refused_by_argparse(capsys, argv, message):
    """argparse's exit: status 2, the usage line, then ``sureid CMD: error: <message>``."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: sureid ") and err.count("\n") >= 2, err
    assert err.rstrip("\n").splitlines()[-1] == f"sureid {argv[0]}: error: {message}", err


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "{model}", "--data-root", "{data}", "--max-rank", "0"],
     "argument --max-rank: expected an integer >= 1, got '0'"),
    (["evaluate", "{model}", "--data-root", "{data}", "--max-rank", "-3"],
     "argument --max-rank: expected an integer >= 1, got '-3'"),
    (["evaluate", "{model}", "--data-root", "{data}", "--lambda", "1.5"],
     "argument --lambda: expected a number in [0, 1], got '1.5'"),
    (["evaluate", "{model}", "--data-root", "{data}", "--k1", "0"],
     "argument --k1: expected an integer >= 1, got '0'"),
    (["evaluate", "{model}", "--data-root", "{data}", "--k2", "two"],
     "argument --k2: expected an integer >= 1, got 'two'"),
    (["rank", "{model}", "{data}/query", "{data}/query", "-o", "{tmp}/r", "--max-pictures", "-1"],
     "argument --max-pictures: expected an integer >= 0, got '-1'"),
    (["rank", "{model}", "{data}/query", "{data}/query", "-o", "{tmp}/r", "--topk", "0"],
     "argument --topk: expected an integer >= 1, got '0'"),
    (["extract", "{model}", "{data}/query", "-o", "{tmp}/f.pt", "--batch-size", "0"],
     "argument --batch-size: expected an integer >= 1, got '0'"),
    (["extract", "{model}", "{data}/query", "-o", "{tmp}/f.pt", "--workers", "-1"],
     "argument --workers: expected an integer >= 0, got '-1'"),
])
def test_numbers_are_refused_by_argparse_with_the_option_name(run, tmp_path, capsys, argv,
                                                              message):
    args = [a.format(tmp=tmp_path, data=run["data"], model=run["model"]) for a in argv]
    _refused_by_argparse(capsys, args, message)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("device", ["gpu", "cuda:99"])
def test_devices_are_checked_first(run, tmp_path, capsys, device):
    assert main(["extract", run["model"], f"{run['data']}/query", "-o", str(tmp_path / "f.pt"),
                 "--device", device]) == 2
    _one_line_error(capsys, f"--device {device!r} cannot be used")
    assert list(tmp_path.iterdir()) == []


def test_pids_beyond_int64_in_file_names_are_named(small, tmp_path, capsys):
    from PIL import Image

    q = tmp_path / "q"
    q.mkdir()
    Image.new("RGB", (32, 64)).save(q / "99999999999999999999_c1_f1.png")
    assert main(["extract", small["model"], str(q), "-o", str(tmp_path / "f.pt"),
                 "--no-progress"]) == 2
    _one_line_error(capsys, "int64")


# ----------------------------------------------------------------------------- issue 27
def _rank_csv_before(q, g, topk, **options) -> bytes:
    """ranking.csv as ``sureid rank`` wrote it before the ranking moved to
    ``sureid.metrics.retrieval.ranked_lists``: its own loop over ``rank_gallery``."""
    import io

    from sureid.metrics.retrieval import rank_gallery

    q_lab = [(x.pid, x.camid) if (x := path_labels(p)) else None for p in q.paths]
    g_lab = [(x.pid, x.camid) if (x := path_labels(p)) else None for p in g.paths]
    labelled = all(x is not None for x in q_lab + g_lab)
    extra = 0
    if labelled:
        counts: dict = {}
        for lab in g_lab:
            counts[lab] = counts.get(lab, 0) + 1
        extra = max((counts.get(lab, 0) for lab in q_lab), default=0)
    idx, dist = rank_gallery(q.features, g.features, topk=topk + extra, **options)
    f = io.StringIO(newline="")
    w = csv.writer(f)
    w.writerow(["query", "rank", "gallery", "distance", "match"])
    for i in range(len(q.paths)):
        keep = [j for j in range(idx.shape[1])
                if not (labelled and g_lab[idx[i, j]] == q_lab[i])][:topk]
        for r, j in enumerate(keep, 1):
            m = g_lab[idx[i, j]][0] == q_lab[i][0] if labelled else None
            w.writerow([q.paths[i], r, g.paths[idx[i, j]], f"{float(dist[i, j]):.6g}",
                        "" if m is None else int(m)])
    return f.getvalue().encode()


@pytest.mark.parametrize("case", ["labelled", "rerank_cosine", "unlabelled", "whole_gallery"])
def test_rank_csv_is_byte_identical_to_before(run, tmp_path, case):
    import shutil

    import sureid
    from sureid.inference import FeatureExtractor

    data = Path(run["data"])
    query, topk, argv, options = data / "query", 5, [], {}
    if case == "rerank_cosine":
        argv = ["--rerank", "--metric", "cosine", "--k1", "5", "--k2", "2", "--lambda", "0.5"]
        options = {"rerank": True, "metric": "cosine", "k1": 5, "k2": 2, "lambda_value": 0.5}
    elif case == "unlabelled":  # names without labels: nothing is left out, match is empty
        query = tmp_path / "q"
        query.mkdir()
        for i, p in enumerate(sorted((data / "query").iterdir())[:6]):
            shutil.copy(p, query / f"img{i}{p.suffix}")
    elif case == "whole_gallery":  # topk beyond the gallery: shorter lists after exclusion
        topk = 10_000
    gallery = data / "bounding_box_test"
    out = tmp_path / "ranks"
    assert main(["rank", run["model"], str(query), str(gallery), "--topk", str(topk),
                 "--max-pictures", "0", "--no-progress", "-o", str(out), *argv]) == 0
    ext = FeatureExtractor(sureid.load(run["model"]), progress=False)
    want = _rank_csv_before(ext(str(query)), ext(str(gallery)), topk, **options)
    assert (out / "ranking.csv").read_bytes() == want


def test_python_dash_m_sureid_runs_the_same_main():
    out = subprocess.run([sys.executable, "-m", "sureid", "rank", "--help"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "usage: sureid rank" in out.stdout
