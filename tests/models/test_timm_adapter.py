"""The timm adapter: HTSViT pools, checks and runs timm ViTs as timm does."""

import pytest
import torch

from sureid import HTSViT
from sureid.models.hts import num_kept_tokens
from sureid.models.vit import VisionTransformer

from .test_hts_vit import LAYERS, N_TINY, TINY, masks_from_indices, tiny_timm  # or skips

timm = pytest.importorskip("timm")


# ---------------------------------------------------------------- pool_tokens


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


# ---------------------------------------------------------------- check_vit_structure


def test_model_without_class_token():
    vit = tiny_timm(class_token=False, global_pool="avg")
    with pytest.raises(ValueError, match="class token"):
        HTSViT.from_timm(vit, prune_layers=LAYERS)
    ours = VisionTransformer(**TINY, class_token=False)
    with pytest.raises(ValueError, match="class token"):
        HTSViT(ours, prune_layers=LAYERS)


def test_constructor_rejects_non_vit():
    with pytest.raises(TypeError, match="nn.Module"):
        HTSViT(object())
    with pytest.raises(ValueError, match="has no 'patch_embed'"):
        HTSViT(torch.nn.Linear(2, 2))


def test_patch_dropout_rejected():
    with pytest.raises(ValueError, match="patch dropout"):
        HTSViT.from_timm(tiny_timm(patch_drop_rate=0.2), prune_layers=LAYERS)


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
