import math

import pytest
import torch

from sureid.engine.schedule import cosine_with_warmup


def lrs(total, warmup, **kw):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = cosine_with_warmup(opt, total_steps=total, warmup_steps=warmup, **kw)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_then_cosine_formula():
    out = lrs(20, 5, warmup_factor=0.1)
    for s in range(5):
        assert out[s] == pytest.approx(0.1 * (0.1 + 0.9 * s / 5))
    for s in range(5, 20):
        t = (s - 5) / 15
        assert out[s] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * t)))
    assert max(out) == pytest.approx(0.1)


def test_min_lr_ratio():
    out = lrs(10, 0, min_lr_ratio=0.2)
    assert out[0] == pytest.approx(0.1) and min(out) > 0.02


@pytest.mark.parametrize("kw,match", [
    (dict(total_steps=0), "total_steps"),
    (dict(total_steps=5, warmup_steps=5), "warmup_steps"),
    (dict(total_steps=5, min_lr_ratio=2.0), "min_lr_ratio"),
])
def test_bad_arguments(kw, match):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match=match):
        cosine_with_warmup(opt, **kw)


def _two_groups():
    return torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))]},
                            {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.5}], lr=0.1)


def test_hold_steps_keep_a_group_at_zero_then_follow_the_curve():
    opt = _two_groups()
    ref = lrs(12, 3)  # the common curve at lr 0.1
    sched = cosine_with_warmup(opt, total_steps=12, warmup_steps=3, hold_steps=[5, 0])
    held, free = [], []
    for _ in range(12):
        held.append(opt.param_groups[0]["lr"])
        free.append(opt.param_groups[1]["lr"])
        opt.step()
        sched.step()
    assert held[:5] == [0.0] * 5
    assert held[5:] == pytest.approx(ref[5:])
    assert free == pytest.approx([5 * r for r in ref])  # lr 0.5, never held


def test_hold_steps_int_holds_every_group():
    opt = _two_groups()
    cosine_with_warmup(opt, total_steps=4, hold_steps=2)
    assert [g["lr"] for g in opt.param_groups] == [0.0, 0.0]


@pytest.mark.parametrize(("hold", "err", "match"), [
    ([1], ValueError, "one int per parameter group"),
    ([1, 2, 3], ValueError, "one int per parameter group"),
    ([10, 0], ValueError, "hold_steps"),
    ([-1, 0], ValueError, "hold_steps"),
    ([1.5, 0], TypeError, "hold_steps"),
    ([True, 0], TypeError, "hold_steps"),
    ("2", TypeError, "hold_steps"),
])
def test_bad_hold_steps(hold, err, match):
    with pytest.raises(err, match=match):
        cosine_with_warmup(_two_groups(), total_steps=10, hold_steps=hold)
