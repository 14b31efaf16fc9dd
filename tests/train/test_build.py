"""sureid.train.build: the student, the teacher and the objectives a config describes."""

import pytest
import torch

from sureid.engine import save_checkpoint
from sureid.train import build, from_preset, merge

SMOKE = from_preset("smoke")


def _with_checkpoint(path):
    return merge(SMOKE, {"teacher": {"source": "checkpoint", "checkpoint": str(path)}})


def test_the_student_prunes_with_its_reweight_head_unless_dense():
    hts = build._student(SMOKE, 5, print)
    assert hts.backbone.prune and hts.reweight is not None and hts.num_classes == 5
    assert hts.backbone.keep_ratios[0] == pytest.approx(0.7)
    dense = build._student(merge(SMOKE, {"student": {"keep_ratio": 1.0}}), 5, print)
    assert not dense.backbone.prune and dense.reweight is None


@pytest.mark.parametrize("student, teacher_dim, kd, ratio", [
    ({}, 96, True, True),
    ({}, None, False, True),
    ({"keep_score": "attention"}, 96, True, False),  # no decision modules to train
    ({"keep_ratio": 1.0}, None, False, False),
])
def test_the_objective_has_the_terms_the_models_need(student, teacher_dim, kd, ratio):
    cfg = merge(SMOKE, {"student": student})
    objective = build._objective(cfg, build._student(cfg, 5, print), teacher_dim)
    assert objective.use_kd is kd and objective.needs_teacher is kd
    assert objective.use_ratio is ratio
    if kd:
        assert (objective.kd.student_dim, objective.kd.teacher_dim) == (64, teacher_dim)


def test_the_teacher_is_dense_and_learns_id_and_triplet_only():
    net = build._teacher_net(SMOKE, 5, print)
    assert not net.backbone.prune and net.embed_dim == 96
    objective = build._teacher_objective(SMOKE)
    assert not (objective.use_kd or objective.use_ratio or objective.use_reweight)


def test_a_loaded_teacher_is_frozen_and_gives_its_feature_width(tmp_path):
    path = tmp_path / "teacher.pt"
    build._teacher_net(SMOKE, 5, print).save(path)
    lines = []
    teacher = build._loaded_teacher(_with_checkpoint(path), 5, lines.append)
    assert lines == [f"teacher loaded from {path}"]
    assert not any(p.requires_grad for p in teacher.parameters())
    assert build._feature_dim(teacher, SMOKE.data.img_size) == 96
    with pytest.raises(ValueError, match=r"was trained on 5 identities, the training set has 7"):
        build._loaded_teacher(_with_checkpoint(path), 7, print)


def test_teacher_checkpoints_that_do_not_fit_are_refused(tmp_path):
    state = tmp_path / "state.pt"
    save_checkpoint({"model": build._student(SMOKE, 5, print).state_dict()}, state)
    with pytest.raises(ValueError, match=r"does not fit the \[teacher\] architecture"):
        build._loaded_teacher(_with_checkpoint(state), 5, print)
    other = tmp_path / "other.pt"
    save_checkpoint({"weights": torch.zeros(1)}, other)
    with pytest.raises(ValueError, match="is neither a sureid model file"):
        build._loaded_teacher(_with_checkpoint(other), 5, print)
