"""Position embeddings carried between ViTs: grid resampling, prefix rows by name."""

import pytest
import torch

from sureid.models.pos_embed import fit_pos_embed, resample_pos_embed
from sureid.models.vit import VisionTransformer
from sureid.models.weights_file import PretrainedWeightsError

timm = pytest.importorskip("timm")

DIMS = dict(embed_dim=16, depth=1, num_heads=2)


def test_resample_pos_embed_matches_timm_and_keeps_prefix():
    pos = torch.randn(1, 3 + 49, 16)
    out = resample_pos_embed(pos, (10, 4), num_prefix_tokens=3)
    ref = timm.layers.resample_abs_pos_embed(pos, new_size=(10, 4), num_prefix_tokens=3)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    assert torch.equal(out[:, :3], pos[:, :3])
    assert resample_pos_embed(pos, (7, 7), num_prefix_tokens=3) is pos
    with pytest.raises(ValueError, match="old_grid"):
        resample_pos_embed(torch.randn(1, 1 + 50, 4), (4, 4), num_prefix_tokens=1)


def test_prefix_rows_are_matched_by_name():
    model = VisionTransformer(img_size=(32, 16), patch_size=8, reg_tokens=1, **DIMS)
    pos = torch.randn(1, 2 + 16, 16)  # a distilled file: [cls, dist] + a 4 x 4 grid
    source = {"cls_token": torch.zeros(1, 1, 16), "dist_token": torch.zeros(1, 1, 16)}
    out, grids, mapping = fit_pos_embed(model, pos, source, None, "f.pth")
    assert out.shape == model.pos_embed.shape and grids == ((4, 4), (4, 2))
    assert torch.equal(out[:, 0], pos[:, 0])  # cls from the file
    assert torch.equal(out[:, 1], model.pos_embed[:, 1].detach())  # reg0 keeps the model's
    assert mapping.startswith("file [cls, dist] -> model [cls, reg0]") and "reg0" in mapping
    torch.testing.assert_close(
        out[:, 2:], resample_pos_embed(pos, (4, 2), num_prefix_tokens=2)[:, 2:], rtol=0, atol=0
    )


def test_same_layout_is_returned_as_it_is_and_a_non_square_grid_must_be_given():
    model = VisionTransformer(img_size=(32, 16), patch_size=8, **DIMS)
    source = {"cls_token": torch.zeros(1, 1, 16)}
    pos = torch.randn(1, 1 + 8, 16)
    assert fit_pos_embed(model, pos, source, None, "f.pth") == (pos, None, None)
    tall = VisionTransformer(img_size=(48, 16), patch_size=8, **DIMS)
    pos = torch.randn(1, 1 + 10, 16)  # a 5 x 2 grid: neither 10 nor 11 rows are a square
    with pytest.raises(PretrainedWeightsError, match=r"f.pth: cannot infer.*source_grid"):
        fit_pos_embed(tall, pos, source, None, "f.pth")
    out, grids, mapping = fit_pos_embed(tall, pos, source, (5, 2), "f.pth")
    assert out.shape == (1, 1 + 12, 16) and grids == ((5, 2), (6, 2)) and mapping is None
    assert torch.equal(out[:, 0], pos[:, 0])
    with pytest.raises(PretrainedWeightsError, match=r"not a \(3, 3\) grid"):
        fit_pos_embed(tall, pos, source, (3, 3), "f.pth")
