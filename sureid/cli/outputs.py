"""Which existing outputs a command may replace: its own kind of file, or an earlier
``rank`` folder (see :mod:`sureid.cli`)."""

from __future__ import annotations

import json
from pathlib import Path

from .._checks import check_output_path

__all__ = ["RANK_FORMAT", "RANK_MANIFEST", "is_feature_file", "is_onnx_file", "is_result_json",
           "output_file", "rank_folder_problem"]

RANK_MANIFEST = "sureid_rank.json"
RANK_FORMAT = "sureid-rank"


def is_feature_file(path: Path) -> bool:
    from .._checkpoint import load_checkpoint

    try:
        state = load_checkpoint(path)
    except Exception:  # anything unreadable as a checkpoint is not ours
        return False
    return isinstance(state, dict) and "features" in state and "paths" in state


def is_result_json(path: Path) -> bool:
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(result, dict) and {"dataset", "mAP", "num_query"} <= set(result)


def is_onnx_file(path: Path) -> bool:
    try:
        import onnx

        return len(onnx.load(str(path), load_external_data=False).graph.node) > 0
    except Exception:  # not installed (export would stop anyway), or not an ONNX graph
        return False


def output_file(option: str, path: str, inputs, ours, what: str) -> Path:
    """``path`` checked as an output file of one command (see :mod:`sureid.cli`)."""
    out = check_output_path(option, path, inputs=inputs)
    if out.exists() and not ours(out):
        raise FileExistsError(
            f"{option} {str(out)!r} exists and is not {what}; refusing to replace it: choose "
            "a new path or delete it first"
        )
    return out


def rank_folder_problem(folder: Path) -> str | None:
    """Why ``folder`` may not be replaced by a ``rank`` output (None: it may)."""
    if not folder.exists() or not any(folder.iterdir()):
        return None
    try:
        manifest = json.loads((folder / RANK_MANIFEST).read_text(encoding="utf-8"))
        files = set(manifest["files"]) if manifest.get("format") == RANK_FORMAT else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        files = None
    if files is None:
        return f"it holds files and no {RANK_MANIFEST} of an earlier 'sureid rank'"
    others = sorted(p.name for p in folder.iterdir()
                    if p.name != RANK_MANIFEST and (p.name not in files or not p.is_file()))
    if others:
        shown = ", ".join(repr(n) for n in others[:3]) + (" ..." if len(others) > 3 else "")
        return f"it holds {len(others)} file(s) an earlier 'sureid rank' did not write: {shown}"
    return None
