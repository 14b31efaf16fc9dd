"""Loss switches are bools: a truthy string or number is a TypeError naming the flag (issue 26)."""

import numpy as np
import pytest

from sureid import NPKDLoss, SUReIDLoss
from sureid.losses.npkd import interpolate_features


@pytest.mark.parametrize("value", ["no", "", 0, 1, 1.0, None, np.bool_(False)])
@pytest.mark.parametrize("flag", ["t2_scale", "align_corners"])
def test_npkd_flags(flag, value):
    with pytest.raises(TypeError, match=f"{flag} must be a bool, got"):
        NPKDLoss(**{flag: value})


@pytest.mark.parametrize("value", ["no", "", 0, 1, None])
@pytest.mark.parametrize("flag", ["use_cls", "use_tri", "use_kd", "use_ratio", "use_reweight"])
def test_objective_flags(flag, value):
    with pytest.raises(TypeError, match=f"{flag} must be a bool, got"):
        SUReIDLoss(**{flag: value})


def test_bools_still_work():
    assert NPKDLoss(t2_scale=True).t2_scale is True
    assert SUReIDLoss(use_kd=False, use_reweight=False).kd is None
    import torch

    with pytest.raises(TypeError, match="align_corners must be a bool"):
        interpolate_features(torch.zeros(1, 4), 2, align_corners="yes")
