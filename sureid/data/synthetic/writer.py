"""Writer: renders the plan into the Occluded-DukeMTMC layout, atomically, with a manifest.

The dataset is rendered into a hidden temporary sibling of ``root`` and renamed into place
when complete; the manifest (config, generator version, counts, occlusion statistics) is
written last, so a folder is reused only when it is finished and matches the request.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..._atomic import replace_dir, temp_sibling
from ..._checks import check_bool
from ..._progress import Progress
from ..labels import camera_style_name
from .config import SyntheticConfig, resolve_config
from .identity import identity
from .plan import build_plan
from .scene import camera_style, render_image

__all__ = [
    "GENERATOR_VERSION",
    "MANIFEST_NAME",
    "SplitCounts",
    "SyntheticReIDSummary",
    "make_synthetic_reid",
    "summarize_reid_folder",
]

# Bump whenever the rendered pixels or the sampling plan change: a manifest written by another
# generator version no longer matches, so cached datasets are regenerated (with overwrite=True).
# tests/data/test_synthetic.py pins the bytes of a few images to catch unintended changes.
GENERATOR_VERSION = 2
MANIFEST_NAME = "synthetic_manifest.json"
_FORMAT = "sureid-synthetic-reid"
SPLIT_DIRS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
_SPLIT_CODE = {"train": 1, "query": 2, "gallery": 3}  # in each image's generator seed


@dataclass(frozen=True)
class SplitCounts:
    """Identities, images and cameras found in one split folder."""

    num_ids: int
    num_images: int
    num_cameras: int


@dataclass(frozen=True)
class SyntheticReIDSummary:
    """What :func:`make_synthetic_reid` wrote (or found): counts per split and the config."""

    root: Path
    train: SplitCounts
    query: SplitCounts
    gallery: SplitCounts
    config: SyntheticConfig
    reused: bool
    seconds: float

    @property
    def num_images(self) -> int:
        return self.train.num_images + self.query.num_images + self.gallery.num_images


def make_synthetic_reid(
    root: str | os.PathLike[str],
    *,
    preset: str | SyntheticConfig = "quick",
    overwrite: bool = False,
    progress: bool = True,
    **overrides: Any,
) -> SyntheticReIDSummary:
    """Write (or reuse) a synthetic occluded-ReID dataset in the Occluded-DukeMTMC layout.

    ``root/bounding_box_train``, ``root/query`` and ``root/bounding_box_test`` receive JPEGs
    named ``PPPP_cC_fNNNNNNN.jpg`` (pid from 1, camera from 1, random frame number), plus
    ``root/synthetic_manifest.json``.

    Args:
        root: output folder; created atomically (rendered into a hidden temporary sibling
            ``.{name}.tmp-*``, then renamed), so it is complete or absent. A sibling left by a
            killed run is removed by the next call once its process is gone.
        preset: ``"smoke"``, ``"quick"`` or ``"paper-like"`` (see ``SYNTHETIC_PRESETS``), or
            a :class:`SyntheticConfig`.
        overwrite: replace an existing synthetic dataset whose manifest does not match.
        progress: show a progress line on stderr.
        **overrides: fields of :class:`SyntheticConfig` that replace the preset's (``seed``,
            ``num_train_ids``, ``img_size``, ...); ``None`` keeps the preset's value.

    Returns:
        SyntheticReIDSummary with per-split counts and ``reused=True`` when a matching
        dataset was already there.

    Raises:
        TypeError, ValueError: a bad argument or setting (named in the message), before
            anything is written.
        FileExistsError: ``root`` holds something else (a different synthetic config without
            ``overwrite=True``, or any non-empty folder without our manifest, which is never
            deleted).

    Example:
        >>> summary = make_synthetic_reid("data/synth", preset="smoke", seed=1)  # doctest: +SKIP
        >>> summary.query.num_images  # doctest: +SKIP
        32
    """
    t0 = time.perf_counter()
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a str or path, got {type(root).__name__} {root!r}")
    for name, flag in (("overwrite", overwrite), ("progress", progress)):
        check_bool(name, flag)
    cfg = resolve_config(preset, overrides)
    root = Path(root)

    def summary(reused: bool) -> SyntheticReIDSummary:
        c = summarize_reid_folder(root)
        return SyntheticReIDSummary(root=root, train=c["train"], query=c["query"],
                                    gallery=c["gallery"], config=cfg, reused=reused,
                                    seconds=time.perf_counter() - t0)

    existing = root.exists() and (not root.is_dir() or any(root.iterdir()))
    if existing:
        manifest = _read_manifest(root)
        if _matches(manifest, cfg):
            return summary(True)
        if manifest is None or manifest.get("format") != _FORMAT:
            raise FileExistsError(f"root {str(root)!r} exists and is not a sureid synthetic "
                                  f"dataset (no {MANIFEST_NAME}); refusing to touch it, "
                                  f"pick another path")
        if not overwrite:
            raise FileExistsError(f"root {str(root)!r} holds a synthetic dataset with a different "
                                  f"config or generator version; pass overwrite=True to replace it")

    # a hidden sibling, renamed into place when complete; one left by a killed run (SIGTERM,
    # SIGKILL: no cleanup runs) is removed here when its process is gone
    tmp = temp_sibling(root)
    try:
        _generate(tmp, cfg, progress)
        _install(tmp, root, cfg)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return summary(False)


def summarize_reid_folder(root: str | os.PathLike[str], layout: str = "auto"
                          ) -> dict[str, SplitCounts]:
    """Count identities, images and cameras per split of any folder the readers accept.

    The folder is read by the reader :func:`sureid.data.build_dataset` picks for ``layout``
    (``"auto"``: :func:`sureid.data.detect_layout`), so the counts are what training and
    evaluation will see: junk images (pid -1) are left out, gallery distractors (pid 0)
    count as one identity, a split a layout lacks counts zero, and a layout without
    cameras counts one camera per image (see :mod:`sureid.data.folder`).

    Returns:
        ``{"train": SplitCounts, "query": SplitCounts, "gallery": SplitCounts}``.

    Raises:
        FileNotFoundError: no layout fits ``root``, or a folder of ``layout`` is missing.
        ValueError: a name or file the reader refuses (named), an unknown ``layout``.
    """
    from ..datasets import build_dataset  # the readers; imported on use, as the folder one

    counts = build_dataset(layout, root).counts()
    return {split: SplitCounts(num_ids=ids, num_images=images, num_cameras=cams)
            for split, (images, ids, cams) in counts.items()}


def _read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        with open(root / MANIFEST_NAME, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _matches(manifest: dict[str, Any] | None, cfg: SyntheticConfig) -> bool:
    return (
        manifest is not None
        and manifest.get("format") == "sureid-synthetic-reid"
        and manifest.get("generator_version") == GENERATOR_VERSION
        and manifest.get("config") == cfg.to_json()
    )


def _generate(out: Path, cfg: SyntheticConfig, progress: bool) -> None:
    seed = cfg.seed
    plan = build_plan(cfg)
    styles = {c: camera_style(seed, c) for c in range(1, cfg.num_cameras + 1)}
    occlusion = {"train": cfg.train_occlusion, "query": cfg.query_occlusion,
                 "gallery": cfg.gallery_occlusion}
    idents: dict[int, dict[str, Any]] = {}
    for sub in SPLIT_DIRS.values():
        (out / sub).mkdir()
    used: dict[str, set[str]] = {s: set() for s in SPLIT_DIRS}
    occ_cov: dict[str, list[float]] = {s: [] for s in SPLIT_DIRS}
    for split, pid, cam, idx, occluded in Progress(plan, desc="synthetic reid images",
                                                   enabled=progress):
        if pid not in idents:
            idents[pid] = identity(seed, pid, cfg.num_ids, cfg.sibling_rate)
        rng = np.random.default_rng([seed, _SPLIT_CODE[split], pid, cam, idx])
        frame = int(rng.integers(0, 10**7))
        name = camera_style_name(pid, cam, frame)
        while name in used[split]:  # astronomically rare; deterministic given the plan
            frame = (frame + 1) % 10**7
            name = camera_style_name(pid, cam, frame)
        used[split].add(name)
        cov_range = occlusion[split] if occluded else None
        img, cov = render_image(rng, idents[pid], styles[cam], cfg.img_size, cov_range, seed)
        if occluded:
            occ_cov[split].append(cov)
        img.save(out / SPLIT_DIRS[split] / name, format="JPEG", quality=92)
    counts = summarize_reid_folder(out)
    manifest = {
        "format": _FORMAT,
        "generator_version": GENERATOR_VERSION,
        "sureid_version": _sureid_version(),
        "config": cfg.to_json(),
        "counts": {k: asdict(v) for k, v in counts.items()},
        # fraction of the person's pixels hidden, over the occluded images of each split
        "occlusion": {
            k: dict(images=len(v), mean_coverage=round(float(np.mean(v)), 4) if v else 0.0,
                    min_coverage=round(min(v), 4) if v else 0.0,
                    max_coverage=round(max(v), 4) if v else 0.0)
            for k, v in occ_cov.items()
        },
    }
    # the manifest is written last: a folder without it is never mistaken for a finished dataset
    with open(out / MANIFEST_NAME, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)


def _install(tmp: Path, root: Path, cfg: SyntheticConfig) -> None:
    # an existing root is an outdated synthetic dataset (overwrite=True was checked by the
    # caller) or an empty folder
    try:
        replace_dir(tmp, root)
    except OSError:
        # another process finished the same dataset first: keep theirs if it matches
        if not _matches(_read_manifest(root), cfg):
            raise


def _sureid_version() -> str:
    from ...version import __version__

    return __version__
