"""Loss switches take what they say: NPKD's flags are bools, the objective's terms a module, None or
"default"; anything else is an error naming the argument (issue 26)."""

import numpy as np
import pytest

from sureid import NPKDLoss, SUReIDLoss
from sureid.losses.npkd import interpolate_features


@pytest.mark.parametrize("value", ["no", "", 0, 1, 1.0, None, np.bool_(False)])
@pytest.mark.parametrize("flag", ["t2_scale", "align_corners"])
def test_npkd_flags(flag, value):
    with pytest.raises(TypeError, match=f"{flag} must be a bool, got"):
        NPKDLoss(**{flag: value})


@pytest.mark.parametrize("value", [0, 1, 1.5, True, False])
@pytest.mark.parametrize("term", ["id_loss", "triplet", "kd", "ratio"])
def test_objective_terms_take_a_module_none_or_default(term, value):
    with pytest.raises(TypeError, match=f"{term} must be a loss module, None or 'default', got"):
        SUReIDLoss(**{term: value})


@pytest.mark.parametrize("value", ["no", "", "off", "Default"])
@pytest.mark.parametrize("term", ["id_loss", "triplet", "kd", "ratio"])
def test_objective_terms_refuse_other_strings(term, value):
    with pytest.raises(ValueError, match=f"{term} must be a loss module, None or 'default', got"):
        SUReIDLoss(**{term: value})


def test_bools_still_work():
    assert NPKDLoss(t2_scale=True).t2_scale is True
    assert SUReIDLoss(kd=None, aux_weight=0).kd is None
    assert isinstance(SUReIDLoss(kd="default").kd, NPKDLoss)
    import torch

    with pytest.raises(TypeError, match="align_corners must be a bool"):
        interpolate_features(torch.zeros(1, 4), 2, align_corners="yes")
