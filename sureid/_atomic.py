"""Generated folders that are complete or absent.

A folder is built in a hidden temporary sibling ``.{name}.tmp-{host}-{pid}-{random}`` and
renamed into place when complete. A run killed before the rename (Ctrl-C, SIGTERM, SIGKILL)
leaves only that sibling, which the next :func:`temp_sibling` for the same target removes:
it is stale when its process is gone (same host) or it has not been touched for a day (any
host). Siblings of live processes are left alone, so concurrent runs do not disturb each other.

Temporary files and folders are created with the mode a plain ``open()`` or ``mkdir()`` gives
(``0o666`` or ``0o777`` less the umask: ``0644`` / ``0755`` under umask 022), not the ``0600``
/ ``0700`` of :mod:`tempfile`, so what is renamed into place is readable as any file the user
writes. The kernel applies the umask (and a folder's default ACL) at creation, so the
process-wide umask is never changed, not even briefly.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import time
from pathlib import Path

__all__ = [
    "remove_stale_siblings", "replace_dir", "temp_file", "temp_file_prefix", "temp_sibling",
]

STALE_AFTER_S = 24 * 3600
_TAGS = ("tmp", "old")
# what follows ".{name}.{tag}-": "{host}-{pid}-{mkdtemp suffix}", or a bare 8-character
# mkdtemp suffix (folders of sureid <= 0.x, before the host and pid were recorded)
_OURS = re.compile(r"(?:(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)-[a-z0-9_]+|[a-z0-9_]{8})")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # no harmless probe on Windows: age decides
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by someone else
        return True
    return True


def _last_touched(path: Path) -> float:
    """Newest mtime of ``path`` and its direct children (writers add files to subfolders)."""
    times = [path.stat().st_mtime]
    try:
        times += [p.stat().st_mtime for p in path.iterdir()]
    except OSError:
        pass
    return max(times)


def remove_stale_siblings(target: Path) -> list[Path]:
    """Remove the temporary siblings of ``target`` left by killed runs; return those removed."""
    target = Path(target)
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return []
    removed = []
    for entry in entries:
        for tag in _TAGS:
            prefix = f".{target.name}.{tag}-"
            if not entry.name.startswith(prefix):
                continue
            m = _OURS.fullmatch(entry.name[len(prefix):])
            is_dir = entry.is_dir()
            if m is None or entry.is_symlink() or not (is_dir or entry.is_file()):
                break  # not ours: never touched
            try:
                old = time.time() - _last_touched(entry) > STALE_AFTER_S
            except OSError:
                break
            if m["pid"] is None:
                stale = True  # an older sureid: no owner recorded, no concurrent writer
            elif m["host"] == _host():
                stale = old or not _pid_alive(int(m["pid"]))
            else:
                stale = old
            if stale:
                if is_dir:
                    shutil.rmtree(entry, ignore_errors=True)
                else:  # a temporary file (save_checkpoint's)
                    entry.unlink(missing_ok=True)
                removed.append(entry)
            break
    return removed


def temp_file_prefix(target: Path) -> str:
    """Name prefix of a temporary file for ``target`` (``.{name}.tmp-{host}-{pid}-``) that
    :func:`remove_stale_siblings` recognises once its process is gone."""
    return f".{Path(target).name}.tmp-{_host()}-{os.getpid()}-"


def _create_unique(prefix: str, folder: Path, make):
    """``make(path)`` for a new random name ``folder / (prefix + 8 hex digits)``.

    ``make`` must fail with ``FileExistsError`` when the name is taken (``O_EXCL``, ``mkdir``).
    """
    for _ in range(100):
        path = folder / f"{prefix}{secrets.token_hex(4)}"
        try:
            return make(path), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name {prefix}* in {str(folder)!r}")


def temp_file(target: str | os.PathLike) -> tuple[int, Path]:
    """Create a new, empty hidden file next to ``target`` and open it for writing.

    Returns ``(fd, path)``. The name is ``.{name}.tmp-{host}-{pid}-{random}`` (see
    :func:`temp_file_prefix`), and the mode is what ``open(path, "w")`` would give
    (``0o666`` less the umask), so the file keeps it when it is renamed onto ``target``.

    Example:
        >>> fd, tmp = temp_file("out/model.pt")  # write and fsync fd, then  # doctest: +SKIP
        >>> os.replace(tmp, "out/model.pt")  # doctest: +SKIP
    """
    target = Path(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    return _create_unique(temp_file_prefix(target), target.parent,
                          lambda p: os.open(p, flags, 0o666))


def temp_sibling(target: Path, tag: str = "tmp") -> Path:
    """Create an empty hidden folder next to ``target`` (removing stale ones first).

    Its mode is what ``mkdir`` gives (``0o777`` less the umask), which the folder keeps when
    :func:`replace_dir` renames it onto ``target``.
    """
    if tag not in _TAGS:
        raise ValueError(f"tag must be one of {_TAGS}, got {tag!r}")
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(target)
    prefix = f".{target.name}.{tag}-{_host()}-{os.getpid()}-"
    return _create_unique(prefix, target.parent, lambda p: os.mkdir(p, 0o777))[1]


def replace_dir(tmp: Path, target: Path) -> None:
    """Rename the finished folder ``tmp`` to ``target``, replacing what ``target`` holds.

    The old ``target`` is first moved aside (one rename), so ``target`` is at every moment
    either the old folder, absent, or the new one.

    Raises:
        OSError: ``target`` appeared meanwhile (another process): ``tmp`` is left for the
            caller to inspect or remove.
    """
    tmp, target = Path(tmp), Path(target)
    if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
        target.rmdir()
    if not target.exists():
        os.replace(tmp, target)
        return
    trash = temp_sibling(target, "old")
    os.replace(target, trash / "old")
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(trash / "old", target)  # put the old folder back
        shutil.rmtree(trash, ignore_errors=True)
        raise
    shutil.rmtree(trash, ignore_errors=True)
