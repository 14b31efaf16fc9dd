"""benchmarks/quick_student.py: its breakdown times what the inference path runs."""

import torch

from sureid import HTSViT, deit_tiny

from . import load_benchmark


def test_token_plan_matches_forward_features():
    script = load_benchmark("quick_student")
    # stage 0 at ratio 1 is skipped: its decision module never runs
    hts = HTSViT(deit_tiny(img_size=(32, 16), patch_size=4, depth=6), keep_ratio=(1.0, 0.75, 0.5),
                 prune_layers=(1, 3, 4)).eval()
    seen_blocks, seen_decisions = [], []
    for blk in hts.backbone.blocks:
        blk.register_forward_pre_hook(lambda m, a: seen_blocks.append(a[0].shape[1]))
    for s, d in enumerate(hts.decision):
        d.register_forward_pre_hook(lambda m, a, s=s: seen_decisions.append((s, a[0].shape[1])))
    with torch.inference_mode():
        out, kept = hts.forward_features(torch.randn(2, 3, 32, 16), return_indices=True)
    counts, pruned = script.token_plan(hts, 32)
    assert counts == seen_blocks == [1 + 32, 1 + 32, 1 + 32, 1 + 24, 1 + 16, 1 + 16]
    assert [(s, m) for s, m, _ in pruned] == seen_decisions == [(1, 32), (2, 24)]
    assert [k for _, _, k in pruned] == [i.shape[1] for i in kept] == [24, 16]
