"""DataConfig: a model's input size and normalisation."""

import numpy as np
import pytest
import torch

from sureid.models import HTSViT, ReIDModel, VisionTransformer
from sureid.models.data_config import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DataConfig,
    input_size_of,
    resolve_data_config,
)


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(input_size=(64,)), TypeError, r"input_size must be a pair of ints \(H, W\)"),
    (dict(input_size=(64, 0)), ValueError, "input_size must be positive"),
    (dict(input_size=(True, 32)), TypeError, "input_size"),  # a bool is not a size
    (dict(input_size=(64, 32), mean=(0.5, 0.5)), ValueError, r"mean must be 3 numbers"),
    (dict(input_size=(64, 32), mean=0.5), TypeError, r"mean must be 3 numbers"),
    (dict(input_size=(64, 32), mean=(0.5, "a", 0.5)), TypeError, r"mean\[1\] must be a real"),
    (dict(input_size=(64, 32), std=(float("nan"), 1, 1)), ValueError, r"std\[0\].*got nan"),
    (dict(input_size=(64, 32), std=(float("inf"), 1, 1)), ValueError, r"std\[0\].*got inf"),
    (dict(input_size=(64, 32), std=(0.5, 0, 1)), ValueError, r"std\[1\] must be in \(0, inf\)"),
    (dict(input_size=(64, 32), mean=(0.5, float("inf"), 1)), ValueError, r"mean\[1\]"),
])
def test_data_config_refuses_what_would_give_nan_or_a_wrong_image(kwargs, err, match):
    with pytest.raises(err, match=match):
        DataConfig(**kwargs)


def test_data_config_takes_numpy_values_as_python_numbers():
    cfg = DataConfig((np.int64(64), np.int64(32)), mean=np.array([0, 0.5, 1]), std=[1, 2, 3])
    assert cfg == DataConfig((64, 32), (0.0, 0.5, 1.0), (1.0, 2.0, 3.0))
    assert type(cfg.input_size[0]) is int and type(cfg.std[0]) is float


def test_resolve_data_config_reads_the_input_size_of_any_wrapper():
    vit = VisionTransformer(img_size=(32, 16), patch_size=8, embed_dim=8, depth=2, num_heads=2)
    model = ReIDModel(HTSViT(vit, keep_ratio=1.0, prune_layers=(1,)), 3)
    for m in (vit, model.backbone, model):
        assert input_size_of(m) == (32, 16)
        assert resolve_data_config(m) == DataConfig((32, 16), IMAGENET_MEAN, IMAGENET_STD)
    model.data_config = DataConfig((32, 16), mean=(0.5,) * 3)
    assert resolve_data_config(model) is model.data_config
    with pytest.raises(TypeError, match="cannot read the input size of Linear"):
        input_size_of(torch.nn.Linear(2, 2))
