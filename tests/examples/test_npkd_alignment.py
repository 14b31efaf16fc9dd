"""examples/npkd_alignment.py: the measures against numpy, and the script on tiny saved models."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import sureid
from sureid.models import ReIDModel

from . import load_example


@pytest.fixture(scope="module")
def script():
    return load_example("npkd_alignment")


def test_measures_against_numpy(script):
    rng = np.random.default_rng(0)
    ft = rng.normal(size=(40, 6))
    fs = 0.5 * ft + rng.normal(size=(40, 6))
    got = script.alignment(torch.from_numpy(fs).float(), torch.from_numpy(ft).float())
    fs, ft = fs.astype(np.float32).astype(np.float64), ft.astype(np.float32).astype(np.float64)
    corr = np.mean([np.corrcoef(fs[:, j], ft[:, j])[0, 1] for j in range(6)])
    design = np.hstack([fs, np.ones((40, 1))])
    coef = np.linalg.lstsq(design[:20], ft[:20], rcond=None)[0]
    r2 = 1 - ((design[20:] @ coef - ft[20:]) ** 2).sum() / ((ft[20:] - ft[:20].mean(0)) ** 2).sum()
    assert got["mse"] == pytest.approx(((fs - ft) ** 2).mean())
    assert got["mse_zero"] == pytest.approx((ft ** 2).mean())
    assert got["channel_corr"] == pytest.approx(corr)
    assert got["probe_r2"] == pytest.approx(r2)
    assert got["sq_norm"] == pytest.approx((fs ** 2).mean())


def test_a_copy_a_permutation_and_silence(script):
    ft = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    same = script.alignment(ft, ft)
    assert same["mse"] == 0 and same["channel_corr"] == pytest.approx(1)
    assert same["probe_r2"] == pytest.approx(1)
    # the teacher's information in another channel order: the probe finds it, the channels
    # (what the feature term compares) do not line up
    shuffled = script.alignment(ft[:, torch.tensor([3, 0, 6, 1, 7, 2, 5, 4])], ft)
    assert shuffled["probe_r2"] == pytest.approx(1) and abs(shuffled["channel_corr"]) < 0.3
    silent = script.alignment(torch.zeros_like(ft), ft)
    assert silent["mse"] == silent["mse_zero"] and silent["sq_norm"] == 0


def test_bad_shapes_are_refused(script):
    with pytest.raises(ValueError, match=r"fs and ft must be \(N, C\) of one shape"):
        script.alignment(torch.zeros(5, 3), torch.zeros(5, 4))
    with pytest.raises(ValueError, match="at least 4 images, got 3"):
        script.alignment(torch.zeros(3, 4), torch.zeros(3, 4))


def test_the_script_on_saved_models(script, tmp_path, capsys):
    rng = np.random.default_rng(0)
    images = tmp_path / "train"
    images.mkdir()
    for i in range(10):
        Image.fromarray(rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)).save(
            images / f"{i:04d}_c1_f{i}.jpg")
    paths = {}
    for name, dim, feature in (("student", 16, "before"), ("teacher", 24, "after")):
        torch.manual_seed(len(name))
        vit = sureid.VisionTransformer(img_size=(32, 16), patch_size=8, embed_dim=dim,
                                       depth=2, num_heads=2)
        paths[name] = tmp_path / f"{name}.pt"
        hts = sureid.HTSViT(vit, keep_ratio=1.0, prune_layers=(1,))
        ReIDModel(hts, 3, eval_feature=feature).eval().save(paths[name])
    out_md, out_json = tmp_path / "a.md", tmp_path / "a.json"
    rows = script.main([str(paths["student"]), str(paths["teacher"]), "--teacher",
                        str(paths["teacher"]), "--images", str(images), "--max-images", "8",
                        "--output", str(out_md), str(out_json)])
    # the teacher against itself (its own width: no interpolation) follows perfectly
    assert rows[1]["mse"] == 0 and rows[1]["channel_corr"] == pytest.approx(1)
    result = json.loads(out_json.read_text())
    assert result["images"] == 8 and [r["student"] for r in result["rows"]] == [
        str(paths["student"]), str(paths["teacher"])]
    assert result["rows"][0]["mse_zero"] == pytest.approx(rows[0]["mse_zero"])
    assert out_md.read_text().count("\n| ") == 3  # header and two rows
    assert str(paths["student"]) in capsys.readouterr().out
    with pytest.raises(SystemExit):
        script.main([str(paths["student"]), "--teacher", str(paths["teacher"]), "--images",
                     str(images), "--max-images", "3"])
