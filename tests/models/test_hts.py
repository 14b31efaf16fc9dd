"""The HTS tensor functions (sureid.models.hts) against explicit formulas."""

import math

import pytest
import torch
import torch.nn.functional as F

from sureid.models.hts import (
    gumbel_keep_decision,
    masked_attention,
    num_kept_tokens,
    select_topk_tokens,
)

# ---------------------------------------------------------------- num_kept_tokens


@pytest.mark.parametrize(
    ("n", "ratio", "k"),
    [(128, 1.0, 128), (128, 0.5, 64), (128, 0.7, 89), (128, 0.49, 62), (128, 0.7**3, 43),
     (128, 0.25, 32), (196, 0.7, 137), (8, 0.01, 1), (1, 0.5, 1), (10, 0.3, 3)],
)
def test_num_kept_tokens_values(n, ratio, k):
    assert num_kept_tokens(n, ratio) == k


@pytest.mark.parametrize("n", [1, 7, 128, 129])
def test_num_kept_tokens_never_zero_never_above_n(n):
    for ratio in torch.linspace(1e-4, 1.0, 97).tolist():
        k = num_kept_tokens(n, ratio)
        assert 1 <= k <= n
        assert k == max(1, math.floor(ratio * n + 1e-6))


@pytest.mark.parametrize(
    ("n", "ratio", "err", "match"),
    [(128, 0.0, ValueError, "ratio"), (128, 1.5, ValueError, "ratio"),
     (128, -0.1, ValueError, "ratio"),
     (0, 0.5, ValueError, "num_patches"), (128.0, 0.5, TypeError, "num_patches"),
     (True, 0.5, TypeError, "num_patches")],
)
def test_num_kept_tokens_bad_input(n, ratio, err, match):
    with pytest.raises(err, match=match):
        num_kept_tokens(n, ratio)


# ---------------------------------------------------------------- gumbel_keep_decision


def test_gumbel_decision_is_hard_binary_with_straight_through_gradient():
    log_probs = torch.randn(4, 50, 2).log_softmax(-1).requires_grad_()
    d = gumbel_keep_decision(log_probs)
    assert d.shape == (4, 50)
    assert set(d.unique().tolist()) <= {0.0, 1.0}
    (d * torch.randn(4, 50)).sum().backward()
    assert log_probs.grad is not None and log_probs.grad.abs().sum() > 0
    assert torch.isfinite(log_probs.grad).all()


def test_gumbel_decision_expectation_is_pi():
    # E[D] = pi_keep (the property the paper relies on); 20000 samples -> std err < 0.004
    pi_keep = torch.tensor([0.1, 0.5, 0.9])
    log_probs = torch.stack([(1 - pi_keep).log(), pi_keep.log()], -1).expand(20000, 3, 2)
    freq = gumbel_keep_decision(log_probs).mean(0)
    torch.testing.assert_close(freq, pi_keep, atol=0.02, rtol=0)


def test_gumbel_decision_seeded_repeat():
    log_probs = torch.randn(2, 30, 2).log_softmax(-1)
    torch.manual_seed(3)
    a = gumbel_keep_decision(log_probs)
    torch.manual_seed(3)
    b = gumbel_keep_decision(log_probs)
    c = gumbel_keep_decision(log_probs)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(
    ("shape", "tau"),
    [
        ((2, 5), 1.0), ((2, 5, 3), 1.0), ((2, 5, 2), 0.0),
        ((2, 5, 2), math.inf), ((2, 5, 2), math.nan),  # issue 16: inf gave garbage decisions
    ],
)
def test_gumbel_decision_bad_input(shape, tau):
    with pytest.raises(ValueError, match="log_probs|tau"):
        gumbel_keep_decision(torch.zeros(shape), tau)


# ---------------------------------------------------------------- masked_attention


def _reference_masked_attention(q, k, v, keep):
    """Eqs. 4-6 written out with loops over rows, no max trick."""
    b, h, t, d = q.shape
    q, k, v, keep = q.double(), k.double(), v.double(), keep.double()
    outs, attns = [], []  # built out of place, so autograd differentiates it too
    for bi in range(b):
        for hi in range(h):
            a = q[bi, hi] @ k[bi, hi].T / math.sqrt(d)  # Eq. 4
            rows = []
            for i in range(t):
                g = torch.cat([keep[bi, :i], keep.new_ones(1), keep[bi, i + 1:]])  # Eq. 5
                w = a[i].exp() * g
                rows.append(w / w.sum())  # Eq. 6
            attns.append(torch.stack(rows))
            outs.append(attns[-1] @ v[bi, hi])
    return torch.stack(outs).view(b, h, t, d), torch.stack(attns).view(b, h, t, t)


@pytest.mark.parametrize("soft", [False, True])
def test_masked_attention_matches_equations(soft):
    q, k, v = torch.randn(3, 2, 2, 7, 4).unbind(0)
    keep = torch.rand(2, 7) if soft else (torch.rand(2, 7) > 0.5).float()
    keep[:, 0] = 1.0
    out, attn = masked_attention(q, k, v, keep)
    ref_out, ref_attn = _reference_masked_attention(q, k, v, keep)
    torch.testing.assert_close(attn.double(), ref_attn, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out.double(), ref_out, atol=1e-6, rtol=1e-5)


def test_masked_attention_equals_attention_over_kept_tokens():
    q, k, v = torch.randn(3, 1, 3, 12, 8).unbind(0)
    keep = torch.tensor([[1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 0, 1]], dtype=torch.float32)
    out, _ = masked_attention(q, k, v, keep)
    kept = keep[0].bool()
    ref = F.scaled_dot_product_attention(q[:, :, kept], k[:, :, kept], v[:, :, kept])
    torch.testing.assert_close(out[:, :, kept], ref, atol=1e-6, rtol=1e-5)
    # a dropped token i reads the kept tokens and itself (G_ii = 1), nobody reads it
    for i in (~kept).nonzero().flatten().tolist():
        sel = kept.clone()
        sel[i] = True
        ref_i = F.scaled_dot_product_attention(q[:, :, sel], k[:, :, sel], v[:, :, sel])
        pos = sel[:i].sum()
        torch.testing.assert_close(out[:, :, i], ref_i[:, :, pos], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("soft", [False, True])
def test_masked_attention_gradients_match_equations(soft):
    # Peaky logits (x3): the row maximum carries most of each row's weight, so a backward
    # pass that loses it (a clamp whose gradient is 0 at its bound) is far off, not 1e-3 off.
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 7, 4, generator=g, dtype=torch.float64) for _ in range(3))
    q = q * 3.0
    keep = torch.rand(2, 7, generator=g, dtype=torch.float64)
    keep = keep if soft else (keep > 0.5).double()
    keep[:, 0] = 1.0
    c_out, c_attn = torch.randn(2, 2, 7, 4, generator=g), torch.randn(2, 2, 7, 7, generator=g)

    def grads(fn):
        leaves = [t.clone().requires_grad_() for t in (q, k, v, keep)]
        out, attn = fn(*leaves)
        loss = (out * c_out).sum() + (attn * c_attn).sum()
        return torch.autograd.grad(loss, leaves)

    got = grads(masked_attention)
    want = grads(_reference_masked_attention)
    for name, a, b in zip("qkv", got[:3], want[:3], strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-8, msg=f"d/d{name}")
    if soft:  # with hard masks a dropped token's logit above the row maximum has its
        # gradient towards keep capped by design (see _masked_attention), unlike Eq. 6 as is
        torch.testing.assert_close(got[3], want[3], atol=1e-10, rtol=1e-8, msg="d/dkeep")


def test_masked_attention_all_kept_is_softmax_attention():
    q, k, v = torch.randn(3, 2, 2, 9, 4).unbind(0)
    out, attn = masked_attention(q, k, v, torch.ones(2, 9))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(attn, (q @ k.transpose(-2, -1) / 2.0).softmax(-1))


def test_masked_attention_gradient_reaches_keep_and_no_nan_in_extremes():
    q, k, v = torch.randn(3, 2, 2, 6, 4).unbind(0)
    q = (q * 1e3).requires_grad_()  # huge logits: max-subtraction must keep exp finite
    keep = torch.zeros(2, 6, requires_grad=True)  # every other token dropped
    out, attn = masked_attention(q, k, v, keep)
    assert torch.isfinite(out).all() and torch.isfinite(attn).all()
    torch.testing.assert_close(attn, torch.eye(6).expand(2, 2, 6, 6))  # all dropped: self only
    (out * torch.randn_like(out)).sum().backward()
    assert torch.isfinite(keep.grad).all() and keep.grad.abs().sum() > 0
    assert torch.isfinite(q.grad).all()


def test_masked_attention_does_not_modify_inputs_and_checks_shape():
    q, k, v = torch.randn(3, 1, 1, 4, 2).unbind(0)
    keep = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    copies = [t.clone() for t in (q, k, v, keep)]
    masked_attention(q, k, v, keep)
    for a, b in zip((q, k, v, keep), copies, strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="keep must have shape"):
        masked_attention(q, k, v, keep[:, :3])


# ---------------------------------------------------------------- select_topk_tokens


@pytest.mark.parametrize(("prefix", "k"), [(1, 1), (1, 5), (5, 3), (0, 8)])
def test_select_topk_tokens(prefix, k):
    b, n, c = 3, 8, 4
    x = torch.randn(b, prefix + n, c)
    score = torch.randn(b, n)
    x_copy = x.clone()
    kept, idx = select_topk_tokens(x, score, k, prefix)
    assert torch.equal(x, x_copy)
    assert kept.shape == (b, prefix + k, c) and idx.shape == (b, k)
    torch.testing.assert_close(kept[:, :prefix], x[:, :prefix])  # prefix is never dropped
    for bi in range(b):
        expect = sorted(score[bi].argsort(descending=True)[:k].tolist())
        assert idx[bi].tolist() == expect  # top-k, in original order
        assert torch.equal(kept[bi, prefix:], x[bi, prefix:][idx[bi]])


@pytest.mark.parametrize("k", [0, 9])
def test_select_topk_tokens_bad_k(k):
    with pytest.raises(ValueError, match="k must be in"):
        select_topk_tokens(torch.randn(1, 9, 2), torch.randn(1, 8), k, 1)


def test_select_topk_tokens_bad_score_shape():
    with pytest.raises(ValueError, match="keep_score"):
        select_topk_tokens(torch.randn(1, 9, 2), torch.randn(1, 9), 2, 1)


# ---------------------------------------------------------------- low precision


def test_masked_attention_fp16_large_logits_stays_finite():
    # |q.k| up to ~1e5: float16 logits would overflow to inf and give NaN (inf - inf)
    b, h, t, d = 2, 2, 9, 8
    q = (100 * torch.randn(b, h, t, d)).half()
    k = (100 * torch.randn(b, h, t, d)).half()
    v = torch.randn(b, h, t, d).half()
    keep = (torch.rand(b, t) > 0.4).half()
    keep[:, 0] = 1
    raw = (q.float() @ k.float().transpose(-2, -1)).abs().max()
    assert raw > 65504  # the product is beyond float16 range
    out, attn = masked_attention(q, k, v, keep, scale=1.0)
    assert out.dtype == attn.dtype == torch.float16
    assert torch.isfinite(out).all() and torch.isfinite(attn).all()
    ref_out, ref_attn = masked_attention(q.float(), k.float(), v.float(), keep.float(), scale=1.0)
    torch.testing.assert_close(out.float(), ref_out, atol=2e-3, rtol=2e-3)
    torch.testing.assert_close(attn.float(), ref_attn, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_masked_attention_under_autocast_matches_float32_and_has_finite_grads(dtype):
    b, h, t, d = 2, 3, 7, 4
    q, k, v = (torch.randn(b, h, t, d, requires_grad=True) for _ in range(3))
    keep = (torch.rand(b, t) > 0.5).float().requires_grad_(True)
    ref, _ = masked_attention(q, k, v, keep)
    with torch.autocast("cpu", dtype=dtype):
        out, _ = masked_attention(q.to(dtype), k.to(dtype), v.to(dtype), keep)
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), ref, atol=3e-2, rtol=3e-2)
    out.float().sum().backward()
    assert all(torch.isfinite(x.grad).all() for x in (q, k, v, keep))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_gumbel_decision_from_low_precision_log_probs_is_float32_and_hard(dtype):
    log_probs = torch.randn(4, 50, 2).log_softmax(-1).to(dtype).requires_grad_(True)
    d = gumbel_keep_decision(log_probs)
    assert d.dtype == torch.float32 and set(d.unique().tolist()) <= {0.0, 1.0}
    d.sum().backward()
    assert torch.isfinite(log_probs.grad).all()
