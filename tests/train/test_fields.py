"""sureid.train.fields: every kind of setting is checked with sureid._checks' wording:
TypeError for a wrong type, ValueError for a wrong value, both naming the key."""

import math

import numpy as np
import pytest

from sureid.train import TrainConfig, merge
from sureid.train.fields import _opt


def _set(section, key, value):
    return merge(TrainConfig(), {section: {key: value}}, where=None)


@pytest.mark.parametrize("section, key, value, error, match", [
    ("data", "noda", 1, TypeError, r"data\.noda must be a bool, got 1"),
    ("data", "noda", "yes", TypeError, r"data\.noda must be a bool, got 'yes'"),
    ("data", "layout", 3, TypeError, r"data\.layout must be a string, got int 3"),
    ("eval", "metric", "l1", ValueError,
     r"eval\.metric must be one of \['euclidean', 'cosine'\], got 'l1'"),
    ("data", "workers", True, TypeError, r"data\.workers must be an int, got bool True"),
    ("data", "workers", -1, ValueError, r"data\.workers must be >= 0, got -1"),
    ("schedule", "lr", True, TypeError, r"schedule\.lr must be a real number, got bool True"),
    ("schedule", "lr", 0.0, ValueError, r"schedule\.lr must be in \(0, inf\), got 0\.0"),
    ("schedule", "lr", math.nan, ValueError, r"schedule\.lr must be in \(0, inf\), got nan"),
    ("objective", "alpha", -1.0, ValueError, r"objective\.alpha must be in \[0, inf\), got -1"),
    ("objective", "alpha", -math.inf, ValueError, r"objective\.alpha must be in \[0, inf\)"),
    ("objective", "margin", math.inf, ValueError,
     r"objective\.margin must be in \[0, inf\), got inf"),
    ("objective", "label_smoothing", 1.0, ValueError,
     r"objective\.label_smoothing must be in \[0, 1\), got 1\.0"),
    ("student", "prune_layers", 3, TypeError,
     r"student\.prune_layers must be a list of ints, got int 3"),
    ("student", "prune_layers", [3, 6.0], TypeError,
     r"student\.prune_layers\[1\] must be an int, got float 6\.0"),
    ("student", "prune_layers", [-1, 3], ValueError,
     r"student\.prune_layers\[0\] must be >= 0, got -1"),
    ("data", "img_size", [64, 0], ValueError, r"data\.img_size\[1\] must be >= 1, got 0"),
    ("data", "img_size", [1.5], TypeError, r"data\.img_size\[0\] must be an int"),
    ("data", "img_size", [64, 32, 3], ValueError,
     r"data\.img_size must hold 2 ints, got \[64, 32, 3\]"),
])
def test_a_bad_value_is_refused_with_its_key(section, key, value, error, match):
    with pytest.raises(error, match=match):
        _set(section, key, value)


def test_values_come_back_in_their_plain_types():
    cfg = merge(TrainConfig(), {
        "seed": np.int64(3),
        "data": {"img_size": [np.int64(64), 32], "erasing_p": np.float32(0.25)},
        "objective": {"alpha": 2},
    })
    assert type(cfg.seed) is int and cfg.seed == 3
    assert cfg.data.img_size == (64, 32) and all(type(v) is int for v in cfg.data.img_size)
    assert type(cfg.data.erasing_p) is float and cfg.data.erasing_p == 0.25
    assert type(cfg.objective.alpha) is float and cfg.objective.alpha == 2.0


def test_open_bounds_are_for_float_settings_only():
    assert _opt(0.5, "a float", low=0.0, low_open=True).metadata["low_open"]
    with pytest.raises(TypeError, match="open bounds are for float settings, got the default 1"):
        _opt(1, "an int", low=0, low_open=True)
