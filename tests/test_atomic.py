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
