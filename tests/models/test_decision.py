"""DecisionModule (Eq. 1)."""

import pytest
import torch
import torch.nn.functional as F

from sureid.models.decision import DecisionModule


@pytest.mark.parametrize(("dim", "hidden"), [(16, None), (32, 8), (384, None)])
def test_log_probabilities(dim, hidden):
    m = DecisionModule(dim, hidden_dim=hidden)
    out = m(torch.randn(2, 10, dim), torch.ones(2, 10))
    assert out.shape == (2, 10, 2)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(2, 10))


def test_default_hidden_dim_is_half_embed_dim():
    assert DecisionModule(384).hidden_dim == 192


def test_masked_equals_physically_dropped():
    # the train path (mask) and the eval path (tokens gone) give the same decisions
    m = DecisionModule(16)
    x = torch.randn(2, 12, 16)
    mask = torch.zeros(2, 12)
    mask[0, [0, 3, 4, 9]] = 1
    mask[1, [1, 2, 5, 11]] = 1
    out = m(x, mask)
    for b in range(2):
        kept = mask[b].bool()
        torch.testing.assert_close(out[b, kept], m(x[b : b + 1, kept])[0], atol=1e-6, rtol=1e-5)


def test_dropped_tokens_do_not_influence_kept_ones():
    m = DecisionModule(16)
    x = torch.randn(1, 6, 16)
    mask = torch.tensor([[1.0, 0.0, 1.0, 0.0, 1.0, 1.0]])
    y = x.clone()
    y[:, mask[0] == 0] = torch.randn(1, 2, 16) * 10
    kept = mask[0].bool()
    torch.testing.assert_close(m(x, mask)[:, kept], m(y, mask)[:, kept])
    assert not torch.allclose(m(x)[:, kept], m(y)[:, kept])  # without the mask they would


def test_none_mask_equals_all_ones():
    m = DecisionModule(16)
    x = torch.randn(2, 7, 16)
    torch.testing.assert_close(m(x), m(x, torch.ones(2, 7)))


def test_empty_mask_no_nan_and_gradients():
    m = DecisionModule(16)
    x = torch.randn(2, 7, 16, requires_grad=True)
    mask = torch.zeros(2, 7, requires_grad=True)
    out = m(x, mask)
    assert torch.isfinite(out).all()
    out[..., 1].sum().backward()
    assert torch.isfinite(mask.grad).all() and torch.isfinite(x.grad).all()
    for p in m.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


@pytest.mark.parametrize(
    ("dim", "hidden", "err"),
    [(0, None, ValueError), (16.0, None, TypeError), (True, None, TypeError),
     (16, 6.0, TypeError), (16, 2, ValueError), (16, 7, ValueError)],
)
def test_bad_construction(dim, hidden, err):
    with pytest.raises(err, match="embed_dim|hidden_dim"):
        DecisionModule(dim, hidden_dim=hidden)


def test_bad_input_shape():
    m = DecisionModule(16)
    with pytest.raises(ValueError, match="x must have shape"):
        m(torch.randn(2, 7, 8))
    with pytest.raises(ValueError, match="mask must have shape"):
        m(torch.randn(2, 7, 16), torch.ones(2, 6))


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.95, 0.99])
def test_init_keep_sets_the_untrained_keep_probability(keep):
    torch.manual_seed(0)
    m = DecisionModule(64, init_keep=keep)
    last = m.out_conv[-2]
    assert last.bias.tolist() == pytest.approx([0.0, torch.logit(torch.tensor(keep)).item()])
    p_keep = m(torch.randn(4, 200, 64), torch.ones(4, 200))[..., 1].exp()
    assert abs(p_keep.mean().item() - keep) < 0.02
    assert p_keep.std() > 0  # the weights stay random: tokens still differ


def test_init_keep_leaves_every_layer_trainable():
    m = DecisionModule(32, init_keep=0.95)
    m(torch.randn(2, 9, 32), torch.ones(2, 9))[..., 1].sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


def test_init_keep_none_is_pytorch_init_and_draws_the_same_weights():
    torch.manual_seed(3)
    a = DecisionModule(16)
    torch.manual_seed(3)
    b = DecisionModule(16, init_keep=0.95)
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        if name != "out_conv.4.bias":  # only the last bias differs: same random draws
            torch.testing.assert_close(pa, pb, rtol=0, atol=0)


@pytest.mark.parametrize(("keep", "err"), [(0.0, ValueError), (1.0, ValueError),
                                           (float("nan"), ValueError), (True, TypeError),
                                           ("0.9", TypeError)])
def test_bad_init_keep(keep, err):
    with pytest.raises(err, match="init_keep"):
        DecisionModule(16, init_keep=keep)


@pytest.mark.parametrize(("dim", "hidden", "batch", "init"),
                         [(16, None, 1, None), (64, None, 3, 0.95), (32, 8, 2, 0.5),
                          (384, None, 1, 0.95)])
@pytest.mark.parametrize("masked", [False, True])
def test_forward_is_its_layers_called_as_modules(dim, hidden, batch, init, masked):
    # forward calls the layers as functions on their parameters; the modules called one by
    # one give the same numbers bit for bit (values and gradients), and the concatenation
    # written out agrees to rounding
    torch.manual_seed(0)
    m = DecisionModule(dim, hidden_dim=hidden, init_keep=init)
    x = torch.randn(batch, 23, dim, requires_grad=True)
    mask = (torch.rand(batch, 23) > 0.3).float() if masked else None
    out = m(x, mask)
    h = m.in_conv(x)
    half = m.hidden_dim // 2
    local, glob = h.split(half, dim=-1)
    w = torch.ones(batch, 23, 1) if mask is None else mask.unsqueeze(-1)
    if mask is None:
        glob = glob.mean(dim=1, keepdim=True)
    else:
        glob = (glob * w).sum(dim=1, keepdim=True) / w.sum(dim=1, keepdim=True).clamp_min(
            torch.finfo(h.dtype).eps)
    first = m.out_conv[0]
    ref = F.linear(local, first.weight[:, :half], first.bias) + F.linear(glob,
                                                                        first.weight[:, half:])
    for layer in list(m.out_conv)[1:]:
        ref = layer(ref)
    assert torch.equal(out, ref)
    params = [x, *m.parameters()]
    grads = torch.autograd.grad(out.square().sum(), params)
    ref_grads = torch.autograd.grad(ref.square().sum(), params)
    assert all(torch.equal(a, b) for a, b in zip(grads, ref_grads, strict=True))
    concat = m.out_conv(torch.cat([local, glob.expand_as(local)], dim=-1))
    torch.testing.assert_close(out, concat, atol=2e-6, rtol=1e-5)
