import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sureid.data.synthetic as synth
from sureid.data.synthetic import (
    SYNTHETIC_PRESETS,
    SyntheticConfig,
    make_synthetic_reid,
    summarize_reid_folder,
    writer,
)
from sureid.data.synthetic.config import resolve_config
from sureid.data.synthetic.identity import identity
from sureid.data.synthetic.plan import build_plan
from sureid.data.synthetic.scene import camera_style, render_image

NAME = re.compile(r"^(\d{4})_c(\d)_f(\d{7})\.jpg$")
SPLITS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
TINY = dict(
    preset="smoke",
    num_train_ids=6,
    num_test_ids=4,
    num_distractor_ids=3,
    num_cameras=3,
    cameras_per_id=(2, 3),
    images_per_camera=(1, 2),
    queries_per_id=2,
    img_size=(64, 32),
    progress=False,
)


def _files(root: Path) -> dict[str, list[tuple[int, int, int, str]]]:
    out = {}
    for split, sub in SPLITS.items():
        rows = []
        for name in sorted(os.listdir(root / sub)):
            m = NAME.match(name)
            assert m, f"bad file name {name!r} in {sub}"
            rows.append((int(m[1]), int(m[2]), int(m[3]), name))
        out[split] = rows
    return out


def _bytes(root: Path) -> dict[str, bytes]:
    return {
        f"{sub}/{n}": (root / sub / n).read_bytes()
        for sub in SPLITS.values()
        for n in sorted(os.listdir(root / sub))
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "ds"
    summary = make_synthetic_reid(root, **TINY)
    return root, summary


def test_layout_names_and_counts(tiny):
    root, summary = tiny
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [*SPLITS.values(), synth.MANIFEST_NAME]
    )
    files = _files(root)
    total_ids = TINY["num_train_ids"] + TINY["num_test_ids"] + TINY["num_distractor_ids"]
    for split, rows in files.items():
        assert rows, split
        pids = {r[0] for r in rows}
        assert all(1 <= p <= total_ids for p in pids)
        assert all(1 <= r[1] <= TINY["num_cameras"] for r in rows)
        counts = getattr(summary, split)
        assert counts.num_images == len(rows)
        assert counts.num_ids == len(pids)
    assert summary.train.num_ids == TINY["num_train_ids"]
    assert summary.query.num_ids == TINY["num_test_ids"]
    assert summary.gallery.num_ids == TINY["num_test_ids"] + TINY["num_distractor_ids"]
    assert summary.reused is False
    assert summarize_reid_folder(root) == {
        "train": summary.train, "query": summary.query, "gallery": summary.gallery
    }
    manifest = json.loads((root / synth.MANIFEST_NAME).read_text())
    assert manifest["generator_version"] == synth.GENERATOR_VERSION
    assert manifest["config"]["img_size"] == [64, 32]


def test_images_are_rgb_jpegs_of_the_requested_size(tiny):
    root, _ = tiny
    for sub in SPLITS.values():
        for name in os.listdir(root / sub)[:5]:
            with Image.open(root / sub / name) as im:
                assert im.format == "JPEG"
                assert im.mode == "RGB"
                assert im.size == (32, 64)  # (W, H)
                assert np.asarray(im).std() > 5  # not blank


def test_identity_splits_and_cameras(tiny):
    root, _ = tiny
    f = _files(root)
    train = {r[0] for r in f["train"]}
    query = {r[0] for r in f["query"]}
    gallery = {r[0] for r in f["gallery"]}
    assert not train & (query | gallery)  # train and test identities are disjoint
    assert query <= gallery  # every query has a true match
    assert len(gallery - query) == TINY["num_distractor_ids"]  # distractors: gallery only
    for pid in query:
        qcams = {r[1] for r in f["query"] if r[0] == pid}
        gcams = {r[1] for r in f["gallery"] if r[0] == pid}
        assert sum(r[0] == pid for r in f["query"]) == TINY["queries_per_id"]
        assert qcams.isdisjoint(gcams)  # queries and gallery come from different cameras
    for pid in train:
        assert len({r[1] for r in f["train"] if r[0] == pid}) >= 2  # seen by several cameras


def test_frame_numbers_are_unique_and_random(tiny):
    root, _ = tiny
    rows = [r for rs in _files(root).values() for r in rs]
    frames = [r[2] for r in rows]
    assert len(set(frames)) == len(frames)
    by_pid = [r[2] for r in sorted(rows)]
    assert by_pid != sorted(by_pid)  # frames do not follow the pid order


def test_queries_are_occluded_within_range(tiny):
    root, summary = tiny
    occ = json.loads((root / synth.MANIFEST_NAME).read_text())["occlusion"]
    assert occ["query"]["images"] == summary.query.num_images
    lo, hi = SyntheticConfig().query_occlusion
    assert lo - 0.1 <= occ["query"]["min_coverage"] <= occ["query"]["max_coverage"] <= hi + 0.1
    assert occ["train"]["images"] < summary.train.num_images  # train is only partly occluded


def test_same_seed_same_bytes_and_reuse(tiny, tmp_path):
    root, _ = tiny
    again = make_synthetic_reid(tmp_path / "again", **TINY)
    assert _bytes(root) == _bytes(tmp_path / "again")
    assert again.reused is False
    # idempotent: a matching folder is reused untouched
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "again").rglob("*")}
    reused = make_synthetic_reid(tmp_path / "again", **TINY)
    assert reused.reused is True
    assert reused.train == again.train
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "again").rglob("*")} == mtimes
    assert sorted(os.listdir(tmp_path)) == ["again"]  # no temporary folders left


def test_different_seed_differs(tiny, tmp_path):
    root, _ = tiny
    other = tmp_path / "other"
    make_synthetic_reid(other, **{**TINY, "seed": 1})
    a, b = _bytes(root), _bytes(other)
    assert a.keys() != b.keys()
    assert set(a.values()).isdisjoint(b.values())


def test_rendering_does_not_depend_on_order():
    ident = identity(0, 3, 10, 0.35)
    style = camera_style(0, 2)

    def render():
        rng = np.random.default_rng([0, 1, 3, 2, 0])
        return np.asarray(render_image(rng, ident, style, (64, 32), (0.2, 0.5), 0)[0])

    first = render()
    identity(0, 4, 10, 0.35)  # unrelated work in between changes nothing
    assert np.array_equal(first, render())
    assert identity(0, 3, 10, 0.35)["pattern"] == ident["pattern"]


def test_mismatch_is_an_error_unless_overwrite(tiny, tmp_path):
    root = tmp_path / "ds"
    make_synthetic_reid(root, **TINY)
    changed = {**TINY, "num_train_ids": 5}
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make_synthetic_reid(root, **changed)
    summary = make_synthetic_reid(root, **changed, overwrite=True)
    assert summary.reused is False and summary.train.num_ids == 5
    manifest = json.loads((root / synth.MANIFEST_NAME).read_text())
    assert manifest["config"]["num_train_ids"] == 5
    assert sorted(os.listdir(tmp_path)) == ["ds"]


def test_foreign_folder_is_never_deleted(tmp_path):
    root = tmp_path / "real_data"
    root.mkdir()
    (root / "keep.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="not a sureid synthetic dataset"):
            make_synthetic_reid(root, **TINY, overwrite=overwrite)
    assert (root / "keep.txt").read_text() == "mine"


def test_empty_existing_folder_is_filled(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    summary = make_synthetic_reid(root, **{**TINY, "num_distractor_ids": 0})
    assert summary.gallery.num_ids == TINY["num_test_ids"]


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    real = writer.render_image
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(writer, "render_image", flaky)
    with pytest.raises(KeyboardInterrupt):
        make_synthetic_reid(tmp_path / "ds", **TINY)
    assert os.listdir(tmp_path) == []


def test_progress_goes_to_stderr(tmp_path, capsys):
    make_synthetic_reid(tmp_path / "a", **{**TINY, "progress": True})
    out = capsys.readouterr()
    assert out.out == "" and "images" in out.err
    make_synthetic_reid(tmp_path / "b", **TINY)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"num_train_ids": 0}, ValueError, "num_train_ids"),
        ({"num_test_ids": "5"}, TypeError, "num_test_ids"),
        ({"num_distractor_ids": -1}, ValueError, "num_distractor_ids"),
        ({"num_cameras": 10}, ValueError, "num_cameras"),
        ({"cameras_per_id": (1, 2)}, ValueError, "cameras_per_id"),
        ({"cameras_per_id": (3, 2)}, ValueError, "cameras_per_id"),
        ({"cameras_per_id": (2, 4)}, ValueError, "cameras_per_id"),  # more than num_cameras=3
        ({"images_per_camera": 0}, ValueError, "images_per_camera"),
        ({"images_per_camera": 2.5}, TypeError, "images_per_camera"),
        ({"queries_per_id": 0}, ValueError, "queries_per_id"),
        ({"img_size": 64}, TypeError, "img_size"),
        ({"img_size": (8, 8)}, ValueError, "img_size"),
        ({"query_occlusion": (0.5, 0.2)}, ValueError, "query_occlusion"),
        ({"train_occlusion": (0.1, 0.95)}, ValueError, "train_occlusion"),
        ({"train_occlusion_rate": 1.5}, ValueError, "train_occlusion_rate"),
        ({"sibling_rate": True}, TypeError, "sibling_rate"),
        ({"preset": "huge"}, ValueError, "preset"),
        ({"seed": -1}, ValueError, "seed"),
        ({"overwrite": "yes"}, TypeError, "overwrite"),
        ({"num_train_ids": 9000, "num_test_ids": 1000}, ValueError, "num_train_ids"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, exc, name):
    with pytest.raises(exc, match=name):
        make_synthetic_reid(tmp_path / "ds", **{**TINY, **kwargs})
    assert os.listdir(tmp_path) == []  # raised before touching the disk


def test_bad_root_type():
    with pytest.raises(TypeError, match="root"):
        make_synthetic_reid(123, **TINY)  # type: ignore[arg-type]


@pytest.mark.parametrize("preset", sorted(SYNTHETIC_PRESETS))
def test_presets_are_valid_and_sized(preset):
    cfg = SYNTHETIC_PRESETS[preset]
    assert isinstance(cfg, SyntheticConfig) and cfg.seed == 0
    n = len(build_plan(cfg))
    bounds = {"smoke": (100, 500), "quick": (2000, 6000), "paper-like": (15000, 40000)}[preset]
    assert bounds[0] <= n <= bounds[1]


def test_config_is_frozen_normalised_and_revalidated():
    cfg = SyntheticConfig(num_train_ids=np.int64(20), cameras_per_id=3, img_size=[96, 48])
    assert cfg.num_train_ids == 20 and type(cfg.num_train_ids) is int
    assert cfg.cameras_per_id == (3, 3) and cfg.img_size == (96, 48)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="num_cameras"):
        dataclasses.replace(cfg, num_cameras=1)
    assert SyntheticConfig() == SYNTHETIC_PRESETS["quick"]
    assert cfg.to_json()["img_size"] == [96, 48]
    assert json.loads(json.dumps(cfg.to_json())) == cfg.to_json()


def test_overrides_and_config_presets(tmp_path):
    assert resolve_config("smoke", {"seed": 3, "img_size": None}) == dataclasses.replace(
        SYNTHETIC_PRESETS["smoke"], seed=3
    )
    with pytest.raises(TypeError, match="num_train_id"):
        make_synthetic_reid(tmp_path / "ds", preset="smoke", num_train_id=3)
    settings = {k: v for k, v in TINY.items() if k not in ("preset", "progress")}
    cfg = resolve_config("smoke", settings)
    a = make_synthetic_reid(tmp_path / "a", preset=cfg, progress=False)
    assert a.config == cfg
    b = make_synthetic_reid(tmp_path / "b", **TINY)
    assert b.config == cfg and _bytes(tmp_path / "a") == _bytes(tmp_path / "b")


# The pixels of the TINY set before JPEG encoding (so they do not depend on the JPEG codec), in
# plan order, and its file names. A change here changes cached datasets and pretrained weights:
# if it is intended, bump GENERATOR_VERSION and update these hashes.
_PINNED_IMAGES = {0: "974722c9ff0f58a7", 1: "571a5d5ef47dc112", 20: "055b9e5a6f0dea81",
                  44: "a9712a94b962d644"}
_PINNED_ALL = "09e0c0fd4efccd0f274fd8199e1db2ba212d663da448c48fd2ec9343316f02f9"
_PINNED_NAMES = "778e32cc413b0b71716b6a60805ea3055f3eadb9a22517de371e71415c453b0c"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_rendered_pixels_are_pinned(tmp_path, monkeypatch):
    seen = []

    def spy(*args, **kwargs):
        img, cov = render_image(*args, **kwargs)
        seen.append(_sha(np.asarray(img).tobytes()))
        return img, cov

    monkeypatch.setattr(writer, "render_image", spy)
    make_synthetic_reid(tmp_path / "ds", **TINY)
    files = _files(tmp_path / "ds")
    names = sorted(f"{split}/{r[3]}" for split, rows in files.items() for r in rows)
    assert synth.GENERATOR_VERSION == 2
    assert len(seen) == 45
    assert {i: seen[i][:16] for i in _PINNED_IMAGES} == _PINNED_IMAGES
    assert _sha("".join(seen).encode()) == _PINNED_ALL
    assert _sha("\n".join(names).encode()) == _PINNED_NAMES


def test_summarize_reid_folder_requires_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="bounding_box_train"):
        summarize_reid_folder(tmp_path)


def test_public_api():
    import sureid
    import sureid.data

    assert sureid.make_synthetic_reid is make_synthetic_reid
    assert sureid.data.make_synthetic_reid is make_synthetic_reid


# --- issue 16 item 7: a killed generation leaves no half dataset, and the rerun cleans up -------
_SLOW_GENERATOR = """
import sys, time
from pathlib import Path
import sureid.data.synthetic as synth
from sureid.data.synthetic import writer

real, started, calls = writer.render_image, Path(sys.argv[2]), []
def slow(*args, **kwargs):
    calls.append(1)
    if len(calls) > 2:  # two images are on disk in the temporary folder
        started.touch()
        time.sleep(0.2)
    return real(*args, **kwargs)
writer.render_image = slow
synth.make_synthetic_reid(sys.argv[1], **{tiny})
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_killed_generation_leaves_no_root_and_rerun_removes_its_temp(tmp_path, sig):
    import signal
    import subprocess
    import sys
    import time

    work, flag = tmp_path / "work", tmp_path / "started"
    work.mkdir()
    code = _SLOW_GENERATOR.format(tiny=TINY)
    proc = subprocess.Popen([sys.executable, "-c", code, str(work / "ds"), str(flag)])
    try:
        deadline = time.monotonic() + 120
        while not flag.exists():
            assert proc.poll() is None, "the generator exited before writing"
            assert time.monotonic() < deadline, "the generator did not start"
            time.sleep(0.05)
        proc.send_signal(getattr(signal, sig))
        assert proc.wait(timeout=60) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (left,) = os.listdir(work)  # the reproducer: a hidden temp folder, no dataset
    assert left.startswith(".ds.tmp-") and any((work / left).rglob("*.jpg"))
    summary = make_synthetic_reid(work / "ds", **TINY)
    assert summary.reused is False and summary.num_images > 0
    assert os.listdir(work) == ["ds"]  # the dead run's temp folder is gone


def test_temp_folders_of_live_runs_and_foreign_folders_are_kept(tmp_path):
    import socket

    host = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"
    live = tmp_path / f".ds.tmp-{host}-{os.getppid()}-abcd1234"  # a concurrent run's
    old_version = tmp_path / ".ds.tmp-k2j4_9zq"  # older sureid: no owner recorded
    foreign = tmp_path / ".ds.tmp-backup-of-mine"  # not a name we make
    for d in (live, old_version, foreign):
        (d / "query").mkdir(parents=True)
    make_synthetic_reid(tmp_path / "ds", **TINY)
    assert sorted(os.listdir(tmp_path)) == sorted(["ds", live.name, foreign.name])
