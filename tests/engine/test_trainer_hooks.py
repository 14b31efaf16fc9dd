"""Trainer's on_step / on_epoch_end hooks (what sureid train logs through)."""

import pytest
import torch

import sureid
from sureid.engine import Trainer
from sureid.models import ReIDModel


def _trainer(**hooks):
    vit = sureid.VisionTransformer(img_size=(32, 16), patch_size=8, embed_dim=32, depth=2,
                                   num_heads=2)
    model = ReIDModel(sureid.HTSViT(vit, keep_ratio=0.7, prune_layers=(1,)), num_classes=4)
    objective = sureid.SUReIDLoss(kd=None)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    return Trainer(model, objective, opt, log=lambda s: None, **hooks)


def _batches(n=3):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat_interleave(2)
    return [(torch.randn(8, 3, 32, 16, generator=g), labels) for _ in range(n)]


def test_hooks_see_every_step_and_epoch_with_their_terms(tmp_path):
    steps, epochs = [], []
    trainer = _trainer(on_step=lambda tr, terms: steps.append((tr.state.step, dict(terms))),
                       on_epoch_end=lambda tr, rec: epochs.append(
                           (tr.state.step, dict(rec), (tmp_path / "c.pt").exists())))
    state = trainer.fit(_batches(), epochs=2, progress=False,
                        eval_fn=lambda m: {"mAP": 0.5}, eval_every=1,
                        checkpoint_path=tmp_path / "c.pt")
    assert [s for s, _ in steps] == [1, 2, 3, 4, 5, 6]
    assert {"total", "cls", "tri", "ratio", "keep1"} <= set(steps[0][1])
    assert [s for s, _, _ in epochs] == [3, 6]
    assert [r for _, r, _ in epochs] == state.history  # the records history keeps
    assert epochs[0][1]["mAP"] == 0.5
    assert epochs[0][2] is False  # called before the first checkpoint is written


def test_hooks_off_on_other_ranks_and_checked():
    calls = []
    trainer = _trainer(on_step=lambda *a: calls.append(a), on_epoch_end=lambda *a: calls.append(a),
                       is_main=False)
    trainer.fit(_batches(1), epochs=1, progress=False)
    assert calls == []
    with pytest.raises(TypeError, match="on_step must be callable"):
        _trainer(on_step="log")
