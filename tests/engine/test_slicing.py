"""SlicingBound: HTSViT's blocks on the kept token counts, tokens sliced off."""

import pytest
import torch

from sureid import HTSViT, VisionTransformer
from sureid.engine import SlicingBound, measure_throughput
from sureid.models.hts import num_kept_tokens

TINY = dict(img_size=(64, 32), patch_size=8, embed_dim=32, depth=4, num_heads=2, num_classes=0)


def tiny(keep_ratio, reg_tokens=0):
    """Our ViT, or timm's with register tokens (three prefix tokens)."""
    torch.manual_seed(0)
    if reg_tokens:
        timm = pytest.importorskip("timm")
        vit = timm.models.VisionTransformer(**TINY, reg_tokens=reg_tokens)
    else:
        vit = VisionTransformer(**TINY)
    return HTSViT(vit, keep_ratio=keep_ratio, prune_layers=(1, 3)).eval()


class FirstTokens(torch.nn.Module):
    """A decision stand-in that ranks the patch tokens in their order: HTS keeps the first k."""

    def forward(self, x):
        rank = -torch.arange(x.shape[1], dtype=x.dtype).expand(x.shape[0], -1)
        return torch.stack([-rank, rank], dim=-1)  # HTSViT ranks by index 1


@pytest.mark.parametrize("reg_tokens", [0, 2])
def test_bound_is_hts_keeping_the_first_tokens(reg_tokens):
    model = tiny(0.6, reg_tokens=reg_tokens)
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        bound = SlicingBound(model)(x)
        for s in range(len(model.decision)):
            model.decision[s] = FirstTokens()
        _, kept = model.forward_features(x, return_indices=True)
        expected = model(x)
    n = 32  # (64 / 8) x (32 / 8) patches
    for s, idx in enumerate(kept):  # the stand-in did keep the first k_s tokens
        k = num_kept_tokens(n, model.keep_ratios[s])
        assert idx.tolist() == [list(range(k))] * 3
    torch.testing.assert_close(bound, expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("how", ["ratio one", "prune off"])
def test_bound_without_pruning_is_the_dense_model(how):
    model = tiny(1.0) if how == "ratio one" else tiny(0.5)
    model.prune = how != "prune off"
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(SlicingBound(model)(x), model(x), atol=0.0, rtol=0.0)


def test_bound_follows_reassigned_ratios_and_is_not_a_copy():
    model = tiny(0.5)
    bound = SlicingBound(model)
    assert bound.model is model and sum(p.numel() for p in bound.parameters()) == sum(
        p.numel() for p in model.parameters())
    model.keep_ratios = (1.0, 1.0)
    x = torch.randn(1, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(bound(x), model(x), atol=0.0, rtol=0.0)


@pytest.mark.parametrize("training", [False, True])
def test_timing_the_bound_beside_the_model_leaves_the_model_in_its_mode(training):
    model = tiny(0.5).train(training)
    bound = SlicingBound(model)
    assert bound.training is training
    measure_throughput({"hts": model, "bound": bound}, (3, 64, 32), batch_size=2, rounds=1,
                       iters=1, warmup=0)
    assert model.training is training and bound.training is training


def test_bound_refuses_other_models():
    with pytest.raises(TypeError, match="model must be an HTSViT, got VisionTransformer"):
        SlicingBound(VisionTransformer(**TINY))
