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
