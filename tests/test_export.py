import numpy as np
import pytest
import torch

import sureid
from sureid.export import export_onnx
from sureid.models import ReIDModel

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

IMG = (32, 16)  # 4 x 2 = 8 patches of 8 x 8
C = 32


def tiny_hts(prune=True, keep_ratio=0.7):
    vit = sureid.VisionTransformer(img_size=IMG, patch_size=8, embed_dim=C, depth=4, num_heads=2)
    return sureid.HTSViT(vit, keep_ratio=keep_ratio, prune_layers=(1, 3), prune=prune).eval()


def matmul_tokens(path, batch=2):
    """Token count T of every MatMul output (B, T, D), in graph order, with D.

    Every MatMul output is made a graph output and the file is run with onnxruntime, so the
    shapes are the ones really computed.
    """
    model = onnx.load(str(path))
    names = [n.output[0] for n in model.graph.node if n.op_type == "MatMul"]
    known = {o.name for o in model.graph.output}
    for name in names:
        if name not in known:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = session.run(names, {"images": np.random.randn(batch, 3, *IMG).astype(np.float32)})
    return [(o.shape[-2], o.shape[-1]) for o in outs if o.ndim == 3]


def assert_onnxruntime_matches(model, path, batch=4):
    """The exported file's embedding equals the model's on random images, within 1e-4."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(batch, 3, *IMG)
    with torch.no_grad():
        ref = model(x)
    got = session.run(["embedding"], {"images": x.numpy()})[0]
    assert got.shape == (batch, C) and np.abs(got - ref.numpy()).max() <= 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = tiny_hts()
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "hts.onnx", IMG,
                       verify_batch_sizes=(1, 32))
    return model, path


def test_onnxruntime_matches_pytorch_at_batch_1_and_32_in_one_file(exported):
    model, path = exported
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "images" and isinstance(inp.shape[0], str)  # symbolic batch
    for b in (1, 32):
        assert_onnxruntime_matches(model, path, b)


def test_graph_prunes_tokens(exported, tmp_path):
    model, path = exported
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"TopK", "Gather"} <= ops
    dense_path = export_onnx(tiny_hts(prune=False), tmp_path / "dense.onnx", IMG)
    assert "TopK" not in {n.op_type for n in onnx.load(str(dense_path)).graph.node}

    # qkv projections (width 3C), one per block: 1 + 8 tokens, then 1 + k_1, then 1 + k_2
    k1, k2 = (sureid.models.hts.num_kept_tokens(8, r) for r in model.keep_ratios)
    assert (k1, k2) == (5, 3)
    pruned = matmul_tokens(path)
    dense = matmul_tokens(dense_path)
    assert [t for t, d in pruned if d == 3 * C] == [9, 1 + k1, 1 + k1, 1 + k2]
    assert [t for t, d in dense if d == 3 * C] == [9, 9, 9, 9]
    # MLP fc1 (width 4C) runs on the kept tokens too
    assert [t for t, d in pruned if d == 4 * C] == [9, 1 + k1, 1 + k1, 1 + k2]


def test_export_leaves_model_and_rng_unchanged(tmp_path):
    model = tiny_hts()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    export_onnx(model, tmp_path / "sub" / "m.onnx", IMG, dynamic_batch=False)
    assert not model.training
    assert torch.equal(torch.get_rng_state(), rng)  # inputs come from a local generator
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_fixed_batch_export(tmp_path):
    path = export_onnx(tiny_hts(), tmp_path / "m.onnx", IMG, dynamic_batch=False,
                       verify_batch_sizes=(3,))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [3, 3, *IMG]


def test_bad_input(tmp_path):
    path = tmp_path / "m.onnx"
    with pytest.raises(ValueError, match="eval mode"):
        export_onnx(tiny_hts().train(), path, IMG)
    with pytest.raises(ValueError, match=r"opset must be in 14\.\.20, got 11"):
        export_onnx(tiny_hts(), path, IMG, opset=11)
    with pytest.raises(TypeError, match="opset must be an int"):
        export_onnx(tiny_hts(), path, IMG, opset="17")
    vit = sureid.VisionTransformer(img_size=IMG, patch_size=8, embed_dim=C, depth=2, num_heads=2)
    with pytest.raises(TypeError, match="model must be a sureid.HTSViT, got sureid.models.vit"):
        export_onnx(vit.eval(), path, IMG)
    with pytest.raises(TypeError, match=r"pass model.backbone"):
        export_onnx(ReIDModel(tiny_hts(), num_classes=4).eval(), path, IMG)
    with pytest.raises(ValueError, match=r"img_size must match the model's input size \(32, 16\)"):
        export_onnx(tiny_hts(), path, (64, 32))
    with pytest.raises(TypeError, match="img_size must be a pair"):
        export_onnx(tiny_hts(), path, 32)
    assert not path.exists()


def test_torch_compile_eval_gives_the_same_embeddings():
    # inductor takes minutes on this 2-core CI box: the test compiles with aot_eager (dynamo
    # capture + AOTAutograd); benchmarks/onnx_speed.py measures inductor.
    torch._dynamo.reset()
    model = tiny_hts()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    x = torch.randn(4, 3, *IMG)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=0, atol=1e-5)


def test_conv_stem_model_exports_and_matches(tmp_path):
    torch.manual_seed(0)
    vit = sureid.VisionTransformer(img_size=IMG, patch_size=8, embed_dim=C, depth=4, num_heads=2,
                                   stem="conv")
    model = sureid.HTSViT(vit, keep_ratio=0.7, prune_layers=(1, 3)).train()
    model(torch.randn(8, 3, *IMG))  # non-trivial BN running statistics in the stem
    model.eval()
    path = export_onnx(model, tmp_path / "conv.onnx", IMG, verify_batch_sizes=(1, 4))
    assert_onnxruntime_matches(model, path)


def test_attention_keep_score_exports_and_prunes(tmp_path):
    torch.manual_seed(0)
    vit = sureid.VisionTransformer(img_size=IMG, patch_size=8, embed_dim=C, depth=4, num_heads=2)
    model = sureid.HTSViT(vit, keep_ratio=0.5, prune_layers=(1, 3), keep_score="attention")
    path = export_onnx(model.eval(), tmp_path / "attn.onnx", IMG, verify_batch_sizes=(1, 4))
    assert_onnxruntime_matches(model, path)
    # the qkv projections (D = 3C) of blocks 0-3 run on 1 + 8, 1 + 4, 1 + 4 and 1 + 2 tokens
    assert [t for t, d in matmul_tokens(path) if d == 3 * C] == [9, 5, 5, 3]


# ----------------------------------------------------------------------------- issue 16
def test_failed_verification_leaves_the_old_file_untouched(tmp_path, monkeypatch):
    import sureid.export.verify as verify_mod

    path = export_onnx(tiny_hts(), tmp_path / "prod.onnx", IMG)
    good = path.read_bytes()
    real_session = verify_mod.session

    class Wrong:  # a session whose embeddings are off by one
        def __init__(self, *args):
            self.inner = real_session(*args)

        def run(self, names, feed):
            return [o + 1.0 for o in self.inner.run(names, feed)]

    monkeypatch.setattr(verify_mod, "session", Wrong)
    torch.manual_seed(1)
    with pytest.raises(RuntimeError, match="differs from PyTorch.*nothing was written"):
        export_onnx(tiny_hts(), path, IMG)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["prod.onnx"]  # no temporary left


def test_export_replaces_an_existing_file_after_verification(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    export_onnx(tiny_hts(), path, IMG)
    onnx.checker.check_model(str(path))
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_dynamic_img_size_model_at_another_size_is_refused_clearly(tmp_path, capfd):
    timm = pytest.importorskip("timm")
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=IMG, patch_size=8,
                            dynamic_img_size=True, num_classes=0, depth=2)
    model = sureid.HTSViT.from_timm(vit, keep_ratio=0.7, prune_layers=(1,)).eval()
    with pytest.raises(ValueError, match=r"dynamic_img_size model exports only at its own input "
                                         r"size \(32, 16\) \(H, W\), got \(64, 32\)"):
        export_onnx(model, tmp_path / "m.onnx", (64, 32))
    out, err = capfd.readouterr()
    assert len((out + err).splitlines()) < 5  # no exporter graph dump
    assert not (tmp_path / "m.onnx").exists()
    export_onnx(model, tmp_path / "m.onnx", IMG)  # its own size exports


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        ({"verify_batch_sizes": "12"}, TypeError, r"verify_batch_sizes must be a sequence of "
                                                  r"ints, got '12'"),
        ({"verify_batch_sizes": (1.5,)}, TypeError,
         r"verify_batch_sizes\[0\] must be an int, got float 1.5"),
        ({"verify_batch_sizes": ()}, ValueError, "verify_batch_sizes must hold at least one"),
        ({"verify_batch_sizes": (2, 0)}, ValueError, r"verify_batch_sizes\[1\] must be >= 1"),
        ({"atol": "1e-4"}, TypeError, r"atol must be a real number, got str '1e-4'"),
        ({"atol": float("nan")}, ValueError, r"atol must be in \(0, inf\], got nan"),
        ({"atol": 0}, ValueError, "atol must be in"),
        ({"quantize": "int4"}, ValueError, r"quantize must be one of \(None, 'int8'\)"),
        ({"quantize": "int8", "min_cosine": 2}, ValueError, "min_cosine must be in"),
    ],
)
def test_bad_arguments_are_named(tmp_path, kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        export_onnx(tiny_hts(), tmp_path / "m.onnx", IMG, **kwargs)
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- int8 (issue 17)
def test_int8_export_round_trip(tmp_path):
    from sureid.export import quantize_onnx

    torch.manual_seed(0)
    model = tiny_hts()
    images = torch.randn(16, 3, *IMG)
    path = export_onnx(model, tmp_path / "q.onnx", IMG, quantize="int8", verify_images=images)
    assert [p.name for p in tmp_path.iterdir()] == ["q.onnx"]
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "DynamicQuantizeLinear" in ops or "DynamicQuantizeMatMul" in ops
    assert {"TopK", "Gather"} <= ops  # still prunes
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(4, 3, *IMG)
    with torch.no_grad():
        ref = model(x)
    got = torch.from_numpy(session.run(["embedding"], {"images": x.numpy()})[0])
    # fresh images: a tiny random model can flip a token, so a looser bound than the check's
    assert torch.nn.functional.cosine_similarity(got, ref).min() > 0.95

    fp32 = export_onnx(model, tmp_path / "f.onnx", IMG)
    report = quantize_onnx(fp32, tmp_path / "q2.onnx", images)
    assert report.num_images == 16 and report.min_cosine > 0.98
    assert len(report.token_overlap) == 2 and min(report.token_overlap) >= 0.8
    assert report.excluded_nodes and all("/decision" in n for n in report.excluded_nodes)
    dense = export_onnx(tiny_hts(prune=False), tmp_path / "d.onnx", IMG)
    assert quantize_onnx(dense, tmp_path / "d8.onnx", images).token_overlap == ()


def test_int8_fixed_batch_export(tmp_path):
    path = export_onnx(tiny_hts(), tmp_path / "q.onnx", IMG, dynamic_batch=False,
                       verify_batch_sizes=(3,), quantize="int8")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [3, 3, *IMG]


def test_int8_failed_check_writes_nothing(tmp_path):
    from sureid.export import quantize_onnx

    fp32 = export_onnx(tiny_hts(), tmp_path / "f.onnx", IMG)
    dst = tmp_path / "q.onnx"
    dst.write_bytes(b"old")
    with pytest.raises(RuntimeError, match=r"embedding cosine min .* \(need >= 1\)"):
        quantize_onnx(fp32, dst, torch.randn(4, 3, *IMG), min_cosine=1.0)
    assert dst.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.onnx", "q.onnx"]
    with pytest.raises(ValueError, match="verify_images must be"):
        quantize_onnx(fp32, dst, torch.randn(3, *IMG))


def test_missing_quantization_module_names_the_extra(tmp_path, monkeypatch):
    import sys

    from sureid.export import quantize_onnx

    fp32 = export_onnx(tiny_hts(), tmp_path / "f.onnx", IMG)
    monkeypatch.setitem(sys.modules, "onnxruntime.quantization", None)
    with pytest.raises(ImportError, match=r"pip install 'sureid\[onnx\]'"):
        quantize_onnx(fp32, tmp_path / "q.onnx", torch.randn(2, 3, *IMG))
    with pytest.raises(ImportError, match=r"quantize='int8'.*sureid\[onnx\]"):
        export_onnx(tiny_hts(), tmp_path / "q.onnx", IMG, quantize="int8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.onnx"]


def test_int8_quantises_the_linear_layers_not_the_patch_conv_by_default(tmp_path):
    from sureid.export import quantize_onnx

    fp32 = export_onnx(tiny_hts(), tmp_path / "f.onnx", IMG)
    images = torch.randn(4, 3, *IMG)

    def ops(path):
        return [n.op_type for n in onnx.load(str(path)).graph.node]

    assert "Conv" in ops(fp32)
    default = ops(quantize_onnx(fp32, tmp_path / "q.onnx", images).path)
    assert "Conv" in default and "ConvInteger" not in default
    assert "DynamicQuantizeLinear" in default or "DynamicQuantizeMatMul" in default
    with_conv = quantize_onnx(fp32, tmp_path / "qc.onnx", images,
                              op_types_to_quantize=("MatMul", "Gemm", "Conv"))
    assert "ConvInteger" in ops(with_conv.path) and "Conv" not in ops(with_conv.path)
    for bad in ("MatMul", (), ("MatMul", 3)):
        with pytest.raises(TypeError, match="op_types_to_quantize must be a non-empty sequence"):
            quantize_onnx(fp32, tmp_path / "x.onnx", images, op_types_to_quantize=bad)
    assert not (tmp_path / "x.onnx").exists()


# ----------------------------------------------------------------------------- issue 26
@pytest.mark.parametrize("content", [b"garbage, not an onnx file" * 4, b"",
                                     b"PK\x03\x04 a zip"])
def test_quantize_onnx_names_a_src_that_is_not_onnx(tmp_path, content):
    pytest.importorskip("onnxruntime.quantization")
    from sureid.export import quantize_onnx

    src = tmp_path / "bad.onnx"
    src.write_bytes(content)
    with pytest.raises(ValueError, match=r"src '.*bad.onnx' is not an ONNX model file"):
        quantize_onnx(src, tmp_path / "q.onnx", torch.zeros(1, 3, 64, 32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]


@pytest.mark.parametrize("target", ["folder", "below_a_file"])
def test_export_to_a_path_that_cannot_be_a_file_is_refused_first(tmp_path, target):
    (tmp_path / "f").write_text("x")
    path = tmp_path if target == "folder" else tmp_path / "f" / "m.onnx"
    with pytest.raises(ValueError, match="path"):
        export_onnx(tiny_hts(), path, img_size=IMG)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
