"""Labels reach the protocol as exact integers or are refused (issue 26), and every bool
argument of the evaluators is a bool."""

import numpy as np
import pytest
import torch

from sureid.metrics import evaluate, evaluate_rank
from sureid.metrics.retrieval import rank_gallery


def _features():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(4, 8, generator=gen), torch.randn(10, 8, generator=gen)


def _labels():
    return [1, 2, 3, 4], [1, 2, 3, 4, 1, 2, 3, 4, 5, 6], [0] * 4, [1] * 10


BIG = float(2**63)


@pytest.mark.parametrize("pids,exc,fragment", [
    # two identities that are one float: merged, mAP 1.0 instead of the truth
    ([BIG, BIG + 4096, 3.0, 4.0], TypeError, "q_pids[0] must be an int, got float"),
    ([2.0**53 + 2, 2.0, 3.0, 4.0], TypeError, "q_pids[0] must be an int, got float"),
    ([1.0, 2.5, 3.0, 4.0], TypeError, "q_pids[1] must be an int, got float 2.5"),
    ([1.0, float("nan"), 3.0, 4.0], TypeError, "q_pids[1] must be an int, got float nan"),
    (np.array([2**63, 2, 3, 4], dtype=np.uint64), ValueError, "q_pids[0] must be in"),
    ([1, 2, 3, 2**64 + 1], ValueError, "q_pids[3] must be in"),
    (torch.tensor([BIG, 2.0, 3.0, 4.0], dtype=torch.float64), TypeError, "q_pids[0]"),
    (torch.tensor([2.0**60, 2.0, 3.0, 4.0]), TypeError, "q_pids[0]"),
    ([True, False, True, False], TypeError, "got bool True"),
    (["1", "2", "3", "4"], TypeError, "got str '1'"),
])
def test_labels_that_are_not_exact_integers_are_refused(pids, exc, fragment):
    q, g = _features()
    _, gp, qc, gc = _labels()
    with pytest.raises(exc) as err:
        evaluate(q, g, pids, gp, qc, gc)
    assert "q_pids must hold integers" in str(err.value) and fragment in str(err.value)
    d = torch.cdist(q, g).numpy()
    with pytest.raises(exc, match="q_pids must hold integers"):
        evaluate_rank(d, pids, gp, qc, gc)


@pytest.mark.parametrize("where", [1, 2, 3])
def test_gallery_and_camera_labels_are_checked_alike(where):
    q, g = _features()
    args = list(_labels())
    args[where] = [float(2**63)] * len(args[where])
    name = ("q_pids", "g_pids", "q_camids", "g_camids")[where]
    with pytest.raises(TypeError, match=f"{name} must hold integers"):
        evaluate(q, g, *args)


def test_exact_labels_still_pass():
    q, g = _features()
    qp, gp, qc, gc = _labels()
    ref = evaluate(q, g, qp, gp, qc, gc)
    as_float = evaluate(q, g, [float(p) for p in qp], gp, qc, gc)  # whole floats below 2**53
    big = 2**62  # large ints keep their identity
    shifted = evaluate(q, g, [p + big for p in qp], [p + big for p in gp], qc, gc)
    as_uint = evaluate(q, g, np.array(qp, dtype=np.uint64), gp, qc, gc)
    for r in (as_float, shifted, as_uint):
        assert r.mAP == ref.mAP and np.array_equal(r.cmc, ref.cmc)


@pytest.mark.parametrize("value", ["no", 1, 0, None, np.bool_(True)])
@pytest.mark.parametrize("flag", ["rerank", "aqe", "camera_pairs"])
def test_evaluate_flags_must_be_bools(flag, value):
    q, g = _features()
    with pytest.raises(TypeError, match=f"{flag} must be a bool, got"):
        evaluate(q, g, *_labels(), **{flag: value})


@pytest.mark.parametrize("value", ["no", 1, None])
def test_rank_gallery_rerank_must_be_a_bool(value):
    q, g = _features()
    with pytest.raises(TypeError, match="rerank must be a bool"):
        rank_gallery(q, g, topk=3, rerank=value)
    with pytest.raises(TypeError, match="camera_pairs must be a bool"):
        evaluate_rank(torch.cdist(q, g), *_labels(), camera_pairs=value)
