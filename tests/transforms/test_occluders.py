import os
import pickle
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from sureid import NODA, OccluderBank, make_procedural_occluders, save_occluders
from sureid.transforms import PROCEDURAL_KINDS
from sureid.transforms._functional import pil_to_tensor


def test_procedural_occluders_are_seeded_rgba_and_varied():
    a = make_procedural_occluders(14, seed=3)
    b = make_procedural_occluders(14, seed=3)
    c = make_procedural_occluders(14, seed=4)
    assert all(im.mode == "RGBA" for im in a)
    assert [np.array(x).tobytes() for x in a] == [np.array(x).tobytes() for x in b]
    assert [np.array(x).tobytes() for x in a] != [np.array(x).tobytes() for x in c]
    aspects = [im.height / im.width for im in a]
    assert any(r > 2 for r in aspects) and any(r <= 2 for r in aspects)
    alphas = [np.array(im)[..., 3] for im in a]
    # solid bodies; most have a transparent background (a plain pole crop may be all body)
    assert all(al.max() == 255 for al in alphas)
    assert sum(al.min() == 0 for al in alphas) >= len(a) - 3
    for im, alpha in zip(a, alphas, strict=True):
        assert 64 <= max(im.size) <= 160
        rgb = np.array(im)[..., :3][alpha == 255]
        assert rgb.std() > 2  # textured, not flat
    means = {tuple(np.array(im)[..., :3][np.array(im)[..., 3] == 255].mean(0).round(-1))
             for im in a}
    assert len(means) > 7  # colours vary


@pytest.mark.parametrize("kind", PROCEDURAL_KINDS)
def test_each_kind_draws(kind):
    (im,) = make_procedural_occluders(1, seed=0, kinds=[kind], size=(32, 48))
    assert im.mode == "RGBA" and 32 <= max(im.size) <= 48


@pytest.mark.parametrize(
    "kwargs, err, match",
    [({"n": 0}, ValueError, "n must be >= 1, got 0"),
     ({"n": 2.5}, TypeError, "n must be an int, got float 2.5"),
     ({"n": 2, "size": (8, 20)}, ValueError, r"size\[0\] must be >= 16, got 8"),
     ({"n": 2, "size": (50, 40)}, ValueError, r"size\[1\] must be >= 50, got 40"),
     ({"n": 2, "size": (50, 60.0)}, TypeError, r"size\[1\] must be an int"),
     ({"n": 2, "size": 50}, TypeError, "size must be a pair of ints"),
     ({"n": 2, "kinds": ["dragon"]}, ValueError, "kinds must be"),
     ({"n": 2, "kinds": []}, ValueError, "kinds must be")],
)
def test_procedural_bad_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        make_procedural_occluders(**kwargs)


def test_folder_round_trip(tmp_path):
    occ = make_procedural_occluders(5, seed=1)
    paths = save_occluders(occ, tmp_path / "occ")
    (tmp_path / "occ" / "README.txt").write_text("not an image, ignored")
    bank = OccluderBank(tmp_path / "occ", max_side=None)
    assert len(bank) == 5 and [p.name for p in paths][0] == "occluder_0000.png"
    for i, im in enumerate(occ):
        assert torch.equal(bank[i], pil_to_tensor(im))
    out = NODA(str(tmp_path / "occ"), p=1.0)(torch.zeros(3, 32, 16, dtype=torch.uint8))
    assert out.any()


def test_paths_pils_and_tensors_and_downscale(tmp_path):
    (p,) = save_occluders([Image.new("RGB", (400, 100), (9, 9, 9))], tmp_path)
    rgb_tensor = torch.full((3, 10, 30), 0.5)
    bank = OccluderBank([p, Image.new("L", (20, 60), 100), rgb_tensor], max_side=160)
    assert len(bank) == 3
    assert tuple(bank[0].shape) == (4, 40, 160)  # longest side capped, aspect kept
    assert bool((bank[0][3] == 255).all())  # RGB -> opaque
    assert tuple(bank[1].shape) == (4, 60, 20) and bool((bank[1][:3] == 100).all())
    assert bank[2].dtype == torch.uint8 and int(bank[2][0, 0, 0]) == 128
    assert bank.nbytes == sum(t.numel() for t in (bank[0], bank[1], bank[2]))
    assert "3 occluders" in repr(bank)
    assert OccluderBank(bank)._items is bank._items
    clone = pickle.loads(pickle.dumps(bank))
    assert all(torch.equal(clone[i], bank[i]) for i in range(3))


def test_palette_transparency_is_honoured():
    im = Image.new("P", (10, 30), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.paste(1, (0, 0, 5, 30))
    im.info["transparency"] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = OccluderBank([im])[0]
    assert t[3, :, :5].eq(255).all() and t[3, :, 5:].eq(0).all()


def test_missing_folder(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match="nope"):
        OccluderBank(missing)
    with pytest.raises(FileNotFoundError, match="nope"):
        NODA(missing)


def test_empty_folder_and_folder_without_images(tmp_path):
    with pytest.raises(ValueError, match="contains no images"):
        OccluderBank(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="contains no images"):
        NODA(tmp_path)


def test_file_instead_of_folder(tmp_path):
    (p,) = save_occluders(make_procedural_occluders(1), tmp_path)
    with pytest.raises(ValueError, match="expected a folder"):
        OccluderBank(p)


def test_unreadable_file_is_named(tmp_path):
    save_occluders(make_procedural_occluders(2), tmp_path)
    (tmp_path / "broken.png").write_bytes(b"this is not a png")
    with pytest.raises(ValueError, match="broken.png"):
        OccluderBank(tmp_path)
    with pytest.raises(ValueError, match="broken.png"):
        OccluderBank([tmp_path / "broken.png"])


def test_unreadable_files_skipped_with_one_warning(tmp_path):
    save_occluders(make_procedural_occluders(2), tmp_path)
    for i in range(5):
        (tmp_path / f"broken{i}.jpg").write_bytes(b"junk")
    with pytest.warns(UserWarning, match="skipped 5 unreadable") as rec:
        bank = OccluderBank(tmp_path, on_error="skip")
    assert len(rec) == 1 and len(bank) == 2


def test_all_unreadable_with_skip_is_empty_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"junk")
    with pytest.warns(UserWarning, match="skipped 1"), pytest.raises(ValueError, match="empty"):
        OccluderBank(tmp_path, on_error="skip")


@pytest.mark.parametrize(
    ("source", "exc", "match"),
    [
        ([], ValueError, "empty"),
        ([3], TypeError, "#0"),
        (Image.new("RGB", (4, 4)), TypeError, "wrap it in a list"),
        (42, TypeError, "int"),
        ([torch.zeros(2, 4, 4)], ValueError, r"\(3\|4, h, w\)"),
        ([Image.new("RGB", (0, 4))], ValueError, "empty"),
    ],
)
def test_bad_sources(source, exc, match):
    with pytest.raises(exc, match=match):
        OccluderBank(source)


@pytest.mark.parametrize("kwargs", [{"max_side": 0}, {"on_error": "ignore"}])
def test_bad_bank_arguments(kwargs):
    with pytest.raises(ValueError):
        OccluderBank(make_procedural_occluders(1), **kwargs)


# --- issue 16 item 4: 16-bit PNGs and float tensors on another scale -------------------------
def test_sixteen_bit_grey_png_is_scaled_to_eight_bits(tmp_path):
    grey = np.zeros((8, 12), np.uint16)
    grey[:, 4:] = 30000  # 30000 / 65535 of white -> 117 in 8 bits (Pillow's 16-bit RGB rule)
    grey[:, 8:] = 65535
    Image.fromarray(grey).save(tmp_path / "a.png", transparency=0)  # tRNS: 0 is transparent
    with Image.open(tmp_path / "a.png") as im:
        im.load()
    assert im.mode == "I;16"
    for source in (tmp_path, [tmp_path / "a.png"], [im]):
        t = OccluderBank(source)[0]
        assert t[:3, :, 4:8].eq(117).all() and t[:3, :, 8:].eq(255).all()
        assert t[3, :, :4].eq(0).all() and t[3, :, 4:].eq(255).all()


@pytest.mark.parametrize("mode", ["I", "F"])
def test_wide_range_pil_modes_are_refused(mode):
    im = Image.fromarray(np.full((10, 20), 1000, np.int32 if mode == "I" else np.float32))
    assert im.mode == mode
    with pytest.raises(ValueError, match=rf"occluder #0: PIL mode '{mode}' \(values 1000"):
        OccluderBank([im])


@pytest.mark.parametrize(
    ("tensor", "match"),
    [(torch.full((3, 10, 20), 128.0), r"\[128, 128\].*0-255"),
     (torch.full((4, 10, 20), -1.5), "normalised")],
)
def test_float_tensor_occluder_outside_unit_range_is_refused(tensor, match):
    with pytest.raises(ValueError, match=rf"occluder #1: a floating tensor .*{match}"):
        OccluderBank([torch.rand(3, 10, 20), tensor])


# --- issue 16 item 7: save_occluders writes complete folders or none -------------------------
def test_interrupted_save_leaves_no_folder_and_rerun_is_complete(tmp_path, monkeypatch):
    real, calls = Image.Image.save, []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # Ctrl-C while the 4th PNG is written
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", interrupted)
    occ = make_procedural_occluders(10, seed=0)
    with pytest.raises(KeyboardInterrupt):
        save_occluders(occ, tmp_path / "occ")
    assert os.listdir(tmp_path) == []  # the reproducer left 3 of 10 occluders, used silently
    monkeypatch.setattr(Image.Image, "save", real)
    paths = save_occluders(occ, tmp_path / "occ")
    assert len(paths) == 10 and len(OccluderBank(tmp_path / "occ")) == 10
    assert sorted(os.listdir(tmp_path)) == ["occ"]


_SLOW_SAVER = """
import sys, time
from pathlib import Path
from PIL import Image
from sureid import make_procedural_occluders, save_occluders

real, started, calls = Image.Image.save, Path(sys.argv[2]), []
def slow(self, *args, **kwargs):
    calls.append(1)
    if len(calls) > 3:
        started.touch()
        time.sleep(0.2)
    return real(self, *args, **kwargs)
Image.Image.save = slow
save_occluders(make_procedural_occluders(40, seed=0), sys.argv[1])
"""


def test_killed_save_is_absent_and_rerun_removes_its_temp(tmp_path):
    work, flag = tmp_path / "work", tmp_path / "started"
    work.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_SAVER, str(work / "occ"), str(flag)])
    try:
        deadline = time.monotonic() + 120
        while not flag.exists():
            assert proc.poll() is None, "the writer exited before writing"
            assert time.monotonic() < deadline, "the writer did not start"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (left,) = os.listdir(work)
    assert left.startswith(".occ.tmp-") and len(os.listdir(work / left)) >= 3
    with pytest.raises(FileNotFoundError):  # nothing half-written to be loaded
        OccluderBank(work / "occ")
    save_occluders(make_procedural_occluders(5, seed=0), work / "occ")
    assert os.listdir(work) == ["occ"] and len(OccluderBank(work / "occ")) == 5


def test_folder_missing_or_truncated_files_is_refused(tmp_path):
    save_occluders(make_procedural_occluders(6, seed=0), tmp_path / "occ")
    (tmp_path / "occ" / "occluder_0002.png").unlink()
    with pytest.raises(ValueError, match=r"may be incomplete: 1 of the 6 files .*occluder_0002"):
        OccluderBank(tmp_path / "occ")
    save_occluders(make_procedural_occluders(6, seed=0), tmp_path / "occ")  # replaced whole
    p = tmp_path / "occ" / "occluder_0004.png"
    p.write_bytes(p.read_bytes()[:100])  # truncated
    with pytest.raises(ValueError, match=r"changed size: 'occluder_0004.png'"):
        NODA(tmp_path / "occ")


def test_folder_from_an_older_unchecked_save_is_refused_then_replaced(tmp_path):
    legacy = tmp_path / "occ"
    legacy.mkdir()
    for i, im in enumerate(make_procedural_occluders(13, seed=0)):  # 13 of 200 written
        im.save(legacy / f"occluder_{i:04d}.png")
    with pytest.raises(ValueError, match=r"occluder_0012.png .* no sureid_occluders.json"):
        OccluderBank(legacy)
    save_occluders(make_procedural_occluders(20, seed=0), legacy)
    assert len(OccluderBank(legacy)) == 20


def test_save_never_touches_a_foreign_folder(tmp_path):
    (tmp_path / "mine.png").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="holds other files"):
        save_occluders(make_procedural_occluders(2), tmp_path)
    with pytest.raises(TypeError, match=r"images\[1\]"):
        save_occluders([make_procedural_occluders(1)[0], "x.png"], tmp_path / "new")
    with pytest.raises(TypeError, match="prefix must be a str, got int 3"):
        save_occluders(make_procedural_occluders(1), tmp_path / "new", prefix=3)
    with pytest.raises(ValueError, match="prefix must be a non-empty file name part"):
        save_occluders(make_procedural_occluders(1), tmp_path / "new", prefix="a/b")
    assert sorted(os.listdir(tmp_path)) == ["mine.png"]


# ----------------------------------------------------------------------------- issue 26
@pytest.mark.parametrize("empty", [
    lambda: [], lambda: iter(()), lambda: (im for im in []),
    lambda: _exhausted(),
])
def test_saving_nothing_never_replaces_a_folder(tmp_path, empty):
    folder = tmp_path / "occ"
    save_occluders(make_procedural_occluders(3), folder)
    before = sorted((p.name, p.read_bytes()) for p in folder.iterdir())
    with pytest.raises(ValueError, match="images is empty"):
        save_occluders(empty(), folder)
    assert sorted((p.name, p.read_bytes()) for p in folder.iterdir()) == before
    assert len(OccluderBank(folder)) == 3


def _exhausted():
    gen = (im for im in make_procedural_occluders(2))
    list(gen)
    return gen


def test_a_bad_item_late_in_a_generator_writes_nothing(tmp_path):
    folder = tmp_path / "occ"
    save_occluders(make_procedural_occluders(3), folder)
    before = sorted(p.name for p in folder.iterdir())
    good = make_procedural_occluders(5)

    def items():
        yield from good
        yield Image.new("RGBA", (0, 5))

    with pytest.raises(ValueError, match=r"images\[5\] is empty"):
        save_occluders(items(), folder)
    assert sorted(p.name for p in folder.iterdir()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("kwargs, err", [
    ({"recursive": "no"}, TypeError), ({"recursive": 1}, TypeError),
    ({"max_side": True}, TypeError), ({"max_side": 64.0}, TypeError),
])
def test_bank_refuses_truthy_and_bool_arguments(tmp_path, kwargs, err):
    with pytest.raises(err, match=next(iter(kwargs))):
        OccluderBank(make_procedural_occluders(1), **kwargs)

