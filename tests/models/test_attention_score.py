"""``HTSViT(keep_score="attention")`` and
:func:`sureid.models.timm_adapter.block_forward_cls_attention`."""

import pytest
import torch
from einops import rearrange

from sureid import HTSViT, ReIDModel, SUReIDLoss
from sureid.models.hts import num_kept_tokens
from sureid.models.timm_adapter import block_forward_cls_attention, block_forward_masked
from sureid.models.vit import VisionTransformer

from .test_hts_vit import LAYERS, N_TINY, TINY, tiny_timm
from .test_hts_vit import TIMM_VARIANTS as VARIANTS  # imports timm or skips


def tiny_hts(keep_ratio=0.6, *, backbone="timm", **extra):
    if backbone == "timm":
        return HTSViT.from_timm(tiny_timm(**extra), keep_ratio=keep_ratio, prune_layers=LAYERS,
                                keep_score="attention")
    vit = VisionTransformer(**TINY, **extra)
    return HTSViT(vit, keep_ratio=keep_ratio, prune_layers=LAYERS, keep_score="attention")


def peaky(model):
    """Larger qkv weights than timm's init (std 0.02, near-uniform attention), so the ranking
    and each head's softmax normaliser matter."""
    torch.manual_seed(0)
    with torch.no_grad():
        for blk in model.backbone.blocks:
            blk.attn.qkv.weight.normal_(0.0, 0.5)
    return model


def reference_class_attention(blk, x, keep=None):
    """Row 0 of the block's softmax attention, head mean, from the full q k^T (no folding)."""
    attn = blk.attn
    q, k, _ = rearrange(attn.qkv(blk.norm1(x)), "b t (s h d) -> s b h t d", s=3,
                        h=attn.num_heads).unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    logits = q @ k.transpose(-2, -1) * attn.scale  # (B, H, T, T)
    if keep is not None:
        logits = logits.masked_fill(keep[:, None, None, :] == 0, float("-inf"))
    return logits.softmax(-1)[:, :, 0].mean(1)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_block_forward_cls_attention_is_the_block_and_its_attention_row(variant):
    vit = peaky(HTSViT.from_timm(tiny_timm(**VARIANTS[variant]),
                                 prune_layers=LAYERS)).backbone.eval()
    x = torch.randn(3, vit.num_prefix_tokens + N_TINY, 32)
    before = x.clone()
    with torch.no_grad():
        out, cls = block_forward_cls_attention(vit.blocks[2], x)
        ref_cls = reference_class_attention(vit.blocks[2], x)
        torch.testing.assert_close(out, vit.blocks[2](x), atol=1e-5, rtol=0)  # timm's block
        masked_out, masked_cls = block_forward_masked(vit.blocks[2], x, torch.ones(3, x.shape[1]))
    assert torch.equal(x, before)
    assert cls.shape == (3, x.shape[1]) and cls.dtype == torch.float32
    torch.testing.assert_close(cls, ref_cls, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(cls, masked_cls, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out, masked_out, atol=1e-5, rtol=0)
    torch.testing.assert_close(cls.sum(1), torch.ones(3))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_kept_tokens_are_the_topk_of_the_class_attention(variant):
    model = peaky(tiny_hts(0.6, **VARIANTS[variant]).eval())
    vit = model.backbone
    p = vit.num_prefix_tokens
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        tokens, indices = model.forward_features(x, return_indices=True)
        # independent reference: timm's own modules up to each pruning block, tokens dropped
        # by hand, the attention from the full q k^T
        h = vit.norm_pre(vit._pos_embed(vit.patch_embed(x)))
        orig = torch.arange(N_TINY).expand(2, -1)
        for s, layer in enumerate(LAYERS):
            start = 0 if s == 0 else LAYERS[s - 1]
            h = vit.blocks[start : layer - 1](h)
            score = reference_class_attention(vit.blocks[layer - 1], h)[:, p:]  # block before
            h = vit.blocks[layer - 1](h)
            k = num_kept_tokens(N_TINY, 0.6 ** (s + 1))
            local = score.topk(k, dim=1).indices.sort(dim=1).values
            orig = orig.gather(1, local)
            assert torch.equal(indices[s], orig.sort(dim=1).values)
            rows = torch.cat([torch.arange(p).expand(2, -1), local + p], dim=1)
            h = h.gather(1, rows[..., None].expand(-1, -1, h.shape[-1]))
        h = vit.norm(vit.blocks[LAYERS[-1]:](h))
    torch.testing.assert_close(tokens, h, atol=1e-5, rtol=0)


@pytest.mark.parametrize("backbone", ["timm", "sureid"])
@pytest.mark.parametrize("keep_ratio", [0.7, 0.3])
def test_training_selects_the_same_tokens_as_inference(backbone, keep_ratio):
    model = peaky(tiny_hts(keep_ratio, backbone=backbone, reg_tokens=2).eval())
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        tokens, indices = model.forward_features(x, return_indices=True)
        out = model.forward_train(x)  # no keep_masks: the masks come from the attention
    for s, (mask, idx) in enumerate(zip(out.keep_masks, indices, strict=True)):
        assert mask.sum(1).tolist() == [num_kept_tokens(N_TINY, keep_ratio ** (s + 1))] * 3
        assert torch.equal(mask, torch.zeros(3, N_TINY).scatter_(1, idx, 1.0)), s
    # masked attention vs SDPA on larger (peaky) weights: float32 rounding only
    torch.testing.assert_close(out.features, tokens[:, 0], atol=1e-5, rtol=1e-4)


def test_no_decision_modules_and_every_active_parameter_gets_a_gradient():
    model = tiny_hts(0.5).train()
    assert model.decision_hidden_dim is None and len(model.decision) == 0
    assert not any(k.startswith("decision") for k in model.state_dict())
    reid = ReIDModel(model, num_classes=4, reweight=True)
    x = torch.randn(8, 3, 64, 32)
    labels = torch.arange(4).repeat_interleave(2)
    out = reid(x)
    loss = SUReIDLoss(kd=None, ratio=None)(
        out.features, out.logits, labels, aux_feat=out.aux_feature, aux_logits=out.aux_logits
    )
    loss.total.backward()
    # what DistributedDataParallel relies on: a gradient exactly where inactive_parameters()
    # does not say otherwise
    used = {n for n, p in reid.named_parameters() if p.grad is not None}
    trainable = {n for n, p in reid.named_parameters() if p.requires_grad}
    assert used == trainable - set(reid.inactive_parameters())
    assert all(torch.isfinite(p.grad).all() for p in reid.parameters() if p.grad is not None)


def test_training_forward_is_deterministic_without_a_seed():
    model = tiny_hts(0.5).train()  # no Gumbel noise, no dropout in TINY
    x = torch.randn(2, 3, 64, 32)
    a, b = model(x), model(x)
    assert torch.equal(a.features, b.features)
    assert all(torch.equal(m, n) for m, n in zip(a.keep_masks, b.keep_masks, strict=True))


def test_eval_path_exports():
    model = tiny_hts(0.6, reg_tokens=2).eval()
    program = torch.export.export(model, (torch.randn(2, 3, 64, 32),))
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"keep_score": "attn"},
         r"keep_score must be one of \('decision', 'attention'\), got 'attn'"),
        ({"keep_score": None}, "keep_score must be one of"),
        ({"keep_score": "attention", "decision_hidden_dim": 8},
         "keep_score='attention' builds none, got decision_hidden_dim=8"),
        ({"keep_score": "attention", "prune_layers": (0, 3)},
         r"prune_layers must start at 1 or later, got \(0, 3\)"),
    ],
)
def test_bad_keep_score(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HTSViT.from_timm(tiny_timm(), **{"prune_layers": LAYERS, **kwargs})


def test_repr_names_the_score():
    assert "keep_score='attention'" in repr(tiny_hts()).split("\n")[1]
