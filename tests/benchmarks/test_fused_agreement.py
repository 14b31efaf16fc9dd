"""benchmarks/fused_agreement.py on the smoke model: its counts against a direct computation."""

import shutil

import pytest
import torch

import sureid
from sureid.data import read_occluded_duke
from tests.smoke_run import smoke_run

from . import load_benchmark


def test_counts_and_metrics_match_a_direct_computation(tmp_path_factory, tmp_path):
    info = smoke_run(tmp_path_factory.getbasetemp() / "smoke_run")
    run = tmp_path / "run"
    (run / "models").mkdir(parents=True)
    shutil.copy(info["model"], run / "models" / "hts.pt")
    (run / "data").symlink_to(info["data"])
    out = tmp_path / "agree.md"
    rows = load_benchmark("fused_agreement").main(
        [str(run), "--rows", "hts", "--output", str(out)])
    r = rows["hts"]

    data = read_occluded_duke(info["data"])
    paths = [x.path for x in [*data.query, *data.gallery]]
    model = sureid.load(info["model"])
    eager = sureid.FeatureExtractor(model, kept_indices=True)(paths)
    model.backbone.fused_decision = True
    fused = sureid.FeatureExtractor(model, kept_indices=True)(paths)
    assert r["images"] == len(paths) and r["queries"] == len(data.query)
    assert r["kept_set_differs"] == [int((a != b).any(dim=1).sum())
                                     for a, b in zip(eager.kept, fused.kept, strict=True)]
    assert r["feature_differs"] == int((eager.features != fused.features).any(dim=1).sum())
    assert r["max_abs_feature_diff"] == float((eager.features - fused.features).abs().max())
    # the eager numbers are the model's own, as smoke_run evaluated it
    assert r["eager_rank1"] == pytest.approx(100 * info["rank1"])
    assert r["eager_mAP"] == pytest.approx(100 * info["mAP"])
    est, lo, hi = r["diff_rank1"]
    assert lo <= est <= hi
    assert est == pytest.approx(r["fused_rank1"] - r["eager_rank1"])
    assert out.read_text().startswith("| model |") and "| hts |" in out.read_text()
    assert torch.equal(eager.features, fused.features) == (r["feature_differs"] == 0)
