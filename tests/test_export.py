import numpy as np
import pytest
import torch

import sureid
from sureid.engine import ReIDModel
from sureid.export import export_onnx

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
        x = torch.randn(b, 3, *IMG)
        with torch.no_grad():
            ref = model(x)
        got = session.run(["embedding"], {"images": x.numpy()})[0]
        assert got.shape == (b, C)
        assert np.abs(got - ref.numpy()).max() <= 1e-4


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
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(4, 3, *IMG)
    with torch.no_grad():
        ref = model(x)
    got = session.run(["embedding"], {"images": x.numpy()})[0]
    assert np.abs(got - ref.numpy()).max() <= 1e-4
