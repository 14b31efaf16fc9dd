"""What the run tests of this folder share: the fast flags and readers of a run's files."""

import csv

import torch

import sureid
from sureid.train import default_format

FAST = ["--no-progress", "--set", "data.workers=0"]
CONFIG = f"config.{default_format()}"  # toml, or json on Python 3.10 without tomli


def read_rows(out):
    """The rows of ``out/log.csv`` as dicts of strings."""
    with open(out / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def same_weights(a, b):
    """Whether two model files hold the same tensors under the same names."""
    sa, sb = sureid.load(a).state_dict(), sureid.load(b).state_dict()
    assert list(sa) == list(sb)
    return all(torch.equal(sa[k], sb[k]) for k in sa)
