"""The image plan: which identity is seen by which camera how often, and which images are
occluded. A function of the config alone, independent of the order images are rendered in."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .config import SyntheticConfig

__all__ = ["PlannedImage", "build_plan"]


class PlannedImage(NamedTuple):
    """One image to render."""

    split: str  # "train", "query" or "gallery"
    pid: int
    cam: int  # from 1
    index: int  # of this identity's images in this camera and split
    occluded: bool


def build_plan(cfg: SyntheticConfig) -> list[PlannedImage]:
    """Every image of the dataset, train first, then query and gallery, then distractors.

    Person ids ``1..N`` are permuted, then split into train, test and distractor ids. Each
    identity's cameras and image counts come from its own generator ``(seed, 505, pid)``.
    A test identity's queries all come from one of its cameras, which then has no gallery
    image of it.
    """
    seed = cfg.seed
    ntr, nte = cfg.num_train_ids, cfg.num_test_ids
    rng = np.random.default_rng([seed, 404])
    pids = rng.permutation(np.arange(1, cfg.num_ids + 1))
    train, test, distract = pids[:ntr], pids[ntr:ntr + nte], pids[ntr + nte:]
    lo_c, hi_c = cfg.cameras_per_id
    lo_i, hi_i = cfg.images_per_camera
    plan: list[PlannedImage] = []

    for pid in sorted(int(p) for p in train):
        prng = np.random.default_rng([seed, 505, pid])
        for cam in _cameras(prng, cfg.num_cameras, lo_c, hi_c):
            for i in range(int(prng.integers(lo_i, hi_i + 1))):
                occ = bool(prng.random() < cfg.train_occlusion_rate)
                plan.append(PlannedImage("train", pid, cam, i, occ))
    for pid in sorted(int(p) for p in test):
        prng = np.random.default_rng([seed, 505, pid])
        cams = _cameras(prng, cfg.num_cameras, lo_c, hi_c)
        qcam = cams[int(prng.integers(len(cams)))]
        for i in range(cfg.queries_per_id):
            plan.append(PlannedImage("query", pid, qcam, i, True))
        for cam in cams:
            if cam == qcam:
                continue
            for i in range(int(prng.integers(lo_i, hi_i + 1))):
                occ = bool(prng.random() < cfg.gallery_occlusion_rate)
                plan.append(PlannedImage("gallery", pid, cam, i, occ))
    for pid in sorted(int(p) for p in distract):
        prng = np.random.default_rng([seed, 505, pid])
        for cam in _cameras(prng, cfg.num_cameras, 1, max(1, hi_c - 1)):
            for i in range(int(prng.integers(lo_i, hi_i + 1))):
                occ = bool(prng.random() < cfg.gallery_occlusion_rate)
                plan.append(PlannedImage("gallery", pid, cam, i, occ))
    return plan


def _cameras(prng: np.random.Generator, num_cameras: int, lo: int, hi: int) -> list[int]:
    """``lo..hi`` distinct cameras (numbered from 1), sorted."""
    k = int(prng.integers(lo, hi + 1))
    return sorted(int(c) + 1 for c in prng.choice(num_cameras, size=k, replace=False))
