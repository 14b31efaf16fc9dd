import pytest
import torch
from torch import nn

from sureid.losses.npkd import NPKDLoss
from sureid.losses.objective import SUReIDLoss
from sureid.losses.ratio import RatioLoss
from sureid.losses.reid import CrossEntropyLabelSmooth, TripletLoss
from sureid.models.heads import BNNeck
from sureid.models.reweight import ClsTokenReweight
from sureid.models.teacher import FrozenTeacher

B, C_S, C_T, K, N = 8, 6, 10, 4, 12
RATIOS = (0.7, 0.49)
KEEP = {"keep1", "keep2"}  # the keep-fraction diagnostics, present whenever masks are given


def _batch(requires_grad=False):
    labels = torch.arange(K).repeat(B // K)
    t = {
        "student_feat": torch.randn(B, C_S, requires_grad=requires_grad),
        "student_logits": torch.randn(B, K, requires_grad=requires_grad),
        "labels": labels,
        "teacher_feat": torch.randn(B, C_T),
        "teacher_logits": torch.randn(B, K),
        "keep_masks": [(torch.rand(B, N) > 0.3).float(), (torch.rand(B, N) > 0.5).float()],
        "target_ratios": RATIOS,
        "aux_feat": torch.randn(B, C_S, requires_grad=requires_grad),
        "aux_logits": torch.randn(B, K, requires_grad=requires_grad),
    }
    return t


def _call(crit, t):
    kw = {k: v for k, v in t.items() if k not in ("student_feat", "student_logits", "labels")}
    return crit(t["student_feat"], t["student_logits"], t["labels"], **kw)


def _ratio_by_hand(masks, ratios):
    total = 0.0
    for b in range(B):
        total += sum((p - float(m[b].mean())) ** 2 for m, p in zip(masks, ratios, strict=True))
    return total / B


@pytest.mark.parametrize("alpha, beta, ratio_weight, aux_weight", [(1, 1, 2, 1), (2, 1, 2, 0.5)])
def test_total_is_eq_14(alpha, beta, ratio_weight, aux_weight):
    t = _batch()
    crit = SUReIDLoss(alpha, beta, ratio_weight, aux_weight=aux_weight)
    out = _call(crit, t)
    ce, tri, kd = CrossEntropyLabelSmooth(K, 0.1), TripletLoss(0.3), NPKDLoss()
    l_cls = ce(t["student_logits"], t["labels"])
    l_tri = tri(t["student_feat"], t["labels"])
    l_kd = kd(t["student_feat"], t["student_logits"], t["teacher_feat"], t["teacher_logits"])
    l_ratio = _ratio_by_hand(t["keep_masks"], RATIOS)
    l_aux = ce(t["aux_logits"], t["labels"]) + tri(t["aux_feat"], t["labels"])
    expected = alpha * (l_kd + ratio_weight * l_ratio) + beta * (l_cls + l_tri + aux_weight * l_aux)
    torch.testing.assert_close(out.total, expected)
    torch.testing.assert_close(out.terms["ratio"], torch.tensor(l_ratio))
    torch.testing.assert_close(out.terms["kd"], l_kd)
    torch.testing.assert_close(out.terms["kd"], 0.1 * out.terms["kd_kl"] + out.terms["kd_feat"])
    assert set(out.terms) == {"cls", "tri", "kd", "kd_kl", "kd_feat", "ratio", "aux_cls", "aux_tri",
                              *KEEP}
    assert all(not v.requires_grad for v in out.terms.values())
    floats = out.to_floats()
    assert floats["total"] == pytest.approx(out.total.item())


@pytest.mark.parametrize("kl_weight, feature_weight", [(0.1, 0.0), (0.0, 1.0), (0.3, 2.5)])
def test_kd_term_uses_both_npkd_weights(kl_weight, feature_weight):
    # the NPKD diagnostic's "KL only" row (feature_weight=0) relies on this
    t = _batch()
    kd = NPKDLoss(kl_weight=kl_weight, feature_weight=feature_weight)
    out = _call(SUReIDLoss(kd=kd, id_loss=None, triplet=None, ratio=None,
                           aux_weight=0), t)
    alone = kd(t["student_feat"], t["student_logits"], t["teacher_feat"], t["teacher_logits"])
    torch.testing.assert_close(out.total, alone)
    torch.testing.assert_close(
        out.terms["kd"], kl_weight * out.terms["kd_kl"] + feature_weight * out.terms["kd_feat"])


@pytest.mark.parametrize(
    "row, flags, names",
    [
        ("vanilla", {"kd": None, "ratio": None}, {"cls", "tri"}),
        ("+HTS", {"kd": None}, {"cls", "tri", "ratio"}),
        ("+HTS+NPKD", {}, {"cls", "tri", "ratio", "kd", "kd_kl", "kd_feat"}),
        ("kd only", {"id_loss": None, "triplet": None, "ratio": None},
         {"kd", "kd_kl", "kd_feat"}),
    ],
)
def test_table_iv_rows_switch_terms(row, flags, names):
    t = _batch()
    crit = SUReIDLoss(**flags, aux_weight=0)
    out = _call(crit, t)
    assert set(out.terms) == names | KEEP, row  # keep masks given: keep fractions logged
    expected = 0.0
    for name in names - {"kd_kl", "kd_feat"}:
        expected = expected + (2.0 if name == "ratio" else 1.0) * out.terms[name]
    torch.testing.assert_close(out.total.detach(), torch.as_tensor(expected))


def test_vanilla_row_needs_no_teacher_or_masks():
    t = _batch()
    out = SUReIDLoss(kd=None, ratio=None)(t["student_feat"], t["student_logits"],
                                                     t["labels"])
    assert set(out.terms) == {"cls", "tri"}


def test_reweight_switch_ignores_aux_inputs():
    t = _batch()
    on = _call(SUReIDLoss(), t)
    off = _call(SUReIDLoss(aux_weight=0), t)
    torch.testing.assert_close(
        on.total - off.total, on.terms["aux_cls"] + on.terms["aux_tri"]
    )
    assert "aux_cls" not in off.terms


def test_teacher_gets_no_gradient_student_side_does():
    t = _batch(requires_grad=True)
    t["teacher_feat"].requires_grad_(True)
    t["teacher_logits"].requires_grad_(True)
    t["keep_masks"] = [m.requires_grad_(True) for m in t["keep_masks"]]
    _call(SUReIDLoss(), t).total.backward()
    assert t["teacher_feat"].grad is None and t["teacher_logits"].grad is None
    for name in ("student_feat", "student_logits", "aux_feat", "aux_logits"):
        assert t[name].grad is not None and torch.isfinite(t[name].grad).all(), name
    assert all(m.grad is not None for m in t["keep_masks"])


def test_inputs_not_modified():
    t = _batch()
    snapshot = {k: v.clone() for k, v in t.items() if isinstance(v, torch.Tensor)}
    _call(SUReIDLoss(), t)
    assert all(torch.equal(t[k], v) for k, v in snapshot.items())


def test_no_valid_triplet_anchor_still_finite():
    t = _batch(requires_grad=True)
    t["labels"] = torch.arange(B)  # every identity once: no positives
    for name in ("student_logits", "teacher_logits", "aux_logits"):
        t[name] = torch.randn(B, B, requires_grad=name != "teacher_logits")
    out = _call(SUReIDLoss(), t)
    assert out.terms["tri"].item() == 0.0 and torch.isfinite(out.total)
    out.total.backward()
    assert torch.isfinite(t["student_feat"].grad).all()


@pytest.mark.parametrize(
    "change, match",
    [
        ({"teacher_feat": None}, "the kd term needs teacher_feat.*teacher_feat=None.*kd=None"),
        ({"keep_masks": None}, "the ratio term needs keep_masks.*ratio=None"),
        ({"student_logits": torch.randn(B - 1, K)}, r"batch sizes differ.*\(7, 4\)"),
        ({"teacher_logits": torch.randn(B, K + 1)}, r"same number of classes.*\(8, 5\)"),
        ({"student_feat": torch.randn(B, C_S, 1)}, r"student_feat must be 2-D.*\(8, 6, 1\)"),
        ({"labels": torch.zeros(B - 2, dtype=torch.long)}, r"labels must have shape \(8,\)"),
        ({"aux_feat": torch.randn(B + 1, C_S)}, r"batch sizes differ.*aux_feat=\(9, 6\)"),
        ({"aux_feat": torch.randn(B, C_S + 1)}, r"aux_feat must have 6 channels.*\(8, 7\)"),
        ({"aux_logits": torch.randn(B, K + 2)}, r"aux_logits must have 4 classes.*\(8, 6\)"),
        ({"keep_masks": [torch.ones(B, N, 1)] * 2}, r"keep_masks\[0\] must be \(B=8, N\)"),
        ({"target_ratios": (0.5,)}, "one keep mask per target ratio"),
    ],
)
def test_bad_input(change, match):
    t = _batch()
    t.update(change)
    with pytest.raises(ValueError, match=match):
        _call(SUReIDLoss(), t)


def test_ratio_targets_fixed_at_construction():
    t = _batch()
    t.pop("target_ratios")
    out = _call(SUReIDLoss(ratio=RatioLoss(RATIOS)), t)
    assert out.terms["ratio"].item() == pytest.approx(_ratio_by_hand(t["keep_masks"], RATIOS))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"id_loss": None, "triplet": None, "kd": None, "ratio": None}, "every term"),
        ({"alpha": -1.0}, "alpha"),
        ({"ratio_weight": "2"}, "ratio_weight"),
        # issue 16: NaN/inf weights gave NaN losses while 0 or negative were rejected
        ({"alpha": float("nan")}, "alpha must be a finite float >= 0, got nan"),
        ({"beta": float("inf")}, "beta must be a finite float >= 0, got inf"),
        ({"ratio_weight": float("nan")}, "ratio_weight must be a finite float >= 0, got nan"),
        ({"aux_weight": float("-inf")}, "aux_weight must be a finite float >= 0, got -inf"),
    ],
)
def test_bad_constructor(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SUReIDLoss(**kwargs)


# ----------------------------------------------------------------------------- integration


def test_tiny_hts_vit_end_to_end_every_trainable_parameter_gets_gradient():
    from sureid.models.hts_vit import HTSViT
    from sureid.models.vit import VisionTransformer

    img = (32, 16)
    vit = VisionTransformer(img_size=img, patch_size=8, embed_dim=16, depth=3, num_heads=2)
    student = HTSViT(vit, keep_ratio=0.7, prune_layers=(1, 2)).train()
    neck = BNNeck(16, K)
    reweight = ClsTokenReweight(16, num_classes=K)
    teacher_vit = VisionTransformer(img_size=img, patch_size=8, embed_dim=24, depth=1,
                                    num_heads=2)
    teacher = FrozenTeacher(teacher_vit, torch.randn(K, 24))
    crit = SUReIDLoss(ratio=RatioLoss(student.keep_ratios))

    x = torch.randn(B, 3, *img)
    labels = torch.arange(K).repeat(B // K)
    out = student(x)
    _, logits = neck(out.features)
    aux = reweight.from_output(out)
    f_t, g_t = teacher(x)
    loss = crit(out.features, logits, labels, teacher_feat=f_t, teacher_logits=g_t,
                keep_masks=out.keep_masks, aux_feat=aux.feature, aux_logits=aux.logits)
    assert torch.isfinite(loss.total)
    loss.total.backward()

    trainable = {
        f"{prefix}.{n}": p
        for prefix, mod in (("student", student), ("neck", neck), ("reweight", reweight))
        for n, p in mod.named_parameters()
        if p.requires_grad
    }
    missing = [n for n, p in trainable.items() if p.grad is None]
    assert not missing, missing
    assert all(torch.isfinite(p.grad).all() for p in trainable.values())
    assert reweight.lam.grad.abs() > 0
    assert all(p.grad is None for p in teacher.parameters())
    assert isinstance(teacher_vit, nn.Module) and not teacher_vit.training


@pytest.mark.parametrize(
    "make",
    [
        lambda: SUReIDLoss(kd=NPKDLoss(align="linear", student_dim=C_S, teacher_dim=C_T)),
        lambda: SUReIDLoss(kd=None, ratio=RatioLoss(RATIOS)),
    ],
)
def test_pickle_round_trip_gives_same_loss(make):
    import pickle

    crit = make()
    clone = pickle.loads(pickle.dumps(crit))
    t = _batch()
    torch.testing.assert_close(_call(clone, t).total, _call(crit, t).total)


def test_empty_batch_is_refused():
    crit = SUReIDLoss(kd=None, ratio=None)
    with pytest.raises(ValueError, match=r"student_feat must hold at least one sample.*\(0, 16\)"):
        crit(torch.randn(0, 16), torch.randn(0, 4), torch.zeros(0, dtype=torch.long))


def test_keep_fractions_are_logged_beside_the_loss_terms():
    t = _batch()
    out = _call(SUReIDLoss(), t)
    for j, m in enumerate(t["keep_masks"]):
        torch.testing.assert_close(out.terms[f"keep{j + 1}"], m.mean())
    no_masks = dict(t, keep_masks=None)
    out = _call(SUReIDLoss(ratio=None), no_masks)
    assert not KEEP & set(out.terms)
    # masks without the ratio loss (HTS on, L_ratio off): still logged, total unchanged
    with_masks = _call(SUReIDLoss(ratio=None), t)
    assert KEEP <= set(with_masks.terms)
    torch.testing.assert_close(with_masks.total, out.total)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs_give_float32_terms_close_to_float32(dtype):
    t = _batch()
    ref = _call(SUReIDLoss(), t)
    low = {k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
           for k, v in t.items()}
    low["keep_masks"] = [m.to(dtype) for m in t["keep_masks"]]
    with torch.autocast("cpu", dtype=dtype):  # also inside autocast
        out = _call(SUReIDLoss(), low)
    assert out.total.dtype == torch.float32 and torch.isfinite(out.total)
    torch.testing.assert_close(out.total, ref.total, rtol=2e-2, atol=2e-2)


def test_large_half_features_do_not_overflow():
    # f16 features of size ~300 over 6 channels: squared distances ~1e6 overflow float16
    t = _batch()
    t["student_feat"] = (300 * torch.randn(B, C_S)).half()
    t["teacher_feat"] = (300 * torch.randn(B, C_T)).half()
    out = _call(SUReIDLoss(), t)
    assert torch.isfinite(out.total) and out.terms["kd_feat"] > 65504


def test_a_term_is_on_because_its_module_is_held():
    vanilla = SUReIDLoss(kd=None, ratio=None, aux_weight=0)
    assert vanilla.kd is None and vanilla.ratio is None and vanilla.aux_weight == 0.0
    assert not (vanilla.use_kd or vanilla.use_ratio or vanilla.use_reweight)
    assert not vanilla.needs_teacher
    kd = NPKDLoss()
    full = SUReIDLoss(kd=kd, ratio=RatioLoss(RATIOS))
    assert full.kd is kd and full.needs_teacher and full.use_ratio and full.use_reweight
    # switching a term off afterwards: drop its module
    t = _batch()
    crit = SUReIDLoss(aux_weight=0)
    crit.ratio = None
    assert "ratio" not in _call(crit, t).terms
