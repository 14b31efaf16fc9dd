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
    r = measure_throughput({"slow": slow, "fast": fast}, (3, 4, 2), batch_size=4, rounds=2, iters=3,
                           warmup=1)
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


class Logged(torch.nn.Module):
    """Sleeps ``slow`` on the calls listed in ``spikes`` and ``base`` otherwise; logs calls."""

    def __init__(self, name, log, base, spikes=(), slow=0.0):
        super().__init__()
        self.name, self.log, self.base, self.spikes, self.slow = name, log, base, set(spikes), slow

    def forward(self, x):
        self.log.append(self.name)
        time.sleep(self.slow if len(self.log) in self.spikes else self.base)
        return x.flatten(1)


def test_forwards_alternate_order_and_median_ignores_bursts():
    log = []
    # "a" is hit by a long burst on 2 of its 5 timed calls (global calls 3 and 6; 1-2 warm up)
    a = Logged("a", log, 0.004, spikes={3, 6}, slow=0.1)
    b = Logged("b", log, 0.008)
    r = measure_throughput({"a": a, "b": b}, (1, 1, 1), batch_size=8, rounds=5, iters=1, warmup=1)
    assert log == ["a", "b"] + ["a", "b", "b", "a"] * 2 + ["a", "b"]
    assert r["a"] > 1.5 * r["b"]  # a mean would rank "a" slower than "b"
    assert r["a"] <= 8 / 0.004 and r["b"] <= 8 / 0.008


class ThreadSpy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.seen = set()

    def forward(self, x):
        self.seen.add(torch.get_num_threads())
        return x.flatten(1)


def test_num_threads_is_used_during_the_measurement_and_restored():
    before = torch.get_num_threads()
    spy = ThreadSpy()
    measure_throughput({"m": spy}, (1, 1, 1), rounds=1, iters=2, warmup=1, num_threads=1)
    assert spy.seen == {1}
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="num_threads"):
        measure_throughput({"m": spy}, (1, 1, 1), num_threads=0)
