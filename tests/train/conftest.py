"""One smoke run of ``sureid train`` shared by the tests of this folder (once per worker)."""

import pytest
import torch

import sureid
from sureid.cli import main

from .runs import FAST


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """A tiny synthetic Occluded-Duke folder (the smoke preset)."""
    root = tmp_path_factory.mktemp("synth") / "smoke"
    sureid.make_synthetic_reid(root, preset="smoke", progress=False)
    return root


@pytest.fixture(scope="session")
def first(data, tmp_path_factory):
    """The documented command, run once: a teacher trained here, then the student."""
    out = tmp_path_factory.mktemp("runs") / "out"
    torch.manual_seed(0)
    assert main(["train", "--preset", "smoke", "--data-root", str(data), "-o", str(out),
                 "--set", "log.steps=1", *FAST]) == 0
    return out
