import pytest
import torch

from sureid.models.output import HTSOutput
from sureid.models.reweight import ClsTokenReweight, cls_token_reweight


def _inputs(b=2, p=1, n=6, c=4):
    tokens = torch.randn(b, p + n, c)
    cls_attn = torch.softmax(torch.randn(b, p + n), dim=-1)
    mask = (torch.rand(b, n) > 0.4).float()
    mask[:, 0] = 1.0
    return tokens, cls_attn, mask


@pytest.mark.parametrize("num_prefix", [1, 3])
@pytest.mark.parametrize("normalize", [True, False])
def test_matches_explicit_loop(num_prefix, normalize):
    tokens, attn, mask = _inputs(p=num_prefix)
    lam = 0.7
    feat, w = cls_token_reweight(
        tokens, attn, mask, lam, num_prefix_tokens=num_prefix, normalize=normalize
    )
    for b in range(tokens.shape[0]):
        raw = [float(attn[b, num_prefix + i] * mask[b, i]) for i in range(mask.shape[1])]
        z = sum(raw) if normalize else 1.0
        pooled = sum(r / z * tokens[b, num_prefix + i] for i, r in enumerate(raw))
        torch.testing.assert_close(feat[b], tokens[b, 0] + lam * pooled)
        torch.testing.assert_close(w[b], torch.tensor(raw) / z)


def test_dropped_tokens_do_not_contribute():
    tokens, attn, mask = _inputs()
    feat, _ = cls_token_reweight(tokens, attn, mask)
    poked = tokens.clone()
    poked[:, 1:][mask == 0] = 1e3  # change only dropped patch tokens
    feat2, _ = cls_token_reweight(poked, attn, mask)
    torch.testing.assert_close(feat, feat2)


def test_lambda_zero_returns_class_token():
    tokens, attn, mask = _inputs()
    feat, _ = cls_token_reweight(tokens, attn, mask, 0.0)
    torch.testing.assert_close(feat, tokens[:, 0])


def test_head_gradients_reach_lambda_neck_tokens_and_attention():
    tokens, attn, mask = _inputs()
    tokens.requires_grad_(True)
    attn.requires_grad_(True)
    head = ClsTokenReweight(4, num_classes=3)
    assert head.lam.item() == 0.5
    out = head(tokens, attn, mask)
    assert out.logits.shape == (2, 3) and out.feature.shape == (2, 4)
    (out.logits.square().sum() + out.feature.square().sum()).backward()
    for p in head.parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all()
    assert tokens.grad is not None and attn.grad is not None


def test_from_output_uses_final_mask_and_prefix_count():
    tokens, attn, mask = _inputs(p=2)
    out = HTSOutput(
        features=tokens[:, 0], tokens=tokens, keep_masks=[torch.ones_like(mask), mask],
        cls_attn=attn, num_prefix_tokens=2,
    )
    head = ClsTokenReweight(4)
    a = head.from_output(out)
    b = head(tokens, attn, mask, num_prefix_tokens=2)
    torch.testing.assert_close(a.feature, b.feature)
    assert a.logits is None


def test_inputs_not_modified():
    tokens, attn, mask = _inputs()
    copies = [t.clone() for t in (tokens, attn, mask)]
    ClsTokenReweight(4, num_classes=2)(tokens, attn, mask)
    assert all(torch.equal(a, b) for a, b in zip((tokens, attn, mask), copies, strict=True))


@pytest.mark.parametrize(
    "kind, match",
    [
        ("attn", r"cls_attn must have shape \(B, T\) = \(2, 7\).*\(2, 6\)"),
        ("mask", r"keep_mask must have shape \(B, N\) = \(2, 6\).*\(2, 7\)"),
        ("tokens", r"tokens must be \(B, T, C\).*\(2, 7\)"),
        ("channels", r"4 channels.*\(2, 7, 5\)"),
        ("none", "cls_attn is None"),
        ("prefix", r"num_prefix_tokens must be in \[1, 6\], got 7"),
    ],
)
def test_bad_input(kind, match):
    tokens, attn, mask = _inputs()
    kwargs = {}
    if kind == "attn":
        attn = attn[:, 1:]
    elif kind == "mask":
        mask = torch.ones(2, 7)
    elif kind == "tokens":
        tokens = tokens[..., 0]
    elif kind == "channels":
        tokens = torch.randn(2, 7, 5)
    elif kind == "none":
        attn = None
    elif kind == "prefix":
        kwargs["num_prefix_tokens"] = 7
    with pytest.raises(ValueError, match=match):
        ClsTokenReweight(4)(tokens, attn, mask, **kwargs)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_lambda_init_is_refused(bad):
    with pytest.raises(ValueError, match=rf"lambda_init must be in \(-inf, inf\), got {bad}"):
        ClsTokenReweight(8, bad)
    with pytest.raises(TypeError, match="lambda_init must be a real number, got str"):
        ClsTokenReweight(8, "0.5")
    with pytest.raises(TypeError, match="embed_dim must be an int"):
        ClsTokenReweight(8.0)
