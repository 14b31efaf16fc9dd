"""HTSViT: exactness against timm, train/eval equivalence, gradients, bad input."""

import pickle

import pytest
import torch

from sureid import HTSOutput, HTSViT, RatioLoss
from sureid.models.hts import num_kept_tokens
from sureid.models.vit import VisionTransformer, deit_small

timm = pytest.importorskip("timm")

TINY = dict(img_size=(64, 32), patch_size=8, embed_dim=32, depth=6, num_heads=2, num_classes=0)
N_TINY = 8 * 4
LAYERS = (1, 3, 4)

TIMM_VARIANTS = {
    "plain": {},
    "reg4": {"reg_tokens": 4},
    "reg4-noembedcls-layerscale-qknorm": {
        "reg_tokens": 4, "no_embed_class": True, "init_values": 0.5, "qk_norm": True,
    },
}


def tiny_timm(**extra):
    return timm.models.VisionTransformer(**TINY, **extra)


def tiny_hts(keep_ratio=0.6, *, backbone="timm", **extra):
    if backbone == "timm":
        return HTSViT.from_timm(tiny_timm(**extra), keep_ratio=keep_ratio, prune_layers=LAYERS)
    vit = VisionTransformer(**TINY, **extra)
    return HTSViT(vit, keep_ratio=keep_ratio, prune_layers=LAYERS)


def masks_from_indices(indices, n):
    """Cumulative hard masks (B, N) from kept original-grid indices per stage."""
    return [torch.zeros(idx.shape[0], n).scatter_(1, idx, 1.0) for idx in indices]


@pytest.fixture(scope="module")
def deit_s():
    return timm.create_model(
        "deit_small_patch16_224", pretrained=False, img_size=(256, 128), num_classes=0
    ).eval()


# ---------------------------------------------------------------- exactly the wrapped model


@pytest.mark.parametrize("how", ["keep_ratio=1.0", "prune=False"])
def test_no_pruning_reproduces_timm_deit_small(deit_s, how):
    kwargs = {"keep_ratio": 1.0} if how == "keep_ratio=1.0" else {"keep_ratio": 0.5, "prune": False}
    model = HTSViT.from_timm(deit_s, **kwargs).eval()
    x = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        ref = deit_s.forward_features(x)[:, 0]
        torch.testing.assert_close(model(x), ref, atol=1e-5, rtol=0)
        model.train()
        out = model(x)
        model.eval()
    torch.testing.assert_close(out.features, ref, atol=1e-5, rtol=0)


def test_keep_one_cls_attn_is_last_block_softmax(deit_s):
    """Eq. 7 checked against a hook on timm's own last block."""
    model = HTSViT.from_timm(deit_s, keep_ratio=1.0)
    captured = {}
    last = deit_s.blocks[-1]
    handle = last.norm1.register_forward_hook(lambda m, i, o: captured.setdefault("h", o))
    x = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        deit_s.forward_features(x)
        handle.remove()
        h = captured["h"]
        b, t, c = h.shape
        q, k, _ = last.attn.qkv(h).reshape(b, t, 3, 6, c // 6).permute(2, 0, 3, 1, 4)
        ref = (q @ k.transpose(-2, -1) * (c // 6) ** -0.5).softmax(-1)[:, :, 0].mean(1)
        out = model.train()(x)
    torch.testing.assert_close(out.cls_attn, ref, atol=1e-6, rtol=1e-5)
    assert out.keep_masks and all(bool((m == 1).all()) for m in out.keep_masks)


# ---------------------------------------------------------------- train path == eval path


@pytest.mark.parametrize("variant", sorted(TIMM_VARIANTS))
@pytest.mark.parametrize("keep_ratio", [0.7, 0.3])
def test_masked_training_path_equals_token_dropping(variant, keep_ratio):
    model = tiny_hts(keep_ratio, **TIMM_VARIANTS[variant]).eval()
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        tokens, indices = model.forward_features(x, return_indices=True)
        out = model.forward_train(x, keep_masks=masks_from_indices(indices, N_TINY))
    torch.testing.assert_close(out.features, tokens[:, 0], atol=1e-5, rtol=0)
    p = model.num_prefix_tokens
    torch.testing.assert_close(out.tokens[:, :p], tokens[:, :p], atol=1e-5, rtol=0)  # prefix kept
    final = out.keep_masks[-1].bool()
    for b in range(3):  # kept patch tokens match one to one
        torch.testing.assert_close(out.tokens[b, p:][final[b]], tokens[b, p:], atol=1e-5, rtol=0)


@pytest.mark.parametrize("backbone", ["timm", "sureid"])
def test_masked_training_path_has_the_gradients_of_token_dropping(backbone):
    # The forward passes agreeing is not enough: the masked attention's backward once lost
    # each row's largest logit (a clamp's zero gradient at its bound) while its forward was
    # exact, and training through it degraded the embedding. float64, so any real difference
    # stands far above rounding.
    torch.manual_seed(0)
    model = tiny_hts(0.5, backbone=backbone).double().eval()
    for blk in model.backbone.blocks:  # peaky attention, as in a trained model
        blk.attn.qkv.weight.data.mul_(4.0)
    x = torch.randn(3, 3, 64, 32, dtype=torch.float64)
    with torch.no_grad():
        _, indices = model.forward_features(x, return_indices=True)
    names, vit_params = zip(*model.backbone.named_parameters(), strict=True)
    coef = torch.randn(model.embed_dim, dtype=torch.float64)

    def grads(features):
        return torch.autograd.grad((features * coef).sum(), vit_params, allow_unused=True)

    dropped = grads(model.forward_features(x)[:, 0])
    masked = grads(model.forward_train(x, keep_masks=masks_from_indices(indices, N_TINY)).features)
    for param, a, b in zip(names, dropped, masked, strict=True):
        if a is not None:
            torch.testing.assert_close(b, a, atol=1e-9, rtol=1e-7, msg=param)


def test_masked_training_path_equals_token_dropping_deit_small(deit_s):
    model = HTSViT.from_timm(deit_s, keep_ratio=0.7).eval()
    x = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        tokens, indices = model.forward_features(x, return_indices=True)
        out = model.forward_train(x, keep_masks=masks_from_indices(indices, 128))
    assert [i.shape[1] for i in indices] == [89, 62, 43]
    torch.testing.assert_close(out.features, tokens[:, 0], atol=1e-5, rtol=0)


def test_sureid_vit_and_timm_vit_give_the_same_hts_model():
    ref = tiny_hts(0.5, reg_tokens=4)
    ours = tiny_hts(0.5, backbone="sureid", reg_tokens=4)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), ref.eval()(x), atol=1e-5, rtol=0)
        torch.manual_seed(1)
        a = ours.train()(x)
        torch.manual_seed(1)
        b = ref.train()(x)
    torch.testing.assert_close(a.features, b.features, atol=1e-5, rtol=0)


# ---------------------------------------------------------------- eval path details


def test_kept_indices_are_topk_of_decision_and_nested():
    model = tiny_hts(0.6, reg_tokens=2).eval()
    vit = model.backbone
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        tokens, indices = model.forward_features(x, return_indices=True)
        # independent reference for stage 0: run timm's own modules up to block LAYERS[0]
        h = vit.norm_pre(vit._pos_embed(vit.patch_embed(x)))
        h = vit.blocks[: LAYERS[0]](h)
        score = model.decision[0](h[:, 3:])[..., 1]
    ks = [num_kept_tokens(N_TINY, 0.6 ** (s + 1)) for s in range(3)]
    assert [i.shape for i in indices] == [(2, k) for k in ks]
    assert tokens.shape == (2, 3 + ks[-1], 32)
    for b in range(2):
        assert indices[0][b].tolist() == sorted(score[b].topk(ks[0]).indices.tolist())
        for s, idx in enumerate(indices):
            assert idx[b].tolist() == sorted(set(idx[b].tolist()))  # sorted, unique
            assert 0 <= idx[b].min() and idx[b].max() < N_TINY
            if s:
                assert set(idx[b].tolist()) <= set(indices[s - 1][b].tolist())


def test_ratio_one_stage_is_skipped():
    model = HTSViT.from_timm(tiny_timm(), keep_ratio=[1.0, 0.5, 0.25], prune_layers=LAYERS)
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        _, indices = model.eval().forward_features(x, return_indices=True)
        out = model.train()(x)
    assert [i.shape[1] for i in indices] == [16, 8]
    assert len(out.keep_masks) == 3 and bool((out.keep_masks[0] == 1).all())


def test_dynamic_img_size_timm_model():
    vit = tiny_timm(dynamic_img_size=True)
    model = HTSViT.from_timm(vit, keep_ratio=0.5, prune_layers=LAYERS).eval()
    with torch.no_grad():
        for h, w in [(64, 32), (48, 48)]:
            _, indices = model.forward_features(torch.randn(1, 3, h, w), return_indices=True)
            n = (h // 8) * (w // 8)
            assert indices[0].shape[1] == num_kept_tokens(n, 0.5)


def test_eval_does_not_modify_input_and_pickles():
    model = tiny_hts(0.5, backbone="sureid").eval()
    x = torch.randn(2, 3, 64, 32)
    x_copy = x.clone()
    with torch.no_grad():
        y = model(x)
        y2 = pickle.loads(pickle.dumps(model))(x)
    assert torch.equal(x, x_copy)
    assert y.shape == (2, 32)
    torch.testing.assert_close(y, y2)


# ---------------------------------------------------------------- training path


def test_training_output_masks_monotone_prefix_kept():
    model = tiny_hts(0.6, reg_tokens=4).train()
    out = model(torch.randn(4, 3, 64, 32))
    assert isinstance(out, HTSOutput)
    assert out.num_prefix_tokens == 5 and out.tokens.shape == (4, 5 + N_TINY, 32)
    assert len(out.keep_masks) == 3
    prev = torch.ones(4, N_TINY)
    for m in out.keep_masks:
        assert m.shape == (4, N_TINY)
        assert set(m.unique().tolist()) <= {0.0, 1.0}
        assert bool((m <= prev).all())
        prev = m
    # cls_attn is a distribution over all T tokens; dropped tokens get none of it
    torch.testing.assert_close(out.cls_attn.sum(-1), torch.ones(4))
    assert bool((out.cls_attn[:, 5:][out.final_mask == 0] == 0).all())
    assert bool((out.cls_attn[:, :5] > 0).all())


def test_seeded_training_forwards_repeat_exactly():
    model = tiny_hts(0.6).train()
    x = torch.randn(2, 3, 64, 32)
    torch.manual_seed(7)
    a = model(x)
    torch.manual_seed(7)
    b = model(x)
    c = model(x)
    assert torch.equal(a.features, b.features)
    assert all(torch.equal(m, n) for m, n in zip(a.keep_masks, b.keep_masks, strict=True))
    assert not all(torch.equal(m, n) for m, n in zip(a.keep_masks, c.keep_masks, strict=True))


@pytest.mark.parametrize("pool", ["token", "avg", "max"])
@pytest.mark.parametrize("source", ["feature", "ratio"])
def test_every_decision_parameter_gets_gradient(source, pool):
    model = tiny_hts(0.6, reg_tokens=4, global_pool=pool).train()
    out = model(torch.randn(4, 3, 64, 32))
    if source == "feature":
        loss = (out.features * torch.randn_like(out.features)).sum()
    else:
        loss = RatioLoss(model.keep_ratios)(out.keep_masks)
    loss.backward()
    for name, p in model.decision.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    if source == "feature":
        for name, p in model.backbone.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("pool", ["token", "avgmax"])
@pytest.mark.parametrize("case", ["tiny_ratio", "all_dropped"])
def test_no_nan_when_almost_nothing_is_kept(case, pool):
    model = tiny_hts(0.02, reg_tokens=2, global_pool=pool).train()
    x = torch.randn(3, 3, 64, 32)
    if case == "all_dropped":
        with torch.no_grad():  # push every decision to "drop"
            for d in model.decision:
                d.out_conv[-2].bias.copy_(torch.tensor([30.0, -30.0]))
    out = model(x)
    if case == "all_dropped":
        assert all(bool((m == 0).all()) for m in out.keep_masks)
    loss = out.features.square().sum() + RatioLoss(model.keep_ratios)(out.keep_masks)
    loss.backward()
    assert torch.isfinite(out.features).all()
    assert torch.isfinite(out.tokens).all() and torch.isfinite(out.cls_attn).all()
    for name, p in model.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), name
    with torch.no_grad():
        _, indices = model.eval().forward_features(x, return_indices=True)
    assert [i.shape[1] for i in indices] == [1, 1, 1]


def test_drop_path_and_dropout_are_used_in_training():
    vit = tiny_timm(drop_path_rate=0.3, attn_drop_rate=0.2)
    model = HTSViT.from_timm(vit, keep_ratio=1.0, prune_layers=LAYERS).train()
    x = torch.randn(2, 3, 64, 32)
    assert not torch.allclose(model(x).features, model(x).features)


# ---------------------------------------------------------------- state dict


def test_state_dict_layout_and_plain_timm_checkpoint():
    vit = tiny_timm(reg_tokens=4)
    model = HTSViT.from_timm(tiny_timm(reg_tokens=4), keep_ratio=0.7, prune_layers=LAYERS)
    keys = model.state_dict().keys()
    assert all(k.startswith(("backbone.", "decision.")) for k in keys)
    assert {k.split(".")[1] for k in keys if k.startswith("decision.")} == {"0", "1", "2"}
    model.load_backbone_state_dict(vit.state_dict())
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        ref = vit.eval().forward_features(x)[:, 0]
        model.prune = False
        model.eval()
        torch.testing.assert_close(model(x), ref, atol=1e-5, rtol=0)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [  # the checks themselves: test_hts_checks.py
        ({"keep_ratio": 1.2}, ValueError, r"keep_ratio must be in \(0, 1\]"),
        ({"keep_ratio": [0.7, 0.5]}, ValueError, "expected 3 values"),
        ({"prune_layers": (1, 6)}, ValueError, r"\[0, 5\] for a 6-block model"),
        ({"tau": 0.0}, ValueError, "tau"),
        ({"tau": float("inf")}, ValueError, r"tau must be in \(0, inf\), got inf"),
        ({"tau": float("nan")}, ValueError, r"tau must be in \(0, inf\), got nan"),
        ({"tau": "1"}, TypeError, "tau must be a real number, got str '1'"),
        ({"prune": 1}, TypeError, "prune"),
        ({"compute_cls_attn": None}, TypeError, "compute_cls_attn must be a bool"),
    ],
)
def test_bad_arguments(kwargs, err, match):
    kwargs = {"keep_ratio": 0.7, "prune_layers": LAYERS, **kwargs}
    with pytest.raises(err, match=match):
        HTSViT.from_timm(tiny_timm(), **kwargs)


def test_from_timm_rejects_other_models():
    with pytest.raises(TypeError, match="timm.models.vision_transformer.VisionTransformer"):
        HTSViT.from_timm(deit_small(img_size=(64, 32), depth=4), prune_layers=LAYERS)
    with pytest.raises(TypeError, match="VisionTransformer"):
        HTSViT.from_timm("deit_small", prune_layers=LAYERS)
    parallel = timm.models.VisionTransformer(
        **TINY, block_fn=timm.models.vision_transformer.ParallelScalingBlock
    )
    with pytest.raises(TypeError, match=r"blocks\[0\] must be a timm Block"):
        HTSViT.from_timm(parallel, prune_layers=LAYERS)


def test_training_keep_masks_argument_checked():
    model = tiny_hts(0.6).train()
    x = torch.randn(2, 3, 64, 32)
    with pytest.raises(ValueError, match="keep_masks must be 3 tensors"):
        model.forward_train(x, keep_masks=[torch.ones(2, N_TINY)])
    first = torch.ones(2, N_TINY, dtype=torch.bool)
    first[:, :4] = False
    out = model.forward_train(x, keep_masks=[first, first, first])  # bool masks are hard
    assert torch.equal(out.keep_masks[-1], first.float())


def test_keep_ratios_reassigned_is_checked():
    """Issue 16: keep_ratios changed to another length gave an IndexError."""
    model = tiny_hts(0.6).eval()
    x = torch.randn(2, 3, 64, 32)
    model.keep_ratios = (0.5, 0.4, 0.3)  # same length: a supported change
    assert model.keep_ratios == (0.5, 0.4, 0.3)
    _, indices = model.forward_features(x, return_indices=True)
    assert [i.shape[1] for i in indices] == [num_kept_tokens(N_TINY, r) for r in (0.5, 0.4, 0.3)]
    with pytest.raises(ValueError, match=r"keep_ratios lists one ratio per stage: expected 3"):
        model.keep_ratios = (0.5,)
    with pytest.raises(ValueError, match=r"keep_ratios\[2\] must be in \(0, 1\]"):
        model.keep_ratios = (0.5, 0.4, float("nan"))
    with pytest.raises(TypeError, match="keep_ratios must be a sequence of one ratio per stage"):
        model.keep_ratios = 0.5
    assert model.keep_ratios == (0.5, 0.4, 0.3)  # refused changes leave it as it was


def test_eval_path_exports_with_static_k():
    # static k, topk + index_select, no data-dependent Python control flow: torch.export
    # (the ONNX exporter's front end) captures it and the graph replays on other images
    model = tiny_hts(0.6, reg_tokens=2).eval()
    program = torch.export.export(model, (torch.randn(2, 3, 64, 32),))
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), atol=1e-5, rtol=0)
    # another image size is refused by the exported program's shape guard, not deep inside
    with pytest.raises(Exception, match=r"size\(\)\[2\] == 64"):
        program.module()(torch.randn(2, 3, 32, 32))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_training_forward_under_autocast_is_finite_and_close_to_float32(dtype):
    model = tiny_hts(0.6).train()
    x = torch.randn(2, 3, 64, 32)
    torch.manual_seed(3)
    ref = model(x)
    with torch.autocast("cpu", dtype=dtype):
        torch.manual_seed(3)
        out = model(x)
    assert torch.isfinite(out.features).all()
    assert all(m.dtype == torch.float32 for m in out.keep_masks)
    cos = torch.nn.functional.cosine_similarity(out.features.float(), ref.features, dim=1)
    assert (cos > 0.98).all()


def test_train_output_carries_the_target_of_each_mask_and_inactive_parameters():
    model = tiny_hts(keep_ratio=[1.0, 0.7, 0.5], backbone="sureid").train()
    out = model(torch.randn(2, 3, 64, 32))
    assert out.keep_ratios == model.keep_ratios and len(out.keep_masks) == 3
    # the ratio-1 stage is skipped: its decision module is named, the head too (num_classes=0:
    # Identity, no parameters), active stages are not
    names = model.inactive_parameters()
    assert names and all(n.startswith("decision.0.") for n in names)
    model.prune = False
    out = model(torch.randn(2, 3, 64, 32))
    assert out.keep_ratios == () and out.keep_masks == []
    assert {n.split(".")[1] for n in model.inactive_parameters()} == {"0", "1", "2"}


@pytest.mark.parametrize(("keep_ratio", "init", "expected"), [
    (0.7, 0.95, (0.95, 0.95, 0.95)),
    (0.98, 0.95, (0.98, 0.98, 0.98)),  # never below the stage's own ratio
    ((0.9, 0.5, 0.45), 0.95, (0.95, 0.95, 0.95)),
    ((0.99, 0.5, 0.495), 0.6, (0.99, 0.6, 0.99)),
])
def test_decision_init_keep_per_stage(keep_ratio, init, expected):
    model = HTSViT(VisionTransformer(**TINY), keep_ratio=keep_ratio, prune_layers=LAYERS,
                   decision_init_keep=init)
    got = [torch.sigmoid(d.out_conv[-2].bias[1] - d.out_conv[-2].bias[0]).item()
           for d in model.decision]
    assert got == pytest.approx(expected, abs=1e-4)


def test_decision_init_keep_default_and_none():
    torch.manual_seed(0)
    default = HTSViT(VisionTransformer(**TINY), prune_layers=LAYERS)
    torch.manual_seed(0)
    plain = HTSViT(VisionTransformer(**TINY), prune_layers=LAYERS, decision_init_keep=None)
    assert default.decision[0].out_conv[-2].bias[1] > 2.9  # logit(0.95) = 2.94
    assert abs(plain.decision[0].out_conv[-2].bias).max() < 1  # PyTorch's uniform init
    with pytest.raises(ValueError, match="decision_init_keep"):
        HTSViT(VisionTransformer(**TINY), prune_layers=LAYERS, decision_init_keep=1.0)
    with pytest.raises(TypeError, match="decision_init_keep"):
        HTSViT(VisionTransformer(**TINY), prune_layers=LAYERS, decision_init_keep="0.9")


def test_from_timm_passes_decision_init_keep():
    timm = pytest.importorskip("timm")
    vit = timm.create_model("deit_tiny_patch16_224", pretrained=False, img_size=(64, 32),
                            patch_size=8, depth=4, num_classes=0)
    model = HTSViT.from_timm(vit, prune_layers=(1, 2), decision_init_keep=0.8)
    bias = model.decision[1].out_conv[-2].bias
    assert torch.sigmoid(bias[1] - bias[0]).item() == pytest.approx(0.8)


def test_kept_per_block_is_what_the_inference_path_keeps():
    model = tiny_hts(0.6).eval()  # stages before blocks LAYERS = (1, 3, 4)
    ks = [num_kept_tokens(N_TINY, 0.6 ** (s + 1)) for s in range(3)]
    assert model.kept_per_block(N_TINY) == (None, ks[0], None, ks[1], ks[2], None)
    with torch.no_grad():
        _, indices = model.forward_features(torch.randn(1, 3, 64, 32), return_indices=True)
    assert [i.shape[1] for i in indices] == ks
    model.keep_ratios = (0.5, 0.5, 0.25)  # cumulative: the second stage keeps 16 of 16
    assert model.kept_per_block(N_TINY) == (None, 16, None, 16, 8, None)
    model.prune = False
    assert model.kept_per_block(N_TINY) == (None,) * 6
