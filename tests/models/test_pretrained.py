"""load_pretrained: local timm/DeiT/TransReID files into timm/sureid ViTs, pos-embed resampling."""

from pathlib import Path

import pytest
import torch

from sureid import HTSViT, VisionTransformer
from sureid.models import ReIDModel
from sureid.models.pos_embed import resample_pos_embed
from sureid.models.pretrained import backbone_file_info, backbone_reference, load_pretrained
from sureid.models.weights_file import PretrainedWeightsError

timm = pytest.importorskip("timm")

DIMS = dict(embed_dim=32, depth=2, num_heads=2)


def fake_deit(distilled=True, num_classes=10):
    """A tiny DeiT at 224x224 (14x14 patches) with ImageNet-style heads, random weights."""
    name = "deit_small_distilled_patch16_224" if distilled else "deit_small_patch16_224"
    return timm.create_model(name, pretrained=False, num_classes=num_classes, **DIMS).eval()


def reid_timm(distilled=True):
    name = "deit_small_distilled_patch16_224" if distilled else "deit_small_patch16_224"
    return timm.create_model(name, pretrained=False, img_size=(256, 128), num_classes=0,
                             **DIMS).eval()


@pytest.fixture
def deit_file(tmp_path):
    src = fake_deit()
    path = tmp_path / "deit_small_distilled_patch16_224.pth"
    torch.save({"model": src.state_dict(), "epoch": 300}, path)  # DeiT's release layout
    return src, path


def test_distilled_deit_224_loads_into_256x128_with_resampled_pos_embed(deit_file):
    src, path = deit_file
    vit = reid_timm()
    report = load_pretrained(vit, path)
    assert report.pos_embed == ((14, 14), (16, 8)) and report.prefix == ""
    assert report.missing_keys == [] and report.unexpected_keys == []
    assert {k.split(".")[0] for k in report.ignored_keys} == {"head", "head_dist"}
    assert "16x8" in str(report) and str(path) in str(report)
    expected = timm.layers.resample_abs_pos_embed(
        src.pos_embed, new_size=(16, 8), num_prefix_tokens=2
    )
    torch.testing.assert_close(vit.pos_embed, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(vit.pos_embed[:, :2], src.pos_embed[:, :2], rtol=0, atol=0)
    for key in ("cls_token", "dist_token", "blocks.1.attn.qkv.weight", "norm.weight"):
        torch.testing.assert_close(vit.state_dict()[key], src.state_dict()[key], rtol=0, atol=0)
    # the loaded timm model wrapped by HTS at keep 1.0 is still exactly the timm model
    model = HTSViT.from_timm(vit, keep_ratio=1.0, prune_layers=(1,)).eval()
    x = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        torch.testing.assert_close(model(x), vit.forward_features(x)[:, 0], atol=1e-5, rtol=0)


def test_loading_into_an_hts_model_or_reid_model_fills_the_backbone(deit_file):
    src, path = deit_file
    hts = HTSViT.from_timm(reid_timm(), keep_ratio=0.7, prune_layers=(1,))
    decision = {k: v.clone() for k, v in hts.decision.state_dict().items()}
    load_pretrained(hts, path)
    torch.testing.assert_close(hts.backbone.cls_token, src.cls_token, rtol=0, atol=0)
    for k, v in hts.decision.state_dict().items():  # decision modules untouched
        assert torch.equal(v, decision[k])
    reid = ReIDModel(HTSViT.from_timm(reid_timm(), keep_ratio=0.7, prune_layers=(1,)), 5)
    load_pretrained(reid, path)
    torch.testing.assert_close(reid.backbone.backbone.dist_token, src.dist_token, rtol=0, atol=0)


def test_plain_deit_into_sureid_vit_equals_timm(tmp_path):
    src = fake_deit(distilled=False)
    path = tmp_path / "deit.pth"
    torch.save({"model": src.state_dict()}, path)
    ours = VisionTransformer(img_size=(256, 128), patch_size=16, **DIMS)
    theirs = reid_timm(distilled=False)
    r1, r2 = load_pretrained(ours, path), load_pretrained(theirs, path)
    assert r1.missing_keys == [] and r1.unexpected_keys == [] and r1.pos_embed == r2.pos_embed
    x = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval().forward_features(x), theirs.forward_features(x),
                                   atol=1e-5, rtol=0)


def test_distilled_file_into_one_prefix_sureid_vit_drops_the_dist_row(deit_file):
    src, path = deit_file
    ours = VisionTransformer(img_size=(256, 128), patch_size=16, **DIMS)
    report = load_pretrained(ours, path)
    assert report.unexpected_keys == ["dist_token"]
    assert report.prefix_tokens == "file [cls, dist] -> model [cls]"
    torch.testing.assert_close(ours.pos_embed[:, 0], src.pos_embed[:, 0], rtol=0, atol=0)
    grid = resample_pos_embed(src.pos_embed[:, 2:], (16, 8), num_prefix_tokens=0)
    torch.testing.assert_close(ours.pos_embed[:, 1:], grid, rtol=0, atol=1e-6)


def test_plain_file_into_distilled_model_keeps_the_models_dist_row(tmp_path):
    src = fake_deit(distilled=False)
    path = tmp_path / "deit.pth"
    torch.save(src.state_dict(), path)
    vit = reid_timm()
    dist_row = vit.pos_embed[:, 1].clone()
    report = load_pretrained(vit, path)
    assert report.missing_keys == ["dist_token"]
    torch.testing.assert_close(vit.pos_embed[:, 1], dist_row, rtol=0, atol=0)
    torch.testing.assert_close(vit.pos_embed[:, 0], src.pos_embed[:, 0], rtol=0, atol=0)
    with pytest.raises(PretrainedWeightsError, match="strict=True"):
        load_pretrained(reid_timm(), path, strict=True)


@pytest.mark.parametrize("layout", ["bare", "state_dict+module", "transreid base.", "sureid ckpt"])
def test_wrapped_checkpoints_and_key_prefixes(tmp_path, layout):
    src = fake_deit(distilled=False)
    sd = src.state_dict()
    if layout == "bare":
        obj, prefix = sd, ""
    elif layout == "state_dict+module":
        obj = {"state_dict": {f"module.{k}": v for k, v in sd.items()}, "arch": "x"}
        prefix = "module."
    elif layout == "transreid base.":
        obj = {f"base.{k}": v for k, v in sd.items()}
        obj.update({"classifier.weight": torch.randn(5, 32), "bottleneck.weight": torch.ones(32)})
        prefix = "base."
    else:  # a sureid Trainer checkpoint of a ReIDModel
        obj = {"model": {f"backbone.backbone.{k}": v for k, v in sd.items()}, "epoch": 3}
        prefix = "backbone.backbone."
    path = tmp_path / "w.pth"
    torch.save(obj, path)
    vit = VisionTransformer(img_size=(256, 128), patch_size=16, **DIMS)
    report = load_pretrained(vit, path)
    assert report.prefix == prefix and report.missing_keys == [] and not report.unexpected_keys
    torch.testing.assert_close(vit.blocks[0].mlp.fc1.weight, src.blocks[0].mlp.fc1.weight)
    if layout == "transreid base.":
        assert {"classifier.weight", "bottleneck.weight"} <= set(report.ignored_keys)


def test_safetensors_file(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    src = fake_deit(distilled=False)
    path = tmp_path / "model.safetensors"
    st.save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    vit = VisionTransformer(img_size=(256, 128), patch_size=16, **DIMS)
    assert load_pretrained(vit, path).pos_embed == ((14, 14), (16, 8))
    torch.testing.assert_close(vit.cls_token, src.cls_token, rtol=0, atol=0)


def test_non_square_source_grid(tmp_path):
    src = VisionTransformer(img_size=(256, 128), patch_size=16, **DIMS)
    path = tmp_path / "reid.pth"
    torch.save(src.state_dict(), path)
    tall = VisionTransformer(img_size=(384, 128), patch_size=16, **DIMS)
    with pytest.raises(PretrainedWeightsError, match=r"source_grid=\(h, w\)"):
        load_pretrained(tall, path)
    report = load_pretrained(tall, path, source_grid=(16, 8))
    assert report.pos_embed == ((16, 8), (24, 8))
    same = VisionTransformer(img_size=(256, 128), patch_size=16, **DIMS)  # same grid: a copy
    assert load_pretrained(same, path).pos_embed is None
    torch.testing.assert_close(same.pos_embed, src.pos_embed, rtol=0, atol=0)


# ---------------------------------------------------------------- clear errors naming the path


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_pretrained(reid_timm(), tmp_path / "nope.pth")


def test_no_matching_keys_and_no_tensors(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.layer.0.weight": torch.zeros(2)}, path)
    with pytest.raises(PretrainedWeightsError, match=r"no key of .*other.pth matches"):
        load_pretrained(reid_timm(), path)
    path.write_bytes(b"not a checkpoint")  # read_weights' errors name the file
    with pytest.raises(PretrainedWeightsError, match=r"other.pth"):
        load_pretrained(reid_timm(), path)


def test_wrong_architecture_names_the_keys(deit_file, tmp_path):
    _, path = deit_file
    wide = timm.create_model("deit_small_distilled_patch16_224", pretrained=False,
                             img_size=(256, 128), num_classes=0, embed_dim=64, depth=2,
                             num_heads=2)
    with pytest.raises(PretrainedWeightsError, match=r"deit_small_distilled.*cls_token"):
        load_pretrained(wide, path)
    with pytest.raises(TypeError, match="pos_embed"):
        load_pretrained(torch.nn.Linear(2, 2), path)


# ---------------------------------------------------------------- shipped sureid backbone files
SHIPPED = Path(__file__).resolve().parents[2] / "examples" / "pretrained"


@pytest.mark.parametrize("role, dim", [("student", 64), ("teacher", 96)])
def test_shipped_backbones_load_with_load_pretrained(role, dim):
    path = SHIPPED / f"quick_{role}.pt"
    state = torch.load(path, weights_only=True)
    vit = VisionTransformer(img_size=(96, 48), patch_size=8, embed_dim=dim, depth=12,
                            num_heads=dim // 32, stem="conv")
    report = load_pretrained(vit, path, strict=True)
    assert len(report.loaded_keys) == len(state["state_dict"]) == len(vit.state_dict())
    assert report.prefix == "" and not report.missing_keys and not report.unexpected_keys
    assert report.file_info["arch"]["embed_dim"] == dim and report.file_info["img_size"] == (96, 48)
    assert "sureid-backbone-v1 file" in str(report)
    # the features the weights gave when saved (recorded in the file)
    torch.testing.assert_close(backbone_reference(vit, (96, 48)), state["reference"].float(),
                               atol=1e-3, rtol=0)
    assert vit.pos_embed.dtype == torch.float32  # fp16 in the file, fp32 in the model


def test_sureid_pretrained_builds_the_recorded_backbone(tmp_path, monkeypatch):
    import sureid

    vit = sureid.pretrained("quick_student")
    assert type(vit) is VisionTransformer and vit.training
    assert (vit.embed_dim, len(vit.blocks), tuple(vit.patch_embed.img_size)) == (64, 12, (96, 48))
    by_path = sureid.pretrained(SHIPPED / "quick_student.pt")
    for a, b in zip(vit.state_dict().values(), by_path.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # another input size: the position embedding is resampled, the reference is not checked
    big = sureid.pretrained("quick_teacher", img_size=(128, 64))
    assert big.pos_embed.shape == (1, 1 + 16 * 8, 96) and big(torch.randn(1, 3, 128, 64)).shape \
        == (1, 96)
    HTSViT(big, keep_ratio=0.7)  # ready to wrap
    # named files in another folder (root= or SUREID_WEIGHTS_DIR)
    (tmp_path / "mine.pt").write_bytes((SHIPPED / "quick_student.pt").read_bytes())
    assert sureid.pretrained("mine", root=tmp_path).embed_dim == 64
    monkeypatch.setenv("SUREID_WEIGHTS_DIR", str(tmp_path))
    assert sureid.pretrained("mine").embed_dim == 64
    with pytest.raises(FileNotFoundError, match=r"no backbone weights 'nope'.*names there: mine"):
        sureid.pretrained("nope")


def test_sureid_pretrained_refuses_other_files_and_altered_weights(tmp_path):
    import sureid

    torch.save({"state_dict": {"pos_embed": torch.zeros(1, 5, 8)}}, tmp_path / "plain.pt")
    with pytest.raises(PretrainedWeightsError, match="not a sureid backbone file.*load_pretrained"):
        sureid.pretrained(tmp_path / "plain.pt")
    state = torch.load(SHIPPED / "quick_student.pt", weights_only=True)
    state["state_dict"]["norm.weight"] = state["state_dict"]["norm.weight"] * 2
    torch.save(state, tmp_path / "changed.pt")
    with pytest.raises(PretrainedWeightsError, match="reference output differs"):
        sureid.pretrained(tmp_path / "changed.pt")
    assert sureid.pretrained(tmp_path / "changed.pt", check=False).embed_dim == 64
    del state["arch"]
    torch.save(state, tmp_path / "broken.pt")
    with pytest.raises(PretrainedWeightsError, match="lacks its arch"):
        sureid.pretrained(tmp_path / "broken.pt")
    with pytest.raises(TypeError, match="name must be a shipped name"):
        sureid.pretrained(3)
    with pytest.raises(TypeError, match="check must be a bool"):
        sureid.pretrained("quick_student", check=1)
    with pytest.raises(ValueError, match="img_size must be positive"):
        sureid.pretrained("quick_student", img_size=(0, 48))


def test_backbone_files_are_described_and_sureid_load_points_to_pretrained(capsys):
    from sureid.cli import main
    from sureid.hub import ModelFileError, describe_backbone_file, load

    info = backbone_file_info(SHIPPED / "quick_teacher.pt")
    assert info["arch"]["embed_dim"] == 96 and info["provenance"]["seed"] == 1000
    assert 1.3e6 < info["num_params"] < 1.4e6
    assert main(["info", str(SHIPPED / "quick_student.pt")]) == 0
    out = capsys.readouterr().out
    assert "backbone weights (sureid-backbone-v1)" in out and "64-d, depth 12" in out
    assert "input 96x48" in out and "sureid.pretrained(" in out
    with pytest.raises(ModelFileError, match=r"backbone weights.*sureid\.pretrained"):
        load(SHIPPED / "quick_student.pt")
    assert describe_backbone_file(__file__) is None  # not a torch file: not described here


def test_a_timm_backbone_file_builds_a_recorded_timm_model_that_saves(tmp_path):
    import sureid
    from sureid.models.timm_backbone import RECORD_ATTR, create_timm_model
    from sureid.models.weights_file import BACKBONE_FORMAT

    src = create_timm_model("deit_tiny_patch16_224", img_size=(64, 32), num_classes=0)
    torch.save({"format": BACKBONE_FORMAT, "arch": {"timm_name": "deit_tiny_patch16_224"},
                "img_size": [64, 32], "state_dict": src.state_dict(),
                "reference": backbone_reference(src, (64, 32))}, tmp_path / "t.pt")
    vit = sureid.pretrained(tmp_path / "t.pt")
    assert getattr(vit, RECORD_ATTR)["kwargs"] == {"img_size": (64, 32), "num_classes": 0}
    model = ReIDModel(HTSViT.from_timm(vit, keep_ratio=0.5, prune_layers=(1,)), 3).eval()
    x = torch.randn(2, 3, 64, 32)
    assert torch.equal(sureid.load(model.save(tmp_path / "m.pt"))(x), model(x))
