import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import torch
from torch import nn

import sureid
from sureid.engine import save_checkpoint
from sureid.hub import FORMAT_VERSION, DataConfig, ModelFileError, load, model_config
from sureid.models import ReIDModel
from tests.smoke_run import smoke_run, tiny_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return smoke_run(tmp_path_factory.getbasetemp() / "smoke_run")


def _x(n=3):
    return torch.randn(n, 3, 64, 32)


@pytest.mark.parametrize("eval_feature", ["before", "after"])
@pytest.mark.parametrize("prune", [True, False])
def test_round_trip_same_outputs(tmp_path, eval_feature, prune):
    model = tiny_model(7)
    model.eval_feature = eval_feature
    model.neck.eval_feature = eval_feature
    model.backbone.prune = prune
    model.eval()
    x = _x()
    path = model.save(tmp_path / "sub" / "m.pt", metadata={"note": "x"})
    loaded = load(path)
    assert not loaded.training
    assert torch.equal(loaded(x), model(x))
    assert loaded.eval_feature == eval_feature and loaded.backbone.prune is prune
    assert loaded.backbone.keep_ratios == model.backbone.keep_ratios
    assert loaded.data_config == DataConfig((64, 32))
    assert loaded.metadata == {"note": "x"}
    assert ReIDModel.load(path).num_classes == 7
    # the file is plain data: loads with weights_only=True
    state = torch.load(path, weights_only=True)
    assert state["format_version"] == FORMAT_VERSION and "state_dict" in state


def test_attention_keep_score_round_trip(tmp_path):
    vit = sureid.VisionTransformer(img_size=(64, 32), patch_size=8, embed_dim=32, depth=4,
                                   num_heads=2)
    hts = sureid.HTSViT(vit, keep_ratio=0.5, prune_layers=(1, 2), keep_score="attention")
    model = ReIDModel(hts, 5).eval()
    x = _x()
    loaded = load(model.save(tmp_path / "m.pt"))
    assert loaded.backbone.keep_score == "attention"
    assert not any("decision" in k for k in loaded.state_dict())
    assert torch.equal(loaded(x), model(x))


def test_custom_normalisation_and_conv_stem(tmp_path):
    vit = sureid.VisionTransformer(img_size=(32, 16), patch_size=8, embed_dim=32, depth=2,
                                   num_heads=2, stem="conv", qk_norm=True, init_values=0.1)
    model = ReIDModel(sureid.HTSViT(vit, keep_ratio=[0.9, 0.5], prune_layers=(0, 1)), 3).eval()
    cfg = DataConfig((32, 16), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    model.save(tmp_path / "m.pt", data_config=cfg)
    loaded = load(tmp_path / "m.pt")
    assert loaded.data_config == cfg
    x = torch.randn(2, 3, 32, 16)
    assert torch.equal(loaded(x), model(x))
    # a loaded model saves again with its own preprocessing
    loaded.save(tmp_path / "again.pt")
    assert load(tmp_path / "again.pt").data_config == cfg


def test_timm_backbone_round_trip(tmp_path):
    timm = pytest.importorskip("timm")
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=(32, 16),
                            patch_size=8, depth=2, num_classes=0, reg_tokens=1)
    model = ReIDModel(sureid.HTSViT.from_timm(vit, keep_ratio=0.7, prune_layers=(1,)), 4).eval()
    model.save(tmp_path / "t.pt")
    cfg = model_config(model)["vit"]
    assert cfg["kind"] == "timm" and cfg["name"] == "vit_tiny_patch16_224"
    x = torch.randn(2, 3, 32, 16)
    assert torch.equal(load(tmp_path / "t.pt")(x), model(x))


# what save wrote for every timm backbone before act_layer, final_norm, ... were recorded
_TIMM_FORMAT_1_KEYS = {
    "img_size", "patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio", "qkv_bias",
    "qk_norm", "init_values", "class_token", "reg_tokens", "no_embed_class", "pre_norm",
    "global_pool", "fc_norm", "dynamic_img_size", "num_classes",
}


def _timm_model(**kwargs):
    timm = pytest.importorskip("timm")
    vit = timm.create_model("deit_tiny_patch16_224", pretrained=False, img_size=(64, 32),
                            patch_size=8, depth=3, num_classes=0, **kwargs)
    return ReIDModel(sureid.HTSViT.from_timm(vit, keep_ratio=0.7, prune_layers=(1,)), 4).eval()


@pytest.mark.parametrize("kwargs", [
    dict(act_layer="relu"),
    dict(act_layer="gelu_tanh"),
    dict(global_pool="avg", pool_include_prefix=True),
    dict(final_norm=False),
    dict(global_pool="avg", final_norm=False),
    dict(proj_bias=False),
    dict(scale_attn_norm=True, scale_mlp_norm=True),
    dict(norm_layer="rmsnorm", embed_norm_layer="rmsnorm"),
    dict(pos_embed="none", init_values=0.1),
    dict(drop_path_rate=0.2, attn_drop_rate=0.1, proj_drop_rate=0.1),
], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_timm_arguments_round_trip(tmp_path, kwargs):
    model = _timm_model(**kwargs)
    loaded = load(model.save(tmp_path / "t.pt"))
    x = _x(2)
    assert torch.equal(loaded(x), model(x))
    assert repr(loaded) == repr(model)  # same modules with the same layer arguments


class _Square(nn.Module):
    def forward(self, x):
        return x * x


def test_timm_backbone_it_cannot_describe_is_refused_at_save(tmp_path):
    timm = pytest.importorskip("timm")
    with pytest.raises(ValueError, match=r"act_layer builds _Square\(\).*named layers.*relu"):
        _timm_model(act_layer=_Square).save(tmp_path / "a.pt")
    with pytest.raises(ValueError, match=r"norm_layer builds LayerNorm.*named layers.*rmsnorm"):
        _timm_model(norm_layer=nn.LayerNorm).save(tmp_path / "b.pt")
    # a named layer with other arguments, a module replaced after construction
    model = _timm_model(norm_layer=partial(timm.layers.LayerNorm, eps=1e-5))
    with pytest.raises(ValueError, match=r"blocks\.0\.norm1\.eps is 1e-05 but rebuilds as 1e-06"):
        model.save(tmp_path / "c.pt")
    model = _timm_model()
    model.backbone.backbone.blocks[1].mlp.act = nn.ReLU()
    with pytest.raises(ValueError, match=r"blocks\.1\.mlp\.act is a torch\..*ReLU but rebuilds"):
        model.save(tmp_path / "d.pt")
    assert not list(tmp_path.iterdir())  # refused before anything is written


def test_timm_file_without_new_arguments_loads_as_before(tmp_path):
    # timm's defaults write nothing new: such files still load with older sureid and timm
    model = _timm_model()
    path = model.save(tmp_path / "t.pt")
    state = torch.load(path, weights_only=True)
    assert set(state["config"]["vit"]["kwargs"]) == _TIMM_FORMAT_1_KEYS
    x = _x(2)
    assert torch.equal(load(path)(x), model(x))
    # an old file lacking a new key rebuilds with timm's default for it
    relu = _timm_model(act_layer="relu")
    state = torch.load(relu.save(tmp_path / "relu.pt"), weights_only=True)
    assert state["config"]["vit"]["kwargs"].pop("act_layer") == "relu"
    save_checkpoint(state, tmp_path / "old.pt")
    old = load(tmp_path / "old.pt")
    gelu = _timm_model()
    gelu.load_state_dict(relu.state_dict())
    assert torch.equal(old(x), gelu(x))


def test_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        load(tmp_path / "missing.pt")
    with pytest.raises(ModelFileError, match="is a folder"):
        load(tmp_path)
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(ModelFileError, match="not a sureid model file"):
        load(tmp_path / "text.pt")
    model = tiny_model(5)
    save_checkpoint({"model": model.state_dict(), "optimizer": {}, "epoch": 1},
                    tmp_path / "ckpt.pt")
    with pytest.raises(ModelFileError, match="training checkpoint"):
        load(tmp_path / "ckpt.pt")
    save_checkpoint({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="no 'sureid.model' header"):
        load(tmp_path / "other.pt")
    path = model.save(tmp_path / "m.pt")
    state = torch.load(path, weights_only=True)
    state["format_version"] = FORMAT_VERSION + 1
    save_checkpoint(state, tmp_path / "newer.pt")
    with pytest.raises(ModelFileError, match="upgrade sureid"):
        load(tmp_path / "newer.pt")
    state = torch.load(path, weights_only=True)
    state["config"]["vit"]["kwargs"]["depth"] = 3  # another architecture than the weights
    save_checkpoint(state, tmp_path / "mismatch.pt")
    with pytest.raises(ModelFileError, match="do not fit the architecture.*missing"):
        load(tmp_path / "mismatch.pt")
    state = torch.load(path, weights_only=True)
    state["config"]["vit"]["kwargs"]["embed_dim"] = 64
    save_checkpoint(state, tmp_path / "shape.pt")
    with pytest.raises(ModelFileError, match="do not fit the architecture"):
        load(tmp_path / "shape.pt")
    state = torch.load(path, weights_only=True)
    state["config"]["hts"]["keep_ratio"] = [2.0, 0.5]
    save_checkpoint(state, tmp_path / "bad.pt")
    with pytest.raises(ModelFileError, match="invalid architecture config"):
        load(tmp_path / "bad.pt")
    with pytest.raises(TypeError, match="ReIDModel"):
        model_config(model.backbone)


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


@pytest.mark.parametrize("kwargs, match", [
    (dict(input_size=(64,)), "input_size"),
    (dict(input_size=(64, 0)), "input_size"),
    (dict(input_size=(True, 32)), "input_size"),  # a bool is not a size
    (dict(input_size=(64, 32), mean=(0.5, 0.5)), "mean must be 3 finite values"),
    (dict(input_size=(64, 32), std=(float("nan"), 1, 1)), "std must be 3 finite"),  # NaN out
    (dict(input_size=(64, 32), std=(float("inf"), 1, 1)), "std must be 3 finite"),  # zeroes
    (dict(input_size=(64, 32), std=(0.5, 0, 1)), "std must be positive"),
])
def test_data_config_refuses_what_would_give_nan_or_a_wrong_image(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataConfig(**kwargs)


def test_data_config_takes_numpy_sizes_as_ints():
    import numpy as np

    cfg = DataConfig((np.int64(64), np.int64(32)))
    assert cfg.input_size == (64, 32) and type(cfg.input_size[0]) is int


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


@pytest.mark.parametrize("size", [(128, 64), (64, 64), (32, 16)])
def test_save_refuses_a_data_config_the_fixed_size_model_cannot_take(tmp_path, size):
    model = tiny_model(3)  # a fixed 64 x 32 model
    want = rf"input_size \({size[0]}, {size[1]}\) does not fit.*\(64, 32\)"
    with pytest.raises(ValueError, match=want):
        model.save(tmp_path / "m.pt", data_config=DataConfig(size))
    assert not (tmp_path / "m.pt").exists()
    model.save(tmp_path / "m.pt", data_config=DataConfig((64, 32), mean=(0.5,) * 3))
