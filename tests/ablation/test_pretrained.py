"""Backbone weight files: the shipped ones load and reproduce their saved features."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sureid.ablation import PRESETS, build_backbone, load_backbone_weights, save_backbone_weights
from sureid.ablation.pretrained import probe_images

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "examples" / "pretrained"
ARCH = PRESETS["smoke"].student


def tiny():
    torch.manual_seed(0)
    return build_backbone(ARCH, (64, 32)).backbone


def test_round_trip_in_fp16_gives_the_saved_features(tmp_path):
    vit = tiny()
    path = save_backbone_weights(vit, tmp_path / "w.pt", arch=dataclasses.asdict(ARCH),
                                 img_size=(64, 32), provenance={"seed": 1})
    sd = torch.load(path, weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float16 for v in sd.values() if v.is_floating_point())
    fresh = build_backbone(ARCH, (64, 32)).backbone  # another random init
    assert load_backbone_weights(fresh, path, arch=dataclasses.asdict(ARCH)) == {"seed": 1}
    with torch.no_grad():
        fresh.eval(), vit.eval()
        # fp16 rounding of the weights moves the features only slightly
        torch.testing.assert_close(fresh(probe_images((64, 32))), vit(probe_images((64, 32))),
                                   atol=0.05, rtol=0.05)


def test_mismatches_are_refused(tmp_path):
    vit = tiny()
    path = save_backbone_weights(vit, tmp_path / "w.pt", arch=dataclasses.asdict(ARCH),
                                 img_size=(64, 32), provenance={})
    other = dataclasses.asdict(dataclasses.replace(ARCH, embed_dim=96, num_heads=3))
    with pytest.raises(ValueError, match="holds weights for arch"):
        load_backbone_weights(tiny(), path, arch=other)
    state = torch.load(path, weights_only=True)
    state["reference"] = state["reference"] + 1.0  # the weights no longer give these features
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="reference output differs"):
        load_backbone_weights(tiny(), tmp_path / "bad.pt")
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a sureid backbone file"):
        load_backbone_weights(tiny(), tmp_path / "other.pt")


@pytest.mark.parametrize("role", ["student", "teacher"])
def test_shipped_weights_load_and_give_their_saved_features(role):
    path = SHIPPED / f"quick_{role}.pt"
    arch = getattr(PRESETS["quick"], role)
    backbone = build_backbone(arch, PRESETS["quick"].img_size)
    # load_backbone_weights recomputes the features on fixed inputs and compares them
    provenance = load_backbone_weights(backbone.backbone, path, arch=dataclasses.asdict(arch))
    assert provenance == json.loads(path.with_suffix(".json").read_text())
    assert provenance["corpus"]["identities"] >= 1000 and provenance["wall_seconds"] > 0
    assert path.stat().st_size < 4_000_000


@pytest.mark.slow
def test_pretrain_script_tiny_configuration(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "pretrain_backbones.py"), "--model", "student",
         "--tiny", "--output-dir", str(tmp_path), "--data-dir", str(tmp_path / "corpus"),
         "--no-progress"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    provenance = json.loads((tmp_path / "quick_student.json").read_text())
    assert provenance["seed"] == 1000 and provenance["epochs"] == 1
    assert provenance["corpus"]["identities"] == 24
    arch = PRESETS["quick"].student
    load_backbone_weights(build_backbone(arch, (96, 48)).backbone, tmp_path / "quick_student.pt",
                          arch=dataclasses.asdict(arch))
