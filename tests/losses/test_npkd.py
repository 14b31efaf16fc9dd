import math
import re

import pytest
import torch
from torch import nn

from sureid.losses.npkd import NPKDLoss, interpolate_features, kd_kl_div


def _explicit_kl(p, q):
    """mean over batch of sum_k p log(p / q), with plain Python floats."""
    total = 0.0
    for pb, qb in zip(p.tolist(), q.tolist(), strict=True):
        total += sum(pk * math.log(pk / qk) for pk, qk in zip(pb, qb, strict=True))
    return total / len(p)


def _softmax(x, t):
    return torch.softmax(x.double() / t, dim=1)


# ----------------------------------------------------------------------------- interpolation


@pytest.mark.parametrize("c_in, c_out", [(768, 384), (384, 768), (7, 3), (3, 11), (2, 5)])
def test_interpolating_a_linear_ramp_gives_a_linear_ramp(c_in, c_out):
    a, b = 0.7, -2.0
    x = torch.stack([a * torch.arange(c_in, dtype=torch.float64) + b, torch.zeros(c_in).double()])
    y = interpolate_features(x, c_out, align_corners=True)
    assert y.shape == (2, c_out)
    # align_corners=True: endpoints are kept and the ramp is resampled evenly
    expected = b + a * torch.linspace(0, c_in - 1, c_out, dtype=torch.float64)
    torch.testing.assert_close(y[0], expected)
    torch.testing.assert_close(y[1], torch.zeros(c_out, dtype=torch.float64))


@pytest.mark.parametrize("dim", [1, 5, 384])
def test_interpolation_is_identity_when_dims_match(dim):
    x = torch.randn(3, dim)
    assert interpolate_features(x, dim) is x


def test_interpolation_passes_gradient_and_leaves_input_alone():
    x = torch.randn(2, 6, requires_grad=True)
    before = x.detach().clone()
    interpolate_features(x, 4).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert torch.equal(x.detach(), before)


@pytest.mark.parametrize(
    "bad, err, match",
    [
        (0, ValueError, "out_dim must be >= 1, got 0"),
        (-3, ValueError, "out_dim must be >= 1, got -3"),
        (2.5, TypeError, "out_dim must be an int, got float 2.5"),
        (True, TypeError, "out_dim must be an int, got bool True"),
    ],
)
def test_interpolation_bad_out_dim(bad, err, match):
    with pytest.raises(err, match=match):
        interpolate_features(torch.randn(2, 4), bad)


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4)])
def test_interpolation_rejects_non_2d(shape):
    with pytest.raises(ValueError, match=r"2-D.*" + re.escape(str(shape))):
        interpolate_features(torch.randn(shape), 3)


# ----------------------------------------------------------------------------- KL


@pytest.mark.parametrize("t", [1.0, 2.0, 0.5])
def test_kl_forward_and_reverse_against_explicit_formula(t):
    s, te = torch.randn(5, 7), torch.randn(5, 7)
    ps, pt = _softmax(s, t), _softmax(te, t)
    fwd = kd_kl_div(s.double(), te.double(), t)
    rev = kd_kl_div(s.double(), te.double(), t, mode="reverse")
    assert fwd.item() == pytest.approx(_explicit_kl(pt, ps), rel=1e-9)  # KL(p_t || p_s)
    assert rev.item() == pytest.approx(_explicit_kl(ps, pt), rel=1e-9)  # KL(p_s || p_t)
    assert fwd.item() != pytest.approx(rev.item())


def test_kl_is_zero_for_equal_logits():
    s = torch.randn(4, 9)
    assert kd_kl_div(s, s.clone()).abs().item() < 1e-6


def test_kl_matches_torch_kl_div_argument_order():
    s, te = torch.randn(4, 6), torch.randn(4, 6)
    ref = nn.functional.kl_div(
        torch.log_softmax(s, 1), torch.softmax(te, 1), reduction="batchmean"
    )
    torch.testing.assert_close(kd_kl_div(s, te), ref)


# ----------------------------------------------------------------------------- NPKDLoss


@pytest.mark.parametrize("direction", ["t2s", "s2t"])
@pytest.mark.parametrize("cs, ct", [(8, 8), (6, 12), (12, 6)])
def test_npkd_equals_explicit_formula(direction, cs, ct):
    b, k, lam, t = 4, 5, 0.1, 1.0
    fs, ft = torch.randn(b, cs).double(), torch.randn(b, ct).double()
    gs, gt = torch.randn(b, k).double(), torch.randn(b, k).double()
    loss = NPKDLoss(kl_weight=lam, temperature=t, direction=direction, align_corners=True,
                    feature_reduction="sum")(fs, gs, ft, gt)
    # explicit: linear interpolation by hand (align_corners=True), then the squared L2 norm
    # per sample (Eq. 13 literally)
    src, dst = (ft, fs) if direction == "t2s" else (fs, ft)
    c_in, c_out = src.shape[1], dst.shape[1]
    aligned = torch.empty(b, c_out, dtype=torch.float64)
    for j in range(c_out):
        pos = j * (c_in - 1) / (c_out - 1) if c_out > 1 else 0.0
        lo = min(int(math.floor(pos)), c_in - 1)
        hi = min(lo + 1, c_in - 1)
        w = pos - lo
        aligned[:, j] = (1 - w) * src[:, lo] + w * src[:, hi]
    feat = sum(float(((dst[i] - aligned[i]) ** 2).sum()) for i in range(b)) / b
    kl = _explicit_kl(_softmax(gt, t), _softmax(gs, t))
    assert loss.item() == pytest.approx(lam * kl + feat, rel=1e-9)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("fw, kw", [(1.0, 0.1), (0.0, 0.1), (0.5, 0.0)])
def test_npkd_feature_weight_and_reduction_against_explicit_formula(reduction, fw, kw):
    b, cs, ct = 3, 6, 9
    fs, ft = torch.randn(b, cs).double(), torch.randn(b, ct).double()
    gs, gt = torch.randn(b, 5).double(), torch.randn(b, 5).double()
    loss = NPKDLoss(kl_weight=kw, feature_weight=fw, feature_reduction=reduction)(fs, gs, ft, gt)
    aligned = interpolate_features(ft, cs)
    per_sample = [float(((fs[i] - aligned[i]) ** 2).sum()) for i in range(b)]
    if reduction == "mean":
        per_sample = [v / cs for v in per_sample]  # the aligned (student) dimension
    kl = _explicit_kl(_softmax(gt, 1.0), _softmax(gs, 1.0))
    assert loss.item() == pytest.approx(kw * kl + fw * sum(per_sample) / b, rel=1e-9)


def test_npkd_t2_scale_multiplies_kl_only():
    fs, ft, gs, gt = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 5), torch.randn(3, 5)
    a = NPKDLoss(temperature=2.0).terms(fs, gs, ft, gt)
    b = NPKDLoss(temperature=2.0, t2_scale=True).terms(fs, gs, ft, gt)
    torch.testing.assert_close(b[0], 4.0 * a[0])
    torch.testing.assert_close(b[1], a[1])


@pytest.mark.parametrize("align, direction", [("interpolate", "t2s"), ("interpolate", "s2t"),
                                              ("linear", "t2s"), ("linear", "s2t")])
def test_teacher_gets_no_gradient_student_side_does(align, direction):
    cs, ct, k = 6, 10, 4
    loss_fn = NPKDLoss(align=align, direction=direction, student_dim=cs, teacher_dim=ct)
    student = nn.Linear(3, cs)
    teacher = nn.Linear(3, ct)
    x = torch.randn(5, 3)
    fs = student(x)
    gs = fs @ torch.randn(cs, k)
    ft = teacher(x)  # not detached on purpose: the loss must do it
    gt = ft @ torch.randn(ct, k)
    ft.retain_grad()
    gt.retain_grad()
    loss_fn(fs, gs, ft, gt).backward()
    assert ft.grad is None and gt.grad is None
    assert all(p.grad is None for p in teacher.parameters())
    for p in [*student.parameters(), *loss_fn.parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert (len(list(loss_fn.parameters())) > 0) == (align == "linear")


def test_inputs_not_modified():
    tensors = [torch.randn(3, 4), torch.randn(3, 5), torch.randn(3, 8), torch.randn(3, 5)]
    copies = [t.clone() for t in tensors]
    NPKDLoss()(*tensors)
    assert all(torch.equal(a, b) for a, b in zip(tensors, copies, strict=True))


@pytest.mark.parametrize(
    "shapes, match",
    [
        (((3, 4), (3, 5), (2, 8), (2, 5)), r"batch sizes differ.*\(3, 4\).*\(2, 8\)"),
        (((3, 4), (3, 5), (3, 8), (3, 6)), r"same number of classes.*\(3, 5\).*\(3, 6\)"),
        (((3, 4, 1), (3, 5), (3, 8), (3, 5)), r"student_feat must be 2-D.*\(3, 4, 1\)"),
        (((3, 4), (3, 5), (8,), (3, 5)), r"teacher_feat must be 2-D.*\(8,\)"),
    ],
)
def test_bad_shapes_raise_value_error_with_shapes(shapes, match):
    with pytest.raises(ValueError, match=match):
        NPKDLoss()(*[torch.randn(s) for s in shapes])


def test_configured_dims_are_checked():
    loss = NPKDLoss(student_dim=4, teacher_dim=8)
    with pytest.raises(ValueError, match=r"teacher_feat must have 8 channels.*\(3, 9\)"):
        loss(torch.randn(3, 4), torch.randn(3, 5), torch.randn(3, 9), torch.randn(3, 5))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"align": "conv"}, "align must be one of.*'conv'"),
        ({"direction": "up"}, "direction must be one of.*'up'"),
        ({"kl_mode": "both"}, "kl_mode must be one of.*'both'"),
        ({"align": "linear"}, "needs student_dim and teacher_dim.*student_dim=None"),
        ({"align": "linear", "student_dim": 4}, "teacher_dim=None"),
        ({"temperature": 0.0}, "temperature must be"),
        ({"kl_weight": -1.0}, "kl_weight must be"),
        ({"feature_weight": -1.0}, "feature_weight must be"),
        ({"feature_weight": float("nan")}, "feature_weight must be a finite float >= 0, got nan"),
        ({"feature_reduction": "max"}, "feature_reduction must be one of.*'max'"),
        ({"student_dim": 0}, "student_dim must be"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NPKDLoss(**kwargs)


@pytest.mark.parametrize("name", ["student_dim", "teacher_dim"])
@pytest.mark.parametrize("bad", [4.0, True, "4"])
def test_dims_of_the_wrong_type_are_type_errors(name, bad):
    with pytest.raises(TypeError, match=f"{name} must be an int, got {type(bad).__name__}"):
        NPKDLoss(**{name: bad})


def test_kd_kl_div_bad_arguments():
    with pytest.raises(ValueError, match="mode must be one of"):
        kd_kl_div(torch.randn(2, 3), torch.randn(2, 3), mode="sym")
    with pytest.raises(ValueError, match="temperature must be a finite float > 0"):
        kd_kl_div(torch.randn(2, 3), torch.randn(2, 3), 0.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kl_weight": float("nan")}, "kl_weight must be a finite float >= 0, got nan"),
        ({"kl_weight": float("inf")}, "kl_weight must be a finite float >= 0, got inf"),
        ({"temperature": float("inf")}, "temperature must be a finite float, got inf"),
        ({"temperature": float("nan")}, "temperature must be a finite float, got nan"),
    ],
)
def test_non_finite_hyper_parameters_are_refused(kwargs, match):
    """Issue 16: NaN/inf gave NaN losses or (T = inf) a silent zero KL."""
    with pytest.raises(ValueError, match=match):
        NPKDLoss(**kwargs)


def test_kd_kl_div_infinite_temperature_and_empty_batch_are_refused():
    with pytest.raises(ValueError, match="temperature must be a finite float, got inf"):
        kd_kl_div(torch.randn(2, 3), torch.randn(2, 3), float("inf"))
    with pytest.raises(ValueError, match="student_logits must hold at least one sample"):
        kd_kl_div(torch.randn(0, 3), torch.randn(0, 3))
    with pytest.raises(ValueError, match="student_feat must hold at least one sample"):
        NPKDLoss()(torch.randn(0, 4), torch.randn(0, 3), torch.randn(0, 8), torch.randn(0, 3))


def test_align_corners_false_exact_2x_shrink_averages_channel_pairs():
    x = torch.randn(3, 768)
    y = interpolate_features(x, 384, align_corners=False)
    torch.testing.assert_close(y, (x[:, 0::2] + x[:, 1::2]) / 2)
    assert torch.equal(interpolate_features(x, 384), y)  # the default
    # align_corners=True samples instead: some channels get little weight, no pair average
    assert not torch.allclose(interpolate_features(x, 384, align_corners=True), y)


def test_npkd_align_corners_is_used_by_the_feature_term():
    fs, gs, gt = torch.randn(4, 8), torch.randn(4, 5), torch.randn(4, 5)
    ft = torch.randn(4, 16)
    loss = NPKDLoss(align_corners=False, feature_reduction="sum")
    assert loss.align_corners is False and "align_corners=False" in repr(loss)
    _, feat = loss.terms(fs, gs, ft, gt)
    expected = (fs - (ft[:, 0::2] + ft[:, 1::2]) / 2).pow(2).sum(1).mean()
    torch.testing.assert_close(feat, expected)
    _, feat_true = NPKDLoss(align_corners=True, feature_reduction="sum").terms(fs, gs, ft, gt)
    assert not torch.allclose(feat_true, expected)


def test_npkd_defaults_are_the_measured_choices():
    # chosen by measuring both on the quick preset (docs/objectives.md): pair averages and the
    # squared difference averaged over channels
    loss = NPKDLoss()
    assert loss.align_corners is False and loss.feature_reduction == "mean"
    b, cs = 5, 6
    fs, ft = torch.randn(b, cs).double(), torch.randn(b, 2 * cs).double()
    gs, gt = torch.randn(b, 4).double(), torch.randn(b, 4).double()
    _, feat = loss.terms(fs, gs, ft, gt)
    expected = sum(
        sum((fs[i, j] - (ft[i, 2 * j] + ft[i, 2 * j + 1]) / 2).item() ** 2 for j in range(cs)) / cs
        for i in range(b)
    ) / b
    assert feat.item() == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("bad", [0, 1, "no", None])
def test_align_corners_must_be_a_bool(bad):
    with pytest.raises(TypeError, match="align_corners"):
        NPKDLoss(align_corners=bad)
    with pytest.raises(TypeError, match="align_corners"):
        interpolate_features(torch.randn(2, 8), 4, align_corners=bad)


def test_npkd_half_inputs_give_float32_finite_terms():
    fs, gs = (200 * torch.randn(4, 384)).half(), (30 * torch.randn(4, 10)).half()
    ft, gt = (200 * torch.randn(4, 768)).half(), (30 * torch.randn(4, 10)).half()
    with torch.autocast("cpu", dtype=torch.float16):
        kl, feat = NPKDLoss(feature_reduction="sum").terms(fs, gs, ft, gt)
    assert kl.dtype == feat.dtype == torch.float32
    assert torch.isfinite(kl) and torch.isfinite(feat) and feat > 65504  # beyond float16
    ref = NPKDLoss(feature_reduction="sum").terms(fs.float(), gs.float(), ft.float(), gt.float())
    torch.testing.assert_close((kl, feat), ref)
