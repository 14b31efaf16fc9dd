import time

import pytest
import torch

from sureid.engine import measure_throughput


class Sleepy(torch.nn.Module):
    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        time.sleep(self.seconds)
        return x.flatten(1)


def test_measures_images_per_second_and_restores_modes():
    slow, fast = Sleepy(0.02), Sleepy(0.0)
    slow.train()
    fast.eval()
    r = measure_throughput({"slow": slow, "fast": fast}, (3, 4, 2), batch_size=4, rounds=2, iters=3, warmup=1)
    assert set(r) == {"slow", "fast"}
    assert 0 < r["slow"] <= 4 / 0.02  # a forward can never beat its sleep
    assert r["fast"] > r["slow"]
    assert slow.calls == fast.calls == 1 + 2 * 3
    assert slow.training and not fast.training


@pytest.mark.parametrize("kw,match", [
    (dict(batch_size=0), "batch_size"), (dict(rounds=0), "rounds"), (dict(iters=1.5), "iters"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        measure_throughput({"m": Sleepy(0)}, (3, 2, 2), **kw)
    with pytest.raises(ValueError, match="at least one model"):
        measure_throughput({}, (3, 2, 2))
