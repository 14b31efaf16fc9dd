import pytest
import torch
from torch import nn

import sureid
from sureid.flops import count_flops
from sureid.models.vit import Attention


def test_linear_by_hand():
    assert count_flops(nn.Linear(8, 4), (8,)) * 1e9 == 2 * 8 * 4
    assert count_flops(nn.Linear(8, 4, bias=False), (8,), batch_size=3) * 1e9 == 2 * 8 * 4


def test_attention_by_hand():
    c, t = 16, 10
    attn = Attention(c, num_heads=2, qkv_bias=True, qk_norm=False, attn_drop=0.0,
                     proj_drop=0.0)
    # qkv 2*T*C*3C + QK^T 2*T*T*C + AV 2*T*T*C + proj 2*T*C*C
    want = 2 * t * c * 3 * c + 4 * t * t * c + 2 * t * c * c
    assert count_flops(attn, example_input=torch.randn(2, t, c)) * 1e9 == want


def test_pruning_lowers_flops_and_modes_restored():
    vit = sureid.VisionTransformer(img_size=(64, 32), patch_size=8, embed_dim=32, depth=4,
                                   num_heads=2)
    model = sureid.HTSViT(vit, keep_ratio=0.5, prune_layers=(1, 2))
    model.train()
    dense_model = sureid.HTSViT(vit, keep_ratio=0.5, prune_layers=(1, 2), prune=False)
    pruned, dense = count_flops(model), count_flops(dense_model)
    assert model.training
    assert 0 < pruned < dense
    assert count_flops(dense_model, (3, 64, 32)) == dense


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        count_flops(nn.Linear(2, 2), (2,), batch_size=0)
