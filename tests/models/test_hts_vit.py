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


POOLS = {
    "avg": {"global_pool": "avg"},  # timm turns fc_norm on and the final norm off
    "avg-no-fc_norm": {"global_pool": "avg", "fc_norm": False},
    "avg-reg4-include-prefix": {"global_pool": "avg", "reg_tokens": 4, "pool_include_prefix": True},
    "max": {"global_pool": "max"},
    "avgmax-reg4": {"global_pool": "avgmax", "reg_tokens": 4},
    "token-fc_norm": {"global_pool": "token", "fc_norm": True},
}


def timm_embedding(vit, x):
    """What the wrapped timm model itself returns as its embedding."""
    return vit.forward_head(vit.forward_features(x), pre_logits=True)


@pytest.mark.parametrize("variant", sorted(POOLS))
@pytest.mark.parametrize("how", ["keep_ratio=1.0", "prune=False"])
def test_keep_one_reproduces_timm_pooling_and_fc_norm(variant, how):
    """Issue 16: global_pool="avg" / fc_norm were ignored (11.7 max abs difference)."""
    torch.manual_seed(0)
    vit = tiny_timm(**POOLS[variant]).eval()
    for param in vit.parameters():  # non-trivial norms, so a skipped fc_norm shows
        param.data.add_(0.3 * torch.randn_like(param))
    kwargs = {"keep_ratio": 1.0} if how == "keep_ratio=1.0" else {"keep_ratio": 0.5, "prune": False}
    model = HTSViT.from_timm(vit, prune_layers=LAYERS, **kwargs).eval()
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        ref = timm_embedding(vit, x)
        assert not torch.allclose(ref, vit.forward_features(x)[:, 0], atol=1e-2)
        torch.testing.assert_close(model(x), ref, atol=1e-5, rtol=0)
        model.train()
        out = model(x)
    torch.testing.assert_close(out.features, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("variant", ["avg", "max", "avgmax-reg4", "avg-reg4-include-prefix"])
def test_pooling_on_pruned_tokens_runs_over_the_kept_tokens(variant):
    torch.manual_seed(0)
    vit = tiny_timm(**POOLS[variant])
    model = HTSViT.from_timm(vit, keep_ratio=0.5, prune_layers=LAYERS).eval()
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        tokens, indices = model.forward_features(x, return_indices=True)
        # timm's own head on the surviving tokens: the definition of pruned pooling
        torch.testing.assert_close(model(x), vit.forward_head(tokens, pre_logits=True))
        out = model.forward_train(x, keep_masks=masks_from_indices(indices, N_TINY))
    assert tokens.shape[1] == model.num_prefix_tokens + indices[-1].shape[1] < 32
    torch.testing.assert_close(out.features, model(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("pool", ["map", ""])
def test_unsupported_pooling_is_refused(pool):
    with pytest.raises(ValueError, match=rf"global_pool='{pool}'.*not attention pooling"):
        HTSViT.from_timm(tiny_timm(global_pool=pool), prune_layers=LAYERS)


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
    [
        ({"keep_ratio": 0.0}, ValueError, r"keep_ratio must be in \(0, 1\], got 0.0"),
        ({"keep_ratio": 1.2}, ValueError, r"keep_ratio must be in \(0, 1\]"),
        ({"keep_ratio": True}, TypeError, "keep_ratio"),
        ({"keep_ratio": "0.7"}, TypeError, "keep_ratio"),
        ({"keep_ratio": [0.7, 0.5]}, ValueError, "expected 3 values"),
        ({"keep_ratio": [0.5, 0.7, 0.3]}, ValueError, "non-increasing"),
        ({"keep_ratio": [0.7, 0.5, 0.0]}, ValueError, r"in \(0, 1\]"),
        ({"prune_layers": (1, 1, 4)}, ValueError, "strictly increasing"),
        ({"prune_layers": (4, 3)}, ValueError, "strictly increasing"),
        ({"prune_layers": (1, 6)}, ValueError, r"\[0, 5\] for a 6-block model"),
        ({"prune_layers": (-1, 3)}, ValueError, r"\[0, 5\]"),
        ({"prune_layers": ()}, ValueError, "at least one"),
        ({"prune_layers": (1.0, 3)}, TypeError, "ints"),
        ({"prune_layers": 3}, TypeError, "sequence"),
        ({"tau": 0.0}, ValueError, "tau"),
        ({"tau": float("inf")}, ValueError, "tau must be a positive finite float, got inf"),
        ({"tau": float("nan")}, ValueError, "tau must be a positive finite float, got nan"),
        ({"keep_ratio": float("nan")}, ValueError, r"keep_ratio must be in \(0, 1\], got nan"),
        ({"keep_ratio": [0.7, float("nan"), 0.3]}, ValueError, r"in \(0, 1\], got nan"),
        ({"prune": 1}, TypeError, "prune"),
    ],
)
def test_bad_arguments(kwargs, err, match):
    kwargs = {"keep_ratio": 0.7, "prune_layers": LAYERS, **kwargs}
    with pytest.raises(err, match=match):
        HTSViT.from_timm(tiny_timm(), **kwargs)


@pytest.mark.parametrize("shape", [(1, 3, 64, 48), (1, 3, 32, 64)])
def test_wrong_image_size(shape):
    model = tiny_hts(0.7).eval()
    with pytest.raises(ValueError, match=r"images must be \(64, 32\)"):
        model(torch.randn(shape))
    with pytest.raises(ValueError, match=r"images must be \(64, 32\)"):
        model.train()(torch.randn(shape))


def test_not_an_image_batch():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        tiny_hts(0.7).eval()(torch.randn(3, 64, 32))


def test_model_without_class_token():
    vit = tiny_timm(class_token=False, global_pool="avg")
    with pytest.raises(ValueError, match="class token"):
        HTSViT.from_timm(vit, prune_layers=LAYERS)
    ours = VisionTransformer(**TINY, class_token=False)
    with pytest.raises(ValueError, match="class token"):
        HTSViT(ours, prune_layers=LAYERS)


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


def test_constructor_rejects_non_vit():
    with pytest.raises(TypeError, match="nn.Module"):
        HTSViT(object())
    with pytest.raises(ValueError, match="has no 'patch_embed'"):
        HTSViT(torch.nn.Linear(2, 2))


def test_patch_dropout_rejected():
    with pytest.raises(ValueError, match="patch dropout"):
        HTSViT.from_timm(tiny_timm(patch_drop_rate=0.2), prune_layers=LAYERS)


def test_training_keep_masks_argument_checked():
    model = tiny_hts(0.6).train()
    x = torch.randn(2, 3, 64, 32)
    with pytest.raises(ValueError, match="keep_masks must be 3 tensors"):
        model.forward_train(x, keep_masks=[torch.ones(2, N_TINY)])
    with pytest.raises(TypeError, match="keep_masks must be a sequence of 3"):
        model.forward_train(x, keep_masks=torch.ones(3, 2, N_TINY))


@pytest.mark.parametrize(
    "bad, value",
    [(0.5, r"\[0.5"), (2.0, r"\[2.0"), (float("nan"), r"\[nan"), (-1.0, r"\[-1.0")],
)
def test_training_keep_masks_must_be_hard(bad, value):
    """Issue 16: masks passed to forward_train were never checked to be 0/1."""
    model = tiny_hts(0.6).train()
    masks = [torch.ones(2, N_TINY) for _ in LAYERS]
    masks[1] = masks[1].clone()
    masks[1][1, 5] = bad
    masks[2] = masks[1].clamp(0, 1).nan_to_num(0.0)
    with pytest.raises(ValueError, match=rf"keep_masks\[1\] must hold only 0 and 1.*{value}"):
        model.forward_train(torch.randn(2, 3, 64, 32), keep_masks=masks)


def test_training_keep_masks_must_be_cumulative_and_may_be_bool():
    model = tiny_hts(0.6).train()
    x = torch.randn(2, 3, 64, 32)
    first = torch.ones(2, N_TINY, dtype=torch.bool)
    first[:, :4] = False
    second = torch.ones(2, N_TINY, dtype=torch.bool)  # keeps tokens stage 0 dropped
    with pytest.raises(ValueError, match=r"cumulative.*keep_masks\[1\] keeps tokens"):
        model.forward_train(x, keep_masks=[first, second, second])
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
    with pytest.raises(ValueError, match=r"keep_ratios entries must be in \(0, 1\]"):
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


# ---------------------------------------------------------------- distilled DeiT (2 prefix tokens)


def tiny_distilled():
    """A tiny ``deit_small_distilled_patch16_224``-style model (cls + dist tokens)."""
    return timm.create_model(
        "deit_small_distilled_patch16_224", pretrained=False, img_size=(64, 32), patch_size=8,
        embed_dim=32, depth=6, num_heads=2, num_classes=0,
    ).eval()


def test_distilled_deit_keep_one_is_the_class_token():
    vit = tiny_distilled()
    assert isinstance(vit, timm.models.deit.VisionTransformerDistilled)
    model = HTSViT.from_timm(vit, keep_ratio=1.0, prune_layers=LAYERS).eval()
    assert model.num_prefix_tokens == 2
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        tokens = vit.forward_features(x)
        torch.testing.assert_close(model(x), tokens[:, 0], atol=1e-5, rtol=0)
        # timm's own head averages cls and dist; HTSViT deliberately returns the class token
        head = vit.forward_head(tokens, pre_logits=True)
        torch.testing.assert_close(head, (tokens[:, 0] + tokens[:, 1]) / 2)
        assert not torch.allclose(model(x), head, atol=1e-3)
        torch.testing.assert_close(model.train().forward_train(x).features, tokens[:, 0],
                                   atol=1e-5, rtol=0)


@pytest.mark.parametrize("keep_ratio", [0.7, 0.2])
def test_distilled_deit_prefix_tokens_never_dropped(keep_ratio):
    vit = tiny_distilled()
    model = HTSViT.from_timm(vit, keep_ratio=keep_ratio, prune_layers=LAYERS).eval()
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        tokens, indices = model.forward_features(x, return_indices=True)
        out = model.forward_train(x, keep_masks=masks_from_indices(indices, N_TINY))
    k_last = num_kept_tokens(N_TINY, model.keep_ratios[-1])
    assert tokens.shape == (3, 2 + k_last, 32)
    # the training path (nothing removed) gives the same cls AND dist tokens as dropping
    torch.testing.assert_close(out.tokens[:, :2], tokens[:, :2], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.features, tokens[:, 0], atol=1e-5, rtol=0)
    assert all(m.shape == (3, N_TINY) for m in out.keep_masks)  # masks cover patches only
    model.train()
    trained = model(x)
    assert torch.isfinite(trained.features).all() and trained.cls_attn.shape == (3, 2 + N_TINY)


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


# ----------------------------------------------------------------------------- issue 26
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.bool])
def test_non_float_images_are_refused_with_a_hint(dtype):
    model = tiny_hts(0.7, backbone="sureid").eval()
    x = torch.zeros(2, 3, 64, 32, dtype=dtype)
    for m in (model.eval(), model.train()):
        with pytest.raises(TypeError, match=rf"floating tensor .*got {dtype}.*preprocess"):
            m(x)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_float_images_of_another_dtype_than_the_weights_are_named(dtype):
    model = tiny_hts(0.7, backbone="sureid").eval()
    with pytest.raises(TypeError, match=rf"images are {dtype} but the model's weights are "
                                        r"torch.float32.*autocast"):
        model(torch.zeros(2, 3, 64, 32, dtype=dtype))
    # the same dtype as the weights, or autocast, is fine
    assert model.to(dtype)(torch.zeros(2, 3, 64, 32, dtype=dtype)).dtype == dtype
    with torch.autocast("cpu", dtype=torch.bfloat16):
        if dtype == torch.float64:  # autocast never casts float64
            with pytest.raises(TypeError, match="images are torch.float64"):
                model.float()(torch.zeros(2, 3, 64, 32, dtype=dtype))
        else:
            model.float()(torch.zeros(2, 3, 64, 32, dtype=dtype))
