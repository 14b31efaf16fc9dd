import contextlib
import datetime
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

import sureid
from sureid.engine import Trainer, load_checkpoint
from sureid.engine.distributed import (
    DistInfo,
    init_distributed,
    unused_parameters,
    wrap_ddp,
)
from sureid.models import ReIDModel

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "train_ddp.py"


def env(**extra):
    out = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return {**out, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "error", **extra}


def torchrun(*args, timeout=120):
    # --standalone: the launcher binds its rendezvous store to a free port itself and keeps it
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
        "--nproc_per_node", "2", str(EXAMPLE), *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env(), cwd=ROOT)


@contextlib.contextmanager
def launch_two(script, *args):
    """Rank 0 and 1 as plain processes (no launcher) with torchrun's environment.

    As torchrun's agent does, this process hosts the rendezvous store on a port it binds
    itself (port 0: the kernel's pick, held until the ranks end) and both ranks join it as
    clients (``TORCHELASTIC_USE_AGENT_STORE``). A port found free, released and bound later
    by rank 0 can be taken by another process in between. Ranks still running at the end
    are killed.
    """
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False,
                          timeout=datetime.timedelta(seconds=120))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
            env=env(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(store.port),
                    TORCHELASTIC_USE_AGENT_STORE="True", WORLD_SIZE="2", RANK=str(r),
                    LOCAL_RANK=str(r)),
        )
        for r in (0, 1)
    ]
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
        del store


def tiny_reid(prune=True, keep_ratio=0.7, compute_cls_attn=True):
    vit = sureid.VisionTransformer(img_size=(32, 16), patch_size=8, embed_dim=32, depth=4,
                                   num_heads=2)
    hts = sureid.HTSViT(vit, keep_ratio=keep_ratio, prune_layers=(1, 3), prune=prune,
                        compute_cls_attn=compute_cls_attn)
    return ReIDModel(hts, num_classes=4, reweight=True)


@pytest.mark.slow
def test_two_gloo_ranks_end_identical_and_rank0_checkpoint_resumes(tmp_path):
    data, out = tmp_path / "synth", tmp_path / "run"
    common = ["--data", str(data), "--out", str(out), "--arch", "test", "--img-size", "32", "16",
              "--save-rank-weights"]

    first = torchrun(*common, "--epochs", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    state1 = load_checkpoint(out / "last.pt")
    steps = state1["step"]
    assert state1["epoch"] == 1 and steps >= 2
    w0, w1 = (torch.load(out / f"rank{r}_weights.pt", weights_only=True) for r in (0, 1))
    assert w0.keys() == w1.keys() and any(k.startswith("backbone.decision") for k in w0)
    for k in w0:  # DDP averaged gradients: bitwise-identical parameters on both ranks
        assert torch.equal(w0[k], w1[k]), k
        assert torch.equal(state1["model"][k], w0[k]), k  # rank 0 wrote the checkpoint

    second = torchrun(*common, "--epochs", "2")  # same command, more epochs: resumes
    assert second.returncode == 0, second.stderr[-3000:]
    assert "at epoch 1" in second.stdout and second.stdout.count("resumed from") == 1
    state2 = load_checkpoint(out / "last.pt")
    assert state2["epoch"] == 2 and state2["step"] == 2 * steps and len(state2["history"]) == 2
    v0, v1 = (torch.load(out / f"rank{r}_weights.pt", weights_only=True) for r in (0, 1))
    for k in v0:
        assert torch.equal(v0[k], v1[k]), k
    assert not all(torch.equal(v0[k], w0[k]) for k in v0)  # it trained on
    # rank 0 ends with a deployable model file: the trained weights, architecture, input
    model = sureid.load(out / "model.pt")
    assert model.data_config.input_size == (32, 16) and model.metadata["world_size"] == 2
    for k, v in model.state_dict().items():
        assert torch.equal(v, state2["model"][k]), k


FAIL_SCRIPT = textwrap.dedent("""
    import os, sys, time
    import torch, torch.distributed as dist
    from sureid.engine.distributed import init_distributed
    info = init_distributed(timeout_s=3)
    print("joined", time.monotonic(), flush=True)  # CLOCK_MONOTONIC: one clock per machine
    if info.rank == 1:
        if sys.argv[1] == "crash":
            raise RuntimeError("rank 1 crashed")
        time.sleep(60)  # hangs: never joins the collective
    dist.all_reduce(torch.ones(1))
""")


@pytest.mark.parametrize("failure", ["crash", "hang"])
def test_a_failing_rank_makes_the_others_fail_fast(failure):
    # no launcher supervising: the collective timeout alone must end rank 0
    # timed from rank 0's joining, not its start: importing torch on a loaded machine can
    # take longer than the whole 3 s collective timeout
    with launch_two(FAIL_SCRIPT, failure) as procs:
        out, err = procs[0].communicate(timeout=120)
        end = time.monotonic()
        assert procs[0].returncode != 0
        joined = [float(line.split()[1]) for line in out.splitlines() if line.startswith("joined")]
        assert len(joined) == 1, out + err
        assert end - joined[0] < 20, "rank 0 did not fail fast"
        assert "rank 1 crashed" not in err  # rank 0 failed on its own collective


UNUSED_SCRIPT = textwrap.dedent("""
    import gc
    import torch, sureid
    from sureid.engine import Trainer, cleanup, init_distributed, wrap_ddp
    from sureid.models import ReIDModel
    info = init_distributed(timeout_s=30)
    for static in (False, True):  # auto find_unused_parameters, then DDP's static graph
        torch.manual_seed(0)
        vit = sureid.VisionTransformer(img_size=(32, 16), patch_size=8, embed_dim=32, depth=4,
                                       num_heads=2)
        hts = sureid.HTSViT(vit, keep_ratio=[1.0, 0.5], prune_layers=(1, 3))  # decision.0 unused
        model = ReIDModel(hts, 4, reweight=True)
        objective = sureid.SUReIDLoss(kd=None)
        ddp = wrap_ddp(model, objective=objective, static_graph=static)
        assert ddp.find_unused_parameters == (not static)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        trainer = Trainer(ddp, objective, opt, is_main=info.is_main, log=lambda s: None)
        g = torch.Generator().manual_seed(info.rank)  # different data per rank
        for _ in range(3):
            trainer.train_step(torch.randn(8, 3, 32, 16, generator=g),
                               torch.arange(4).repeat_interleave(2))
        flat = torch.cat([p.detach().flatten() for p in model.parameters()])
        both = [torch.zeros_like(flat) for _ in range(2)]
        torch.distributed.all_gather(both, flat)
        assert torch.equal(both[0], both[1]), static
    # a clean end, as a training script's: without it a rank could abort with "terminate
    # called without an active exception" when the interpreter tears the process group's
    # gloo threads down at exit. The DDP wrapper holds the group; both ranks get here first.
    del trainer, ddp
    gc.collect()
    torch.distributed.barrier()
    cleanup()
    print("ok", info.rank)
""")


def test_ddp_with_unused_decision_module_auto_and_static_graph():
    with launch_two(UNUSED_SCRIPT) as procs:
        for r, p in enumerate(procs):
            out, err = p.communicate(timeout=90)
            assert p.returncode == 0 and f"ok {r}" in out, err[-3000:]


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, []),
        ({"prune": False}, ["backbone.decision.0", "backbone.decision.1"]),
        ({"keep_ratio": [1.0, 0.5]}, ["backbone.decision.0"]),
        ({"compute_cls_attn": False}, ["reweight"]),
    ],
)
def test_unused_parameters_are_exactly_those_without_gradient(kwargs, expected):
    model = tiny_reid(**kwargs)
    objective = sureid.SUReIDLoss(kd=None, ratio="default" if model.backbone.prune else None)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(model, objective, opt, log=lambda s: None)
    labels = torch.arange(4).repeat_interleave(2)
    trainer.train_step(torch.randn(8, 3, 32, 16), labels)
    no_grad = sorted(n for n, p in model.named_parameters() if p.requires_grad and p.grad is None)
    assert no_grad == sorted(unused_parameters(model, objective))
    assert all(any(n.startswith(e + ".") for e in expected) for n in no_grad)
    assert all(any(n.startswith(e + ".") for n in no_grad) for e in expected)


def test_single_process_and_bad_input(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = init_distributed()
    assert info == DistInfo() and info.is_main and not info.distributed
    with pytest.raises(ValueError, match="backend must be one of"):
        init_distributed("mpi")
    with pytest.raises(ValueError, match=r"timeout_s must be in \(0, inf\], got 0"):
        init_distributed(timeout_s=0)
    with pytest.raises(TypeError, match="timeout_s must be a real number, got str '60'"):
        init_distributed(timeout_s="60")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="nccl' needs CUDA"):
            init_distributed("nccl")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE must be an int, got 'two'"):
        init_distributed()
    model = tiny_reid()
    with pytest.raises(ValueError, match="sync_batchnorm=True needs CUDA"):
        wrap_ddp(model, sync_batchnorm=True)
    with pytest.raises(RuntimeError, match="call init_distributed"):
        wrap_ddp(model)
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        wrap_ddp("model")
