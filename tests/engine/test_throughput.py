import time

import pytest
import torch

from sureid.engine import measure_throughput
from sureid.engine import throughput as throughput_module


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


@pytest.mark.parametrize("kw,err,match", [
    (dict(batch_size=0), ValueError, "batch_size must be >= 1, got 0"),
    (dict(rounds=0), ValueError, "rounds must be >= 1"),
    (dict(iters=1.5), TypeError, "iters must be an int, got float 1.5"),
])
def test_bad_arguments(kw, err, match):
    with pytest.raises(err, match=match):
        measure_throughput({"m": Sleepy(0)}, (3, 2, 2), **kw)
    with pytest.raises(ValueError, match="at least one model"):
        measure_throughput({}, (3, 2, 2))


class Clock:
    """A fake ``perf_counter``: time moves only when a model says it took some."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


class Logged(torch.nn.Module):
    """Takes ``slow`` seconds on the calls in ``spikes``, ``base`` otherwise; logs calls."""

    def __init__(self, name, log, clock, base, spikes=(), slow=0.0):
        super().__init__()
        self.name, self.log, self.clock = name, log, clock
        self.base, self.spikes, self.slow = base, set(spikes), slow

    def forward(self, x):
        self.log.append(self.name)
        self.clock.now += self.slow if len(self.log) in self.spikes else self.base
        return x.flatten(1)


def test_forwards_alternate_order_and_median_ignores_bursts(monkeypatch):
    # a fake clock, so the figures are exact and no load on the machine can move them
    clock, log = Clock(), []
    monkeypatch.setattr(throughput_module, "time", clock)
    # "a" is hit by a long burst on 2 of its 5 timed calls (global calls 3 and 6; 1-2 warm up)
    a = Logged("a", log, clock, 0.004, spikes={3, 6}, slow=0.1)
    b = Logged("b", log, clock, 0.008)
    r = measure_throughput({"a": a, "b": b}, (1, 1, 1), batch_size=8, rounds=5, iters=1, warmup=1)
    assert log == ["a", "b"] + ["a", "b", "b", "a"] * 2 + ["a", "b"]
    assert r["a"] == pytest.approx(8 / 0.004) and r["b"] == pytest.approx(8 / 0.008)
    # the mean would rank "a" slower than "b": (3 * 0.004 + 2 * 0.1) / 5 > 0.008


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
