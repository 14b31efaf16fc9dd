"""sureid.train.presets: configs from the ablation presets, and back."""

import pytest

from sureid.ablation import PRESETS, Preset
from sureid.train import TrainConfig, from_preset, merge, to_preset


def test_defaults_are_the_ablation_presets_defaults():
    assert from_preset(Preset(synthetic=None)) == TrainConfig()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_the_recipe(name):
    cfg = from_preset(name)
    preset = to_preset(cfg)
    for key in ("img_size", "student", "teacher", "epochs", "teacher_epochs", "lr", "optimizer",
                "keep_ratio", "kl_weight", "noda_p", "max_steps_per_epoch", "decision_init_keep",
                "warmup_epochs", "backbone_lr_mult"):
        assert getattr(preset, key) == getattr(PRESETS[name], key), key
    # the starting weights are the config's (the recipe's Preset does not carry them)
    weights = {"student": {"weights": ""},
               "teacher": {"weights": "", "source": "train", "checkpoint": ""}}
    assert from_preset(preset) == merge(cfg, weights)


def test_preset_weights_and_smoke_values():
    smoke, quick, paper = from_preset("smoke"), from_preset("quick"), from_preset("paper")
    assert smoke.student.embed_dim == 64 and smoke.schedule.max_steps_per_epoch == 3
    assert smoke.student.weights == "" and smoke.teacher.source == "train"
    assert quick.student.weights == "quick_student"
    assert (quick.teacher.source, quick.teacher.checkpoint) == ("checkpoint",
                                                                "quick_teacher_finetuned")
    assert paper.student.weights == "timm"
    assert paper.student.timm_name == "deit_small_distilled_patch16_224"
    with pytest.raises(ValueError, match="--preset must be one of .*'smoke'"):
        from_preset("tiny")
    with pytest.raises(TypeError, match="preset must be a name or a sureid.ablation.Preset, got "
                                        "int"):
        from_preset(3)
