"""examples/training_fit.py on a tiny saved model and images made here."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import sureid
from sureid.models import ReIDModel

from . import load_example


def make_run(folder, rng):
    """A Table IV-like folder: a tiny HTS model file, six training images, a table4.json."""
    torch.manual_seed(0)
    vit = sureid.VisionTransformer(img_size=(32, 16), patch_size=8, embed_dim=16, depth=2,
                                   num_heads=2)
    (folder / "models").mkdir(parents=True)
    ReIDModel(sureid.HTSViT(vit, keep_ratio=0.5, prune_layers=(1,)), 3).eval().save(
        folder / "models" / "hts.pt")
    train = folder / "data" / "bounding_box_train"
    train.mkdir(parents=True)
    names = ["0001_c1_f1.jpg", "0001_c2_f2.jpg", "0001_c1_f3.jpg", "0002_c1_f4.jpg",
             "0002_c3_f5.jpg", "0003_c2_f6.jpg"]
    for name in names:
        Image.fromarray(rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)).save(train / name)
    rows = [{"name": "+HTS", "per_seed": [{"seed": 0, "rank1": 12.5, "mAP": 10.0}]}]
    (folder / "table4.json").write_text(json.dumps({"rows": rows}))
    return sorted(train.glob("*.jpg"))


def test_training_retrieval_against_a_loop(tmp_path):
    script = load_example("training_fit")
    images = make_run(tmp_path / "run", np.random.default_rng(0))
    out = tmp_path / "out"
    script.main([f"3={tmp_path / 'run'}", "--output", str(out)])
    (row,) = json.loads((out / "training_fit.json").read_text())
    assert (row["epochs"], row["model"], row["test_rank1"]) == (3, "+HTS", 12.5)
    # independent reference: the same features, each query against the other images of its
    # identity from another camera and every image of another identity
    feats = sureid.FeatureExtractor(sureid.load(tmp_path / "run" / "models" / "hts.pt"))(
        [str(f) for f in images]).features
    pid = [f.name[:4] for f in images]
    cam = [f.name.split("_")[1] for f in images]
    hits = valid = 0
    for q in range(len(images)):
        gallery = [g for g in range(len(images)) if not (pid[g] == pid[q] and cam[g] == cam[q])]
        if not any(pid[g] == pid[q] for g in gallery):
            continue  # no true match: the query does not count
        valid += 1
        nearest = min(gallery, key=lambda g: (torch.dist(feats[q], feats[g]).item(), g))
        hits += pid[nearest] == pid[q]
    assert valid == 5  # 0003 has one image: no true match
    assert row["train_rank1"] == round(100 * hits / valid, 2)
    # the nearest other image, any camera, by the same loop
    nearest = [min((g for g in range(len(images)) if g != q),
                   key=lambda g, q=q: (torch.dist(feats[q], feats[g]).item(), g))
               for q in range(len(images))]
    n = len(images)
    assert row["nn_same_id"] == round(100 * sum(pid[g] == pid[q] for q, g in
                                                enumerate(nearest)) / n, 2)
    assert row["nn_same_camera"] == round(100 * sum(cam[g] == cam[q] for q, g in
                                                    enumerate(nearest)) / n, 2)
    assert "| 3 | +HTS |" in (out / "training_fit.md").read_text()


def test_an_extra_model_needs_a_run_at_its_budget(tmp_path, capsys):
    script = load_example("training_fit")
    with pytest.raises(SystemExit):
        script.main([f"3={tmp_path}", "--extra", f"5:x={tmp_path / 'm.pt'}",
                     "--output", str(tmp_path / "out")])
    assert "no EPOCHS=DIR run at 5 epochs" in capsys.readouterr().err


def test_a_test_row_is_found_by_name_or_as_the_only_row(tmp_path):
    script = load_example("training_fit")
    rows = [{"name": "vanilla"}, {"name": "+HTS"}]
    assert script.test_row(rows, "+HTS", tmp_path) == {"name": "+HTS"}
    assert script.test_row(rows[1:], "+HTS keep 1.0", tmp_path) == {"name": "+HTS"}
    with pytest.raises(ValueError, match="no row 'x' among"):  # was: vanilla's row, silently
        script.test_row(rows, "x", tmp_path)
