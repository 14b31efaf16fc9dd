"""The model file format: ReIDModel.save writes what ReIDModel.load rebuilds, bit for bit."""

import pytest
import torch
from torch import nn

import sureid
from sureid.engine import save_checkpoint
from sureid.models import ReIDModel, create_timm_model
from sureid.models.data_config import DataConfig
from sureid.models.model_file import FORMAT_VERSION, ModelFileError, model_config
from tests.smoke_run import tiny_model


def _x(n=3):
    return torch.randn(n, 3, 64, 32)


def _timm_model(**kwargs):
    pytest.importorskip("timm")
    vit = create_timm_model("deit_tiny_patch16_224", img_size=(64, 32), patch_size=8, depth=3,
                            num_classes=0, **kwargs)
    return ReIDModel(sureid.HTSViT.from_timm(vit, keep_ratio=0.7, prune_layers=(1,)), 4).eval()


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
    loaded = ReIDModel.load(path)
    assert not loaded.training
    assert torch.equal(loaded(x), model(x))
    assert loaded.eval_feature == eval_feature and loaded.backbone.prune is prune
    assert loaded.backbone.keep_ratios == model.backbone.keep_ratios
    assert loaded.data_config == DataConfig((64, 32))
    assert loaded.metadata == {"note": "x"} and loaded.num_classes == 7
    # the file is plain data: loads with weights_only=True
    state = torch.load(path, weights_only=True)
    assert state["format_version"] == FORMAT_VERSION and "state_dict" in state


def test_attention_keep_score_round_trip(tmp_path):
    vit = sureid.VisionTransformer(img_size=(64, 32), patch_size=8, embed_dim=32, depth=4,
                                   num_heads=2)
    hts = sureid.HTSViT(vit, keep_ratio=0.5, prune_layers=(1, 2), keep_score="attention")
    model = ReIDModel(hts, 5).eval()
    x = _x()
    loaded = ReIDModel.load(model.save(tmp_path / "m.pt"))
    assert loaded.backbone.keep_score == "attention"
    assert not any("decision" in k for k in loaded.state_dict())
    assert torch.equal(loaded(x), model(x))


def test_custom_normalisation_and_conv_stem(tmp_path):
    vit = sureid.VisionTransformer(img_size=(32, 16), patch_size=8, embed_dim=32, depth=2,
                                   num_heads=2, stem="conv", qk_norm=True, init_values=0.1)
    model = ReIDModel(sureid.HTSViT(vit, keep_ratio=[0.9, 0.5], prune_layers=(0, 1)), 3).eval()
    cfg = DataConfig((32, 16), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    model.save(tmp_path / "m.pt", data_config=cfg)
    loaded = ReIDModel.load(tmp_path / "m.pt")
    assert loaded.data_config == cfg
    x = torch.randn(2, 3, 32, 16)
    assert torch.equal(loaded(x), model(x))
    # a loaded model saves again with its own preprocessing
    loaded.save(tmp_path / "again.pt")
    assert ReIDModel.load(tmp_path / "again.pt").data_config == cfg


def test_a_timm_backbone_file_holds_its_recorded_arguments(tmp_path):
    model = _timm_model(reg_tokens=1)
    path = model.save(tmp_path / "t.pt")
    cfg = torch.load(path, weights_only=True)["config"]["vit"]
    assert cfg == {"kind": "timm", "name": "deit_tiny_patch16_224", "kwargs": {
        "img_size": [64, 32], "patch_size": 8, "depth": 3, "num_classes": 0, "reg_tokens": 1}}
    loaded, x = ReIDModel.load(path), _x(2)
    assert torch.equal(loaded(x), model(x))
    loaded.save(tmp_path / "again.pt")  # a loaded model carries the record too
    assert torch.load(tmp_path / "again.pt", weights_only=True)["config"]["vit"] == cfg


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
    loaded = ReIDModel.load(model.save(tmp_path / "t.pt"))
    x = _x(2)
    assert torch.equal(loaded(x), model(x))
    assert repr(loaded) == repr(model)  # same modules with the same layer arguments


# what the first writer of the format recorded for _timm_model(): arguments read back off
# the built model
_FIRST_TIMM_KWARGS = {
    "img_size": [64, 32], "patch_size": 8, "embed_dim": 192, "depth": 3, "num_heads": 3,
    "mlp_ratio": 4.0, "qkv_bias": True, "qk_norm": False, "init_values": None,
    "class_token": True, "reg_tokens": 0, "no_embed_class": False, "pre_norm": False,
    "global_pool": "token", "fc_norm": False, "dynamic_img_size": False, "num_classes": 0,
}


@pytest.mark.parametrize("extra", [{}, {"act_layer": "relu"}])
def test_timm_files_of_the_first_writer_load(tmp_path, extra):
    model = _timm_model(**extra)
    state = torch.load(model.save(tmp_path / "t.pt"), weights_only=True)
    state["config"]["vit"]["kwargs"] = {**_FIRST_TIMM_KWARGS, **extra}
    save_checkpoint(state, tmp_path / "old.pt")
    old = ReIDModel.load(tmp_path / "old.pt")
    x = _x(2)
    assert torch.equal(old(x), model(x)) and repr(old) == repr(model)


class _Square(nn.Module):
    def forward(self, x):
        return x * x


def test_a_timm_backbone_the_file_cannot_describe_is_refused_at_save(tmp_path):
    timm = pytest.importorskip("timm")
    with pytest.raises(ValueError, match=r"act_layer=<class .*_Square'> is not plain data"):
        _timm_model(act_layer=_Square).save(tmp_path / "a.pt")
    # a named layer with other arguments, a module replaced after construction
    model = _timm_model(norm_layer="layernorm")
    model.backbone.backbone.blocks[0].norm1 = timm.layers.LayerNorm(192, eps=1e-5)
    with pytest.raises(ValueError, match=r"blocks\.0\.norm1\.eps is 1e-05 but rebuilds as 1e-06"):
        model.save(tmp_path / "c.pt")
    model = _timm_model()
    model.backbone.backbone.blocks[1].mlp.act = nn.ReLU()
    with pytest.raises(ValueError, match=r"blocks\.1\.mlp\.act is a torch\..*ReLU but rebuilds"):
        model.save(tmp_path / "d.pt")
    plain = timm.create_model("deit_tiny_patch16_224", img_size=(64, 32), patch_size=8,
                              depth=3, num_classes=0)
    model = ReIDModel(sureid.HTSViT.from_timm(plain, prune_layers=(1,)), 4)
    with pytest.raises(ValueError, match=r"no record.*sureid\.models\.create_timm_model"):
        model.save(tmp_path / "e.pt")
    assert not list(tmp_path.iterdir())  # refused before anything is written


def test_load_errors_name_what_is_wrong(tmp_path):
    model = tiny_model(5)
    save_checkpoint({"model": model.state_dict(), "optimizer": {}, "epoch": 1},
                    tmp_path / "ckpt.pt")
    with pytest.raises(ModelFileError, match="training checkpoint"):
        ReIDModel.load(tmp_path / "ckpt.pt")
    save_checkpoint({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="no 'sureid.model' header"):
        ReIDModel.load(tmp_path / "other.pt")
    path = model.save(tmp_path / "m.pt")

    def altered(name, change):
        state = torch.load(path, weights_only=True)
        change(state)
        save_checkpoint(state, tmp_path / name)
        return tmp_path / name

    newer = altered("newer.pt", lambda s: s.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(ModelFileError, match="upgrade sureid"):
        ReIDModel.load(newer)
    # another architecture than the weights
    mismatch = altered("mismatch.pt", lambda s: s["config"]["vit"]["kwargs"].update(depth=3))
    with pytest.raises(ModelFileError, match="do not fit the architecture.*missing"):
        ReIDModel.load(mismatch)
    shape = altered("shape.pt", lambda s: s["config"]["vit"]["kwargs"].update(embed_dim=64))
    with pytest.raises(ModelFileError, match="do not fit the architecture"):
        ReIDModel.load(shape)
    bad = altered("bad.pt", lambda s: s["config"]["hts"].update(keep_ratio=[2.0, 0.5]))
    with pytest.raises(ModelFileError, match="invalid architecture config"):
        ReIDModel.load(bad)
    kind = altered("kind.pt", lambda s: s["config"]["vit"].update(kind="onnx"))
    with pytest.raises(ModelFileError, match="unknown backbone kind 'onnx'"):
        ReIDModel.load(kind)


@pytest.mark.parametrize("size", [(128, 64), (64, 64), (32, 16)])
def test_save_refuses_a_data_config_the_fixed_size_model_cannot_take(tmp_path, size):
    model = tiny_model(3)  # a fixed 64 x 32 model
    want = rf"input_size \({size[0]}, {size[1]}\) does not fit.*\(64, 32\)"
    with pytest.raises(ValueError, match=want):
        model.save(tmp_path / "m.pt", data_config=DataConfig(size))
    assert not (tmp_path / "m.pt").exists()
    model.save(tmp_path / "m.pt", data_config=DataConfig((64, 32), mean=(0.5,) * 3))


def test_model_config_checks_its_arguments():
    model = tiny_model(3)
    with pytest.raises(TypeError, match="data_config must be a DataConfig or None, got tuple"):
        model_config(model, (64, 32))
    model.backbone = nn.Identity()
    with pytest.raises(TypeError, match="model.backbone must be a sureid.HTSViT"):
        model_config(model)
