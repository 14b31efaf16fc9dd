"""The fused HTS stage kernel against the eager decision module, select_topk_tokens and a
float64 reference; HTSViT's fused path against its eager path."""

import warnings

import pytest
import torch
from torch import nn

from sureid import HTSViT, deit_tiny
from sureid.models import fused_decision as fd
from sureid.models.decision import DecisionModule
from sureid.models.hts import gather_tokens, select_topk_tokens


def _module(dim: int, hidden: int | None = None, seed: int = 0, std: float = 0.3):
    """A decision module with spread-out random weights (untrained ones score nearly alike)."""
    torch.manual_seed(seed)
    m = DecisionModule(dim, hidden_dim=hidden)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0.0, std)
    return m.eval()


def _eager(m: DecisionModule, x: torch.Tensor, p: int) -> torch.Tensor:
    return m(x[:, p:])[..., 1]


# (C, hidden): the quick student's stage, DeiT-Ti's, and widths no tile divides (hidden 6
# has a last layer of one row, 20 leaves remainders of every row tile)
SHAPES = [(64, None), (192, None), (24, 6), (40, 20)]


@pytest.mark.parametrize("dim, hidden", SHAPES)
@pytest.mark.parametrize("batch, prefix, n", [(1, 1, 72), (3, 2, 17), (2, 0, 1), (4, 1, 33)])
def test_scores_match_the_eager_module_and_a_float64_reference(dim, hidden, batch, prefix, n):
    m = _module(dim, hidden)
    x = torch.randn(batch, prefix + n, dim)
    got = fd.stage_scores(x, m, prefix)
    eager = _eager(m, x, prefix)
    reference = _eager(m.double(), x.double(), prefix)
    assert got.shape == (batch, n) and got.dtype == torch.float32
    # the eager float32 module's own distance from float64 sets the scale
    tol = 4 * (eager.double() - reference).abs().max().item() + 1e-6
    assert (got.double() - reference).abs().max().item() <= tol
    torch.testing.assert_close(got, eager, rtol=0, atol=tol)


@pytest.mark.parametrize("dim, hidden", SHAPES)
@pytest.mark.parametrize("k", [1, 5, 17])
def test_selection_equals_select_topk_tokens(dim, hidden, k):
    m = _module(dim, hidden, seed=k)
    x = torch.randn(3, 1 + 17, dim)
    scores = _eager(m, x, 1)
    # the selections must agree where the k-th and (k+1)-th scores are further apart than
    # the two computations' largest difference
    top = scores.sort(dim=1, descending=True).values
    if k < 17:
        error = (fd.stage_scores(x, m, 1) - scores).abs().max()
        assert (top[:, k - 1] - top[:, k]).min() > 2 * error
    want_x, want_idx = select_topk_tokens(x, scores, k, 1)
    got_x, got_idx = fd.fused_select_tokens(x, m, k, 1)
    assert torch.equal(got_idx, want_idx) and torch.equal(got_x, want_x)
    assert torch.equal(got_idx, got_idx.sort(dim=1).values)


def test_equal_scores_keep_the_lowest_indices():
    m = _module(32)
    with torch.no_grad():
        m.out_conv[-2].weight.zero_()  # every token scores the bias alone
    x = torch.randn(2, 1 + 10, 32)
    kept, idx = fd.fused_select_tokens(x, m, 4, 1)
    assert torch.equal(idx, torch.arange(4).expand(2, 4))
    assert torch.equal(kept, x[:, :5])


def test_a_nan_token_makes_all_scores_nan_and_a_tie():
    m = _module(32)
    x = torch.randn(1, 1 + 9, 32)
    x[0, 1 + 6] = float("nan")  # token 6's score is NaN, and through the mean all others too
    scores = fd.stage_scores(x, m, 1)
    assert scores.isnan().all()
    _, idx = fd.fused_select_tokens(x, m, 3, 1)
    assert torch.equal(idx, torch.tensor([[0, 1, 2]]))  # all NaN: lowest indices, as ties


def test_inputs_are_not_modified_and_views_are_read_correctly():
    m = _module(64)
    base = torch.randn(2, 64, 20)
    x = base.transpose(1, 2)  # (2, 20, 64), not contiguous
    before = x.clone()
    got = fd.fused_select_tokens(x, m, 7, 1)
    want = fd.fused_select_tokens(x.contiguous(), m, 7, 1)
    assert torch.equal(x, before)
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


def test_deterministic_and_independent_of_the_thread_count():
    m = _module(64)
    x = torch.randn(9, 1 + 40, 64)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fd.fused_select_tokens(x, m, 25, 1)
        torch.set_num_threads(2)
        two = fd.fused_select_tokens(x, m, 25, 1)
        again = fd.fused_select_tokens(x, m, 25, 1)
    finally:
        torch.set_num_threads(threads)
    for a, b, c in zip(one, two, again, strict=True):
        assert torch.equal(a, b) and torch.equal(b, c)


def test_gradients_reach_the_tokens_as_on_the_eager_path():
    m = _module(32)
    x = torch.randn(2, 1 + 12, 32)
    x_fused, x_eager = x.clone().requires_grad_(), x.clone().requires_grad_()
    kept, idx = fd.fused_select_tokens(x_fused, m, 5, 1)
    want, want_idx = select_topk_tokens(x_eager, _eager(m, x_eager, 1), 5, 1)
    weights = torch.randn_like(kept)
    (kept * weights).sum().backward()
    (want * weights).sum().backward()
    assert torch.equal(idx, want_idx)
    assert torch.equal(x_fused.grad, x_eager.grad)
    # top-k passes no gradient to the scores: the eager module gets none either
    assert all(p.grad is None or not p.grad.any() for p in m.parameters())


def test_gather_tokens_against_a_loop():
    x = torch.randn(3, 2 + 6, 4)
    idx = torch.tensor([[0, 5], [1, 2], [3, 4]])
    want = torch.stack([torch.cat([x[b, :2], x[b, 2 + idx[b]]]) for b in range(3)])
    assert torch.equal(gather_tokens(x, idx, 2), want)


def _hts(fused: bool, **kwargs) -> HTSViT:
    torch.manual_seed(0)
    model = HTSViT(deit_tiny(img_size=(64, 32), depth=4), keep_ratio=0.6, prune_layers=(1, 2),
                   fused_decision=fused, **kwargs).eval()
    with torch.no_grad():
        for d in model.decision:
            for p in d.parameters():
                p.normal_(0.0, 0.3)
    return model


def test_htsvit_fused_equals_eager():
    eager, fused = _hts(False), _hts(True)
    x = torch.randn(3, 3, 64, 32)
    with torch.inference_mode():
        want, want_idx = eager.forward_features(x, return_indices=True)
        got, got_idx = fused.forward_features(x, return_indices=True)
        assert torch.equal(got, want)
        assert all(torch.equal(a, b) for a, b in zip(got_idx, want_idx, strict=True))
        assert torch.equal(fused(x), eager(x))
    assert "fused_decision=True" in repr(fused) and "fused_decision" not in repr(eager)


def test_htsvit_fused_runs_the_kernel(monkeypatch):
    calls = []
    real = fd.fused_stages

    def counting(decisions):
        calls.append(len(decisions))
        return real(decisions)

    monkeypatch.setattr("sureid.models.hts_vit.fused_stages", counting)
    with torch.inference_mode():
        _hts(True)(torch.randn(1, 3, 64, 32))
    assert calls == [2]


def test_nothing_to_prune_never_loads_the_kernel(monkeypatch):
    model = _hts(True)
    x = torch.randn(1, 3, 64, 32)
    with torch.inference_mode():
        want = _hts(False)
        want.prune = False
        want = want(x)
        _no_kernel(monkeypatch)
        model.prune = False
        assert torch.equal(model(x), want)
        model.prune, model.keep_ratios = True, (1.0, 1.0)
        assert torch.equal(model(x), want)


def _no_kernel(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the kernel must not run here")

    monkeypatch.setattr(fd, "load_stage_kernel", refuse)


def test_htsvit_falls_back_where_the_kernel_does_not_apply(monkeypatch):
    eager, fused = _hts(False), _hts(True)
    x = torch.randn(2, 3, 64, 32)
    with torch.inference_mode():
        want64 = eager.double()(x.double())
        want_bf16 = None
        with torch.autocast("cpu", dtype=torch.bfloat16):
            want_bf16 = eager.float()(x)
    _no_kernel(monkeypatch)
    with torch.inference_mode():
        assert torch.equal(fused.double()(x.double()), want64)  # float64
        with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast
            assert torch.equal(fused.float()(x), want_bf16)
        with warnings.catch_warnings():  # torch.jit.trace is deprecated; ONNX export traces
            warnings.simplefilter("ignore", FutureWarning)
            traced = torch.jit.trace(fused, x, check_trace=False)
        assert torch.equal(traced(x), eager(x))


def test_a_replaced_decision_module_is_never_fused(monkeypatch):
    class Subclass(DecisionModule):
        pass

    assert not fd.can_fuse(Subclass(32), torch.randn(1, 5, 32))
    assert not fd.can_fuse([_module(32), nn.Identity()], torch.randn(1, 5, 32))
    assert fd.can_fuse(nn.ModuleList([_module(32), _module(32)]), torch.randn(1, 5, 32))
    assert not fd.can_fuse(_module(32), torch.randn(1, 5, 32, dtype=torch.float64))


@pytest.mark.parametrize("x, k, match", [
    (torch.randn(5, 32), 1, r"\(B, P \+ N, C\)"),
    (torch.randn(1, 5, 16), 1, r"shape \(B, 1 \+ N, 32\)"),
    (torch.randn(1, 1, 32), 1, "N >= 1"),
    (torch.randn(1, 5, 32), 5, r"k must be in \[1, 4\], got 5"),
    (torch.randn(1, 5, 32), 0, r"k must be in \[1, 4\], got 0"),
    (torch.randn(1, 5, 32, dtype=torch.float64), 1, "float32 CPU"),
])
def test_bad_input_is_refused(x, k, match):
    with pytest.raises(ValueError, match=match):
        fd.fused_select_tokens(x, _module(32), k, 1)


@pytest.mark.parametrize("x, k, prefix, err, match", [
    ([[[0.0] * 32]], 1, 1, TypeError, "x must be a"),
    (torch.randn(1, 5, 32), 1.5, 1, TypeError, "k must be"),
    (torch.randn(1, 5, 32), 1, -1, ValueError, "num_prefix_tokens"),
])
def test_bad_argument_types_are_refused(x, k, prefix, err, match):
    with pytest.raises(err, match=match):
        fd.fused_select_tokens(x, _module(32), k, prefix)


def test_fused_decision_must_be_a_bool():
    with pytest.raises(TypeError, match="fused_decision"):
        HTSViT(deit_tiny(img_size=(64, 32), depth=4), prune_layers=(1, 2), fused_decision=1)


def test_a_failed_build_says_how_to_do_without(monkeypatch):
    from torch.utils import cpp_extension

    def no_compiler(*args, **kwargs):
        raise RuntimeError("Ninja is required to load C++ extensions")

    monkeypatch.setattr(fd, "_kernel", None)
    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    monkeypatch.setattr(cpp_extension, "_get_build_directory", lambda *a, **k: "/nonexistent")
    with pytest.raises(RuntimeError, match="fused_decision=False") as err:
        fd.load_stage_kernel()
    assert "C++ compiler" in str(err.value) and "Ninja is required" in str(err.value)
    assert fd._kernel is None  # a later call tries again


def test_model_files_do_not_store_the_choice(tmp_path):
    import sureid
    from sureid.models import ReIDModel

    ReIDModel(_hts(True), num_classes=3).save(tmp_path / "m.pt")
    loaded = sureid.load(tmp_path / "m.pt")
    assert loaded.backbone.fused_decision is False
