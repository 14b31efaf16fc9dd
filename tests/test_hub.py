"""sureid.hub, the public front of model files: sureid.load, save_model, model_config."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import sureid
from sureid.hub import (
    DataConfig,
    ModelFileError,
    load,
    model_config,
    resolve_data_config,
    save_model,
)
from sureid.models import ReIDModel
from tests.smoke_run import smoke_run, tiny_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return smoke_run(tmp_path_factory.getbasetemp() / "smoke_run")


def _x(n=3):
    return torch.randn(n, 3, 64, 32)


def test_load_rebuilds_what_save_model_wrote(tmp_path):
    model = tiny_model(4).eval()
    path = save_model(model, tmp_path / "m.pt", metadata={"note": "x"})
    loaded = load(path)
    assert isinstance(loaded, ReIDModel) and not loaded.training
    x = _x()
    assert torch.equal(loaded(x), model(x))
    assert loaded.metadata == {"note": "x"}
    assert loaded.data_config == resolve_data_config(loaded) == DataConfig((64, 32))
    assert sureid.load is load and sureid.DataConfig is DataConfig


def test_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        load(tmp_path / "missing.pt")
    with pytest.raises(ModelFileError, match="is a folder"):
        load(tmp_path)
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(ModelFileError, match="not a sureid model file"):
        load(tmp_path / "text.pt")
    model = tiny_model(5)
    with pytest.raises(TypeError, match="model must be a sureid ReIDModel, got HTSViT"):
        model_config(model.backbone)
    with pytest.raises(TypeError, match="model must be a sureid ReIDModel"):
        save_model(model.backbone, tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


def test_fresh_process_gives_identical_features_and_metrics(run, tmp_path):
    """Train the smoke benchmark a few steps, save, load in a new process, same numbers."""
    script = f"""
import json, torch
torch.set_num_threads(1)
import sureid
from sureid.data import read_occluded_duke
model = sureid.load({run["model"]!r})
ds = read_occluded_duke({run["data"]!r})
ext = sureid.FeatureExtractor(model)
qf = ext({run["data"] + "/query"!r}).features
gf = ext([r.path for r in ds.gallery]).features
r = sureid.evaluate(qf, gf, [x.pid for x in ds.query], [x.pid for x in ds.gallery],
                    [x.camid for x in ds.query], [x.camid for x in ds.gallery])
torch.save(qf, {str(tmp_path / "qf.pt")!r})
print(json.dumps({{"rank1": r.rank1, "mAP": r.mAP}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"rank1": run["rank1"], "mAP": run["mAP"]}
    want = torch.load(Path(run["model"]).parent / "query_feats.pt")
    assert torch.equal(torch.load(tmp_path / "qf.pt"), want)


# ----------------------------------------------------------------------------- issue 26
@pytest.mark.parametrize("device", ["cuda", "cuda:3", "gpu", "cpu:x"])
def test_a_bad_map_location_is_not_reported_as_a_bad_file(tmp_path, device):
    if device.startswith("cuda") and torch.cuda.is_available():  # pragma: no cover
        pytest.skip("CUDA is available here")
    path = tmp_path / "m.pt"
    tiny_model(3).save(path)
    with pytest.raises(ValueError, match=rf"map_location '{device}' cannot be used") as info:
        load(path, map_location=device)
    assert not isinstance(info.value, ModelFileError)
    assert "not a sureid model file" not in str(info.value)
