import argparse
import os
import pickle
from pathlib import Path

import pytest
import torch

from sureid._checkpoint import load_checkpoint, save_checkpoint
from sureid.engine.checkpoint import check_settings, normalize_settings


def test_round_trip_and_weights_only(tmp_path):
    model = torch.nn.Linear(3, 2)
    state = {"model": model.state_dict(), "epoch": 4, "name": "x"}
    path = save_checkpoint(state, tmp_path / "a" / "last.pt")
    state = load_checkpoint(path)
    assert state["epoch"] == 4 and state["name"] == "x"
    torch.testing.assert_close(state["model"]["weight"], model.weight.detach(), rtol=0, atol=0)
    assert os.listdir(tmp_path / "a") == ["last.pt"]  # no temp file left behind


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint({"epoch": 1}, tmp_path / "last.pt")

    def dies_mid_write(obj, f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise RuntimeError("boom")

    monkeypatch.setattr(torch, "save", dies_mid_write)
    with pytest.raises(RuntimeError, match="boom"):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["last.pt"]


class Custom:
    pass


@pytest.mark.parametrize(
    "state, where",
    [
        ({"args": argparse.Namespace(lr=0.1)}, r"state\['args'\].*argparse.Namespace"),
        ({"cfg": {"root": Path("/data")}}, r"state\['cfg'\]\['root'\].*Path"),
        ({"history": [1.0, Custom()]}, r"state\['history'\]\[1\].*Custom"),
        ({Custom(): 1}, r"state key .*Custom"),
    ],
)
def test_objects_that_would_not_load_are_refused_at_save(tmp_path, state, where):
    """Issue 16: an argparse.Namespace saved fine and then could not be loaded."""
    with pytest.raises(TypeError, match=where + ".*weights_only=True"):
        save_checkpoint(state, tmp_path / "last.pt")
    assert os.listdir(tmp_path) == []  # refused before a byte was written


def test_plain_values_and_state_dicts_save(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = {
        "model": model.state_dict(), "optimizer": opt.state_dict(), "shape": torch.Size([2]),
        "dtype": torch.float16, "pair": (1, "a"), "none": None, "flags": {True, False},
    }
    loaded = load_checkpoint(save_checkpoint(state, tmp_path / "ok.pt"))
    assert loaded["shape"] == torch.Size([2]) and loaded["pair"] == (1, "a")
    assert loaded["flags"] == {True, False}


def test_arbitrary_objects_are_refused_on_load(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"obj": Custom()}, path)  # written by someone else's code
    with pytest.raises(pickle.UnpicklingError, match="evil.pt.*[Ww]eights only"):
        load_checkpoint(path)


def test_broken_files_name_the_path(tmp_path):
    """Issue 16: an empty file gave a bare EOFError, a text file ``KeyError: 101``."""
    good = save_checkpoint({"w": torch.randn(1000)}, tmp_path / "good.pt").read_bytes()
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "truncated.pt").write_bytes(good[: len(good) // 2])
    (tmp_path / "notes.pt").write_text("hello, this is not a checkpoint\n")
    (tmp_path / "pickle.pt").write_bytes(b"\x80\x02")
    with pytest.raises(ValueError, match=r"empty\.pt' is empty \(0 bytes\)"):
        load_checkpoint(tmp_path / "empty.pt")
    for name in ("truncated.pt", "notes.pt", "pickle.pt"):
        with pytest.raises(ValueError, match=rf"{name}' is (truncated or )?not a torch checkpoint"):
            load_checkpoint(tmp_path / name)


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(TypeError, match="state must be a dict"):
        save_checkpoint([1, 2], tmp_path / "x.pt")


# ---------------------------------------------------------------- settings


def test_settings_are_normalised_to_json():
    assert normalize_settings({"ratios": (0.7, 0.49), "n": {"a": 1}}) == {
        "ratios": [0.7, 0.49], "n": {"a": 1},
    }
    with pytest.raises(TypeError, match=r"settings\['data'\] must be a JSON value.*PosixPath"):
        normalize_settings({"data": Path("/data")})
    with pytest.raises(ValueError, match=r"settings\['lr'\] must be finite.*nan"):
        normalize_settings({"lr": float("nan")})
    with pytest.raises(TypeError, match="keys must be str"):
        normalize_settings({1: 2})
    with pytest.raises(TypeError, match="settings must be a mapping"):
        normalize_settings([("a", 1)])


def test_check_settings_names_every_difference():
    stored = {"keep_ratio": 0.7, "data": "a", "model": {"depth": 4, "heads": 2}, "epochs": 2}
    check_settings(stored, {**stored, "epochs": 2.0}, path="run/last.pt")  # 2 == 2.0
    check_settings(stored, dict(reversed(list(stored.items()))), path="x")  # order is no setting
    new = {"keep_ratio": 0.5, "data": "a", "model": {"depth": 6, "heads": 2}, "seed": 1}
    with pytest.raises(ValueError) as info:
        check_settings(stored, new, path="run/last.pt")
    msg = str(info.value)
    assert "'run/last.pt'" in msg
    assert "keep_ratio: checkpoint 0.7, now 0.5" in msg
    assert "model.depth: checkpoint 4, now 6" in msg
    assert "epochs: checkpoint 2, now <missing>" in msg
    assert "seed: checkpoint <missing>, now 1" in msg
    assert len(msg.split("): ", 1)[1].split("; ")) == 4  # "data" is the same: not listed
    with pytest.raises(ValueError, match="stores no settings"):
        check_settings(None, new, path="run/last.pt")


def test_temp_files_of_killed_saves_are_removed_by_the_next_save(tmp_path):
    import subprocess
    import sys

    from sureid._atomic import temp_file_prefix

    target = tmp_path / "last.pt"
    # a save killed mid-write (SIGKILL: no cleanup runs) leaves its temp file behind
    code = ("import os, sys, tempfile; from sureid._atomic import temp_file_prefix; "
            "from pathlib import Path; t = Path(sys.argv[1]); "
            "fd, p = tempfile.mkstemp(prefix=temp_file_prefix(t), dir=t.parent); "
            "os.write(fd, b'partial'); os.kill(os.getpid(), 9)")
    proc = subprocess.run([sys.executable, "-c", code, str(target)])
    assert proc.returncode != 0
    left = list(tmp_path.glob(".last.pt.tmp-*"))
    assert len(left) == 1 and left[0].read_bytes() == b"partial"
    # a live writer's temp file (this process) is left alone
    live = tmp_path / (temp_file_prefix(target) + "live0000")
    live.write_bytes(b"in progress")
    foreign = tmp_path / ".last.pt.something-else"  # not ours: never touched
    foreign.write_bytes(b"x")
    save_checkpoint({"epoch": 1}, target)
    assert not left[0].exists() and live.exists() and foreign.exists()
    assert load_checkpoint(target)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".last.pt.something-else", live.name, "last.pt"])


# ----------------------------------------------------------------------------- issue 26
def _local():
    return None


@pytest.mark.parametrize(
    "value, kind",
    [
        (lambda x: x, "function"),
        (_local.__code__, "code"),
        ((i for i in range(2)), "generator"),
        (__import__("threading").Lock(), "lock"),
    ],
)
def test_unpicklable_values_are_a_type_error_naming_the_key(tmp_path, value, kind):
    # pickle's own AttributeError / PicklingError / TypeError named no key
    with pytest.raises(TypeError, match=rf"cannot save state\['run'\]\['fn'\]: .*{kind}"):
        save_checkpoint({"run": {"fn": value}}, tmp_path / "last.pt")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("target", ["folder", "below_a_file"])
def test_checkpoint_path_that_cannot_be_a_file_is_named_before_writing(tmp_path, target):
    (tmp_path / "f").write_text("x")
    path = tmp_path if target == "folder" else tmp_path / "f" / "last.pt"
    with pytest.raises(ValueError, match="path"):
        save_checkpoint({"a": 1}, path)
    assert sorted(os.listdir(tmp_path)) == ["f"]
