"""timm backbones built with a record of their arguments, and rebuilt from it."""

import pytest
import torch

from sureid.models.timm_backbone import (
    RECORD_ATTR,
    create_timm_model,
    rebuild_timm_model,
    timm_config,
)

timm = pytest.importorskip("timm")


def test_the_record_is_the_name_and_the_callers_arguments():
    size = [64, 32]
    vit = create_timm_model("deit_tiny_patch16_224", img_size=size, patch_size=8,
                            depth=2, num_classes=0, checkpoint_path="")
    size.append(1)  # the record is a copy
    assert getattr(vit, RECORD_ATTR) == {"name": "deit_tiny_patch16_224", "kwargs": {
        "img_size": [64, 32], "patch_size": 8, "depth": 2, "num_classes": 0}}
    config = timm_config(vit)  # plain data: what a model file holds
    assert config == {"name": "deit_tiny_patch16_224", "kwargs": {
        "img_size": [64, 32], "patch_size": 8, "depth": 2, "num_classes": 0}}


def test_the_record_rebuilds_the_same_network():
    vit = create_timm_model("vit_tiny_patch16_224", img_size=(32, 16), patch_size=8, depth=2,
                            num_classes=0, reg_tokens=2, global_pool="avg").eval()
    rebuilt = rebuild_timm_model(timm_config(vit)).eval()
    rebuilt.load_state_dict(vit.state_dict())
    x = torch.randn(2, 3, 32, 16)
    assert repr(rebuilt) == repr(vit) and torch.equal(rebuilt(x), vit(x))
    assert getattr(rebuilt, RECORD_ATTR) == getattr(vit, RECORD_ATTR)  # tuples again


def test_bad_arguments():
    with pytest.raises(TypeError, match="name must be a timm model name"):
        create_timm_model(timm.models.VisionTransformer)
    with pytest.raises(TypeError, match="pretrained must be a bool, got 1"):
        create_timm_model("deit_tiny_patch16_224", pretrained=1)
