"""ONNX files say how to feed them (metadata_props read back with onnxruntime), honour the
umask, and the CLI exports int8 (issue 25 item 4, issue 26)."""

import json
import os
import stat

import pytest
import torch

import sureid
from sureid.cli import main
from sureid.export import export_onnx, quantize_onnx, read_onnx_metadata
from sureid.hub import DataConfig
from tests.smoke_run import tiny_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

IMG = (32, 16)
MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def tiny_hts(prune=True):
    vit = sureid.VisionTransformer(img_size=IMG, patch_size=8, embed_dim=32, depth=4, num_heads=2)
    return sureid.HTSViT(vit, keep_ratio=0.7, prune_layers=(1, 3), prune=prune).eval()


def ort_meta(path):
    """metadata_props as onnxruntime reads them (raw strings)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.get_modelmeta().custom_metadata_map


def test_metadata_is_written_and_read_back_with_onnxruntime(tmp_path):
    model = tiny_hts()
    path = export_onnx(model, tmp_path / "m.onnx", IMG, mean=MEAN, std=STD,
                       metadata={"dataset": "market1501"})
    raw = ort_meta(path)
    assert json.loads(raw["input_size"]) == list(IMG)
    assert json.loads(raw["mean"]) == list(MEAN) and json.loads(raw["std"]) == list(STD)
    assert json.loads(raw["embedding_dim"]) == 32
    assert json.loads(raw["keep_ratios"]) == pytest.approx([0.7, 0.49])
    assert json.loads(raw["prune_layers"]) == [1, 3]
    assert raw["dataset"] == "market1501"
    meta = read_onnx_metadata(path)
    assert meta["input_size"] == list(IMG) and meta["quantization"] == "none"
    assert meta["input_name"] == "images" and meta["output_name"] == "embedding"
    # what the metadata says is what the graph takes and gives
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {meta["input_name"]: torch.randn(2, 3, *meta["input_size"]).numpy()})
    assert out[0].shape == (2, meta["embedding_dim"])


def test_dense_model_records_no_keep_ratios_and_no_normalisation_unless_given(tmp_path):
    meta = read_onnx_metadata(export_onnx(tiny_hts(prune=False), tmp_path / "d.onnx", IMG))
    assert meta["keep_ratios"] == [] and meta["prune_layers"] == []
    assert "mean" not in meta and "std" not in meta


@pytest.mark.parametrize("kwargs,exc,fragment", [
    ({"mean": MEAN}, ValueError, "mean and std go together"),
    ({"mean": MEAN, "std": (0.2, 0.0, 0.3)}, ValueError, "std[1] must be in (0, inf]"),
    ({"mean": (0.5, 0.5), "std": STD}, TypeError, "mean must be 3 numbers"),
    ({"mean": "abc", "std": STD}, TypeError, "mean must be 3 numbers"),
    ({"mean": (0.5, True, 0.5), "std": STD}, TypeError, "mean[1] must be a real number"),
    ({"mean": (0.5, float("nan"), 0.5), "std": STD}, ValueError, "mean[1]"),
    ({"metadata": {"input_size": "[1, 1]"}}, ValueError, "written by export_onnx itself"),
    ({"metadata": {"a": 1}}, TypeError, "metadata must be a mapping of str to str"),
])
def test_bad_metadata_is_refused_before_export(tmp_path, kwargs, exc, fragment):
    with pytest.raises(exc) as err:
        export_onnx(tiny_hts(), tmp_path / "m.onnx", IMG, **kwargs)
    assert fragment in str(err.value)
    assert not any(tmp_path.iterdir())


def test_int8_file_keeps_the_metadata(tmp_path):
    torch.manual_seed(0)
    images = torch.randn(8, 3, *IMG)
    path = export_onnx(tiny_hts(), tmp_path / "q.onnx", IMG, quantize="int8", mean=MEAN,
                       std=STD, verify_images=images)
    meta = read_onnx_metadata(path)
    assert meta["quantization"] == "int8" and meta["mean"] == list(MEAN)
    fp32 = export_onnx(tiny_hts(), tmp_path / "f.onnx", IMG, mean=MEAN, std=STD)
    quantize_onnx(fp32, tmp_path / "f8.onnx", images)
    meta8 = read_onnx_metadata(tmp_path / "f8.onnx")
    assert meta8["quantization"] == "int8" and meta8["input_size"] == list(IMG)
    assert read_onnx_metadata(fp32)["quantization"] == "none"  # the source is untouched


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
@pytest.mark.parametrize("quantize", [None, "int8"])
def test_onnx_files_honour_the_umask(tmp_path, mask, mode, quantize):
    old = os.umask(mask)
    try:
        path = export_onnx(tiny_hts(), tmp_path / "m.onnx", IMG, quantize=quantize)
        assert stat.S_IMODE(path.stat().st_mode) == mode
        if quantize is None:
            quantize_onnx(path, tmp_path / "q.onnx", torch.randn(4, 3, *IMG))
            assert stat.S_IMODE((tmp_path / "q.onnx").stat().st_mode) == mode
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["m.onnx"] + (["q.onnx"] if quantize is None else []))  # no temp file left


def test_read_onnx_metadata_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_onnx_metadata(tmp_path / "none.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(ValueError, match="bad.onnx"):
        read_onnx_metadata(bad)
    with pytest.raises(TypeError, match="path must be"):
        read_onnx_metadata(3)


# ----------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "m.pt"
    tiny_model(5).eval().save(path, data_config=DataConfig((64, 32), MEAN, STD))
    return path


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("imgs")
    gen = torch.Generator().manual_seed(0)
    for i in range(6):
        arr = torch.randint(0, 256, (64, 32, 3), generator=gen, dtype=torch.uint8).numpy()
        Image.fromarray(arr).save(folder / f"{i}.png")
    return folder


def test_cli_export_writes_the_model_preprocessing_into_the_file(model_file, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(model_file), str(out)]) == 0
    meta = read_onnx_metadata(out)
    assert meta["input_size"] == [64, 32] and meta["mean"] == list(MEAN)
    assert meta["std"] == list(STD) and meta["quantization"] == "none"
    assert meta["keep_ratios"] == pytest.approx([0.7, 0.49])


@pytest.mark.parametrize("with_images", [False, True])
def test_cli_export_quantize_int8(model_file, image_folder, tmp_path, capsys, with_images):
    out = tmp_path / "q.onnx"
    argv = ["export", str(model_file), str(out), "--quantize", "int8"]
    if with_images:
        argv += ["--verify-images", str(image_folder)]
    assert main(argv) == 0, capsys.readouterr().err
    assert "int8" in capsys.readouterr().out
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "DynamicQuantizeLinear" in ops or "DynamicQuantizeMatMul" in ops
    assert read_onnx_metadata(out)["quantization"] == "int8"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.onnx"]


@pytest.mark.parametrize("extra,fragment", [
    (["--quantize", "int4"], None),  # argparse: exit 2 with its usage line
    (["--verify-images", "IMGS"], "--verify-images checks the int8 graph"),
    (["--quantize", "int8", "--verify-images", "MISSING"], "--verify-images: not found"),
])
def test_cli_export_bad_options(model_file, image_folder, tmp_path, capsys, extra, fragment):
    extra = [str(image_folder) if e == "IMGS" else str(tmp_path / "none") if e == "MISSING"
             else e for e in extra]
    out = tmp_path / "q.onnx"
    if fragment is None:
        with pytest.raises(SystemExit) as e:
            main(["export", str(model_file), str(out), *extra])
        assert e.value.code == 2
    else:
        assert main(["export", str(model_file), str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("sureid: error:") and fragment in err
    assert not out.exists()


def test_cli_failed_int8_check_is_one_line_and_writes_nothing(model_file, tmp_path, capsys,
                                                               monkeypatch):
    import sureid.export.graph as graph

    def failing(*args, **kwargs):
        raise RuntimeError("int8 graph failed its checks on 8 images: ...; not written")

    monkeypatch.setattr(graph, "quantize_onnx", failing)
    out = tmp_path / "q.onnx"
    assert main(["export", str(model_file), str(out), "--quantize", "int8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sureid: error: export: int8 graph failed") and err.count("\n") == 1
    assert not out.exists() and not any(tmp_path.iterdir())
