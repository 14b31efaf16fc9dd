import os
import time

import pytest

from sureid import _atomic
from sureid._atomic import remove_stale_siblings, replace_dir, temp_sibling


def test_temp_sibling_names_its_owner_and_is_kept_while_the_owner_lives(tmp_path):
    target = tmp_path / "out"
    tmp = temp_sibling(target)
    assert tmp.parent == tmp_path and tmp.name.startswith(".out.tmp-")
    assert f"-{os.getpid()}-" in tmp.name and not target.exists()
    assert remove_stale_siblings(target) == [] and tmp.is_dir()


def test_dead_owner_other_host_and_age(tmp_path, monkeypatch):
    host = _atomic._host()
    dead = tmp_path / f".out.tmp-{host}-999999999-abcd1234"
    fresh_elsewhere = tmp_path / ".out.tmp-otherhost-1-abcd1234"
    old_elsewhere = tmp_path / ".out.old-otherhost-2-abcd1234"
    other_target = tmp_path / f".other.tmp-{host}-999999999-abcd1234"
    for d in (dead, fresh_elsewhere, old_elsewhere, other_target):
        d.mkdir()
    day_ago = time.time() - _atomic.STALE_AFTER_S - 60
    os.utime(old_elsewhere, (day_ago, day_ago))
    monkeypatch.setattr(_atomic, "_pid_alive", lambda pid: pid != 999999999)
    removed = remove_stale_siblings(tmp_path / "out")
    assert sorted(removed) == sorted([dead, old_elsewhere])
    assert fresh_elsewhere.is_dir() and other_target.is_dir()


def test_replace_dir_swaps_and_restores_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    new = temp_sibling(target)
    (new / "new.txt").write_text("new")
    replace_dir(new, target)
    assert os.listdir(target) == ["new.txt"] and os.listdir(tmp_path) == ["out"]

    newer = temp_sibling(target)
    real = os.replace

    def failing(src, dst):
        if os.fspath(src) == os.fspath(newer):
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(_atomic.os, "replace", failing)
    with pytest.raises(KeyboardInterrupt):
        replace_dir(newer, target)
    assert os.listdir(target) == ["new.txt"]  # the old folder is put back
    assert sorted(os.listdir(tmp_path)) == sorted(["out", newer.name])


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_written_files_and_folders_honour_the_umask(tmp_path, umask):
    import torch

    from sureid import save_occluders
    from sureid.engine import save_checkpoint
    from sureid.transforms.occluders import make_procedural_occluders

    def mode(p):
        return p.stat().st_mode & 0o777

    path = save_checkpoint({"w": torch.zeros(2)}, tmp_path / "ckpt.pt")
    assert mode(path) == 0o666 & ~umask  # 0644 under umask 022, as open() gives
    save_checkpoint({"w": torch.ones(2)}, path)  # replacing keeps the mode open() gives
    assert mode(path) == 0o666 & ~umask
    fd, tmp = _atomic.temp_file(tmp_path / "x.bin")
    os.close(fd)
    assert mode(tmp) == 0o666 & ~umask and tmp.name.startswith(_atomic.temp_file_prefix("x.bin"))
    folder = temp_sibling(tmp_path / "out")
    assert mode(folder) == 0o777 & ~umask
    replace_dir(folder, tmp_path / "out")
    assert mode(tmp_path / "out") == 0o777 & ~umask
    occ = save_occluders(make_procedural_occluders(2, seed=0), tmp_path / "occ")
    assert mode(tmp_path / "occ") == 0o777 & ~umask
    assert all(mode(p) == 0o666 & ~umask for p in (tmp_path / "occ").iterdir()), occ


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_saved_model_file_is_0644_under_umask_022(tmp_path):
    from sureid import HTSViT, ReIDModel, VisionTransformer, load

    vit = VisionTransformer(img_size=(16, 8), patch_size=8, embed_dim=8, depth=2, num_heads=1)
    old = os.umask(0o022)
    try:
        model = ReIDModel(HTSViT(vit, keep_ratio=1.0, prune_layers=(1,)), num_classes=2)
        path = model.save(tmp_path / "m.pt")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    assert load(path).num_classes == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]  # no temporary left
