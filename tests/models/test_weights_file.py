"""Reading weights files: containers, weights_only, sureid backbone files."""

import argparse
from pathlib import Path

import pytest
import torch

from sureid.models.weights_file import (
    BACKBONE_FORMAT,
    PretrainedWeightsError,
    backbone_info,
    read_weights,
    state_dict_of,
)

SHIPPED = Path(__file__).resolve().parents[2] / "examples" / "pretrained"


@pytest.mark.parametrize("layout", ["bare", "model", "model+state_dict", "state_dict_ema"])
def test_the_tensors_are_found_in_their_container(tmp_path, layout):
    weights = {"a.weight": torch.randn(2, 3), "b": torch.zeros(1)}
    wrapped = {
        "bare": weights,
        "model": {"model": weights, "epoch": 300},
        "model+state_dict": {"model": {"state_dict": weights}},
        "state_dict_ema": {"state_dict_ema": weights, "optimizer": {"lr": 0.1}},
    }[layout]
    torch.save(wrapped, tmp_path / "w.pth")
    got = state_dict_of(read_weights(tmp_path / "w.pth"), tmp_path / "w.pth")
    assert got.keys() == weights.keys()
    assert all(torch.equal(got[k], weights[k]) for k in weights)


@pytest.mark.parametrize("content", [b"not a checkpoint", b""])
def test_unreadable_file(tmp_path, content):
    path = tmp_path / "broken.pth"
    path.write_bytes(content)
    with pytest.raises(PretrainedWeightsError, match="broken.pth"):
        read_weights(path)


def test_file_with_arbitrary_objects_is_refused_by_weights_only(tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"model": {"w": torch.zeros(2)}, "args": argparse.Namespace(lr=1)}, path)
    with pytest.raises(PretrainedWeightsError, match=r"pickled.pth .*weights_only=True"):
        read_weights(path)


def test_no_tensors_and_no_state_dict(tmp_path):
    path = tmp_path / "other.pth"
    with pytest.raises(PretrainedWeightsError, match=r"other.pth holds no tensors"):
        state_dict_of({"epoch": 3, "note": "x"}, path)
    with pytest.raises(PretrainedWeightsError, match=r"other.pth holds a list"):
        state_dict_of([torch.zeros(1)], path)


def test_backbone_info_of_a_shipped_file_and_of_others(tmp_path):
    path = SHIPPED / "quick_student.pt"
    info = backbone_info(read_weights(path), path)
    assert info["format"] == BACKBONE_FORMAT and info["img_size"] == (96, 48)
    assert info["arch"]["embed_dim"] == 64 and info["provenance"]["seed"] == 1000
    assert backbone_info({"state_dict": {}}, path) is None
    with pytest.raises(PretrainedWeightsError, match="lacks its arch"):
        backbone_info({"format": BACKBONE_FORMAT, "arch": {"width": 3}}, tmp_path / "b.pt")
