import os

import pytest
import torch

from sureid.engine.checkpoint import load_checkpoint, save_checkpoint


def test_round_trip_and_weights_only(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = save_checkpoint({"model": model.state_dict(), "epoch": 4, "name": "x"}, tmp_path / "a" / "last.pt")
    state = load_checkpoint(path)
    assert state["epoch"] == 4 and state["name"] == "x"
    torch.testing.assert_close(state["model"]["weight"], model.weight.detach(), rtol=0, atol=0)
    assert os.listdir(tmp_path / "a") == ["last.pt"]  # no temp file left behind


def test_failed_write_keeps_previous_checkpoint(tmp_path):
    path = save_checkpoint({"epoch": 1}, tmp_path / "last.pt")

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        save_checkpoint({"epoch": 2, "bad": Unpicklable()}, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["last.pt"]


class Custom:
    pass


def test_arbitrary_objects_are_refused_on_load(tmp_path):
    path = save_checkpoint({"obj": Custom()}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match="[Ww]eights only"):
        load_checkpoint(path)


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(TypeError, match="state must be a dict"):
        save_checkpoint([1, 2], tmp_path / "x.pt")
