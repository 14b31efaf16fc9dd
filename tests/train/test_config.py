"""sureid.train.config: the sections, settings that must fit together, to_dict and merge."""

import dataclasses

import pytest

from sureid.train import DataSection, StudentSection, TrainConfig, merge, to_dict


def test_to_dict_and_merge_are_inverse():
    cfg = merge(TrainConfig(), {"seed": 3, "student": {"prune_layers": [2, 5]}})
    values = to_dict(cfg)
    assert values["seed"] == 3 and values["student"]["prune_layers"] == [2, 5]  # lists
    assert list(values) == ["seed", "device", "data", "student", "teacher", "objective",
                            "schedule", "eval", "log"]
    assert merge(TrainConfig(), values) == cfg
    assert merge(cfg, {}) == cfg  # keys left out keep the base's values


def test_a_section_of_the_wrong_class_is_refused():
    with pytest.raises(TypeError, match="data must be a DataSection, got StudentSection"):
        TrainConfig(data=StudentSection())
    # a section built alone is checked when its config is built
    with pytest.raises(ValueError, match=r"data\.instances must be >= 1, got 0"):
        TrainConfig(data=DataSection(instances=0))


@pytest.mark.parametrize("values, error, match", [
    ([1, 2], TypeError, "config must be a table of settings, got list"),
    ({"data": 3}, ValueError, r"config: \[data\] must be a table of settings, got int 3"),
    ({"data": {"foo": 1}}, ValueError, r"config: unknown key data\.foo; the \[data\] keys"),
    ({"bar": 1}, ValueError, r"config: unknown key 'bar'; the top-level keys"),
    ({"seed": -1}, ValueError, r"config: seed must be >= 0, got -1"),
])
def test_merge_refusals_name_the_key(values, error, match):
    with pytest.raises(error, match=match):
        merge(TrainConfig(), values)


@pytest.mark.parametrize("values, match", [
    ({"teacher": {"source": "checkpoint"}}, r"teacher\.checkpoint must name a trained teacher"),
    ({"teacher": {"checkpoint": "t.pt"}}, r"teacher\.checkpoint is 't\.pt' but teacher\.source"),
    ({"student": {"weights": "timm"}}, r"student\.weights = 'timm'.*student\.timm_name"),
    ({"teacher": {"weights": "timm"}}, r"teacher\.weights = 'timm'.*teacher\.timm_name"),
    ({"student": {"embed_dim": 100}}, r"student\.embed_dim \(100\) must be divisible by "
                                      r"student\.num_heads \(6\)"),
    ({"teacher": {"embed_dim": 100}}, r"teacher\.embed_dim \(100\) must be divisible by "
                                      r"teacher\.num_heads \(12\)"),
    ({"student": {"prune_layers": [3, 12]}}, r"student\.prune_layers must be blocks of the "
                                             r"student \(< student\.depth = 12\)"),
    ({"student": {"prune_layers": [6, 3]}}, r"student\.prune_layers must be increasing"),
    ({"student": {"prune_layers": [3, 3]}}, r"student\.prune_layers must be increasing"),
    ({"student": {"prune_layers": []}}, r"student\.prune_layers must be increasing"),
    ({"device": " "}, r"device must be 'auto' or a torch device"),
])
def test_settings_that_do_not_fit_together(values, match):
    with pytest.raises(ValueError, match=match):
        merge(TrainConfig(), values, where=None)


def test_a_timm_student_leaves_its_shape_to_timm():
    cfg = merge(TrainConfig(), {"student": {"timm_name": "deit_tiny_patch16_224",
                                            "embed_dim": 100, "prune_layers": [3, 12]}})
    assert cfg.student.embed_dim == 100  # the sureid ViT shape is not used


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().seed = 1
