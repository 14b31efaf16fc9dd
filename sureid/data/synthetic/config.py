"""The generator's settings: one frozen, validated dataclass and the named presets."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..._checks import check_int, check_real, is_int

__all__ = ["SYNTHETIC_PRESETS", "SyntheticConfig", "resolve_config"]


@dataclass(frozen=True)
class SyntheticConfig:
    """Everything that decides a synthetic dataset's files (with the generator version).

    The defaults are the ``"quick"`` preset with seed 0. Fields are checked, and ranges given
    as one int become ``(n, n)``, when the config is made (also by ``dataclasses.replace``).

    Args:
        seed: everything is a function of the seed; rendering order does not matter.
        num_train_ids / num_test_ids: disjoint identity sets for training and for
            query+gallery (>= 1; with the distractors at most 9,999 in all: 4-digit pids).
        num_distractor_ids: extra identities that appear only in the gallery.
        num_cameras: 2..9; each camera has its own background style and colour cast.
        cameras_per_id: (min, max) cameras an identity appears in (>= 2, <= num_cameras).
        images_per_camera: (min, max) images of one identity in one camera.
        queries_per_id: query images per test identity, all from one camera that is then left
            out of that identity's gallery images.
        img_size: (height, width) of the written images.
        train_occlusion_rate / gallery_occlusion_rate: fraction of occluded images (queries
            are always occluded).
        sibling_rate: fraction of identities that copy another identity's look and change one
            or two attribute groups (hard negatives).
        query_occlusion / train_occlusion / gallery_occlusion: (min, max) fraction of the
            person's pixels an occluder covers, in [0, 0.9].

    Raises:
        TypeError, ValueError: a bad field, named in the message.

    Example:
        >>> cfg = SyntheticConfig(num_train_ids=20, cameras_per_id=3)
        >>> cfg.cameras_per_id, cfg.img_size
        ((3, 3), (128, 64))
    """

    # the order of the manifest's "config" (kept from generator version 2)
    seed: int = 0
    num_train_ids: int = 128
    num_test_ids: int = 100
    num_distractor_ids: int = 100
    num_cameras: int = 6
    cameras_per_id: tuple[int, int] = (2, 4)
    images_per_camera: tuple[int, int] = (2, 5)
    queries_per_id: int = 2
    img_size: tuple[int, int] = (128, 64)
    train_occlusion_rate: float = 0.3
    gallery_occlusion_rate: float = 0.15
    sibling_rate: float = 0.35
    query_occlusion: tuple[float, float] = (0.2, 0.5)
    train_occlusion: tuple[float, float] = (0.1, 0.4)
    gallery_occlusion: tuple[float, float] = (0.1, 0.35)

    def __post_init__(self) -> None:
        checked: dict[str, Any] = {}
        checked["seed"] = _check_int("seed", self.seed, 0)
        checked["num_train_ids"] = _check_int("num_train_ids", self.num_train_ids, 1)
        checked["num_test_ids"] = _check_int("num_test_ids", self.num_test_ids, 1)
        checked["num_distractor_ids"] = _check_int(
            "num_distractor_ids", self.num_distractor_ids, 0
        )
        total = checked["num_train_ids"] + checked["num_test_ids"] + checked["num_distractor_ids"]
        if total > 9999:
            raise ValueError(f"num_train_ids + num_test_ids + num_distractor_ids must be <= 9999 "
                             f"(4-digit pids), got {total}")
        # one digit in `_cC_` keeps the names readable by the usual `_c(\d)` regexes
        checked["num_cameras"] = _check_int("num_cameras", self.num_cameras, 2, 9)
        checked["cameras_per_id"] = _check_range("cameras_per_id", self.cameras_per_id, 2,
                                                 checked["num_cameras"])
        checked["images_per_camera"] = _check_range("images_per_camera",
                                                    self.images_per_camera, 1, 1000)
        checked["queries_per_id"] = _check_int("queries_per_id", self.queries_per_id, 1, 100)
        size = self.img_size
        if not isinstance(size, (tuple, list)) or len(size) != 2:
            raise TypeError(f"img_size must be a (height, width) pair, got {size!r}")
        checked["img_size"] = (_check_int("img_size[0]", size[0], 32, 1024),
                               _check_int("img_size[1]", size[1], 16, 1024))
        for name in ("train_occlusion_rate", "gallery_occlusion_rate", "sibling_rate"):
            checked[name] = _check_float(name, getattr(self, name), 0.0, 1.0)
        for name in ("query_occlusion", "train_occlusion", "gallery_occlusion"):
            checked[name] = _check_frac_range(name, getattr(self, name))
        for name, value in checked.items():  # plain ints, floats and tuples from here on
            object.__setattr__(self, name, value)

    @property
    def num_ids(self) -> int:
        """Train, test and distractor identities together."""
        return self.num_train_ids + self.num_test_ids + self.num_distractor_ids

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON values (pairs as lists), as the manifest stores them."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    return check_int(name, value, low=low, high=high)


def _check_range(name: str, value: Any, low: int, high: int) -> tuple[int, int]:
    if is_int(value):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be an int or a (min, max) pair, got {value!r}")
    a = _check_int(f"{name}[0]", value[0], low, high)
    b = _check_int(f"{name}[1]", value[1], low, high)
    if a > b:
        raise ValueError(f"{name} must have min <= max, got {tuple(value)!r}")
    return (a, b)


def _check_float(name: str, value: Any, low: float, high: float) -> float:
    return check_real(name, value, low=low, high=high)


def _check_frac_range(name: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a (min, max) pair of fractions, got {value!r}")
    a = _check_float(f"{name}[0]", value[0], 0.0, 0.9)
    b = _check_float(f"{name}[1]", value[1], 0.0, 0.9)
    if a > b:
        raise ValueError(f"{name} must have min <= max, got {tuple(value)!r}")
    return (a, b)


# Sizes only; every preset shares the rendering and occlusion settings (the defaults).
SYNTHETIC_PRESETS: Mapping[str, SyntheticConfig] = MappingProxyType({
    "smoke": SyntheticConfig(
        num_train_ids=24,
        num_test_ids=16,
        num_distractor_ids=8,
        num_cameras=4,
        cameras_per_id=(2, 3),
        images_per_camera=(2, 3),
        queries_per_id=2,
        img_size=(128, 64),
    ),
    "quick": SyntheticConfig(),  # the defaults
    "paper-like": SyntheticConfig(
        num_train_ids=702,
        num_test_ids=519,
        num_distractor_ids=591,
        num_cameras=8,
        cameras_per_id=(2, 5),
        images_per_camera=(2, 6),
        queries_per_id=4,
        img_size=(256, 128),
    ),
})

_FIELDS = frozenset(f.name for f in dataclasses.fields(SyntheticConfig))


def resolve_config(preset: str | SyntheticConfig, overrides: Mapping[str, Any]) -> SyntheticConfig:
    """``preset`` (a name in ``SYNTHETIC_PRESETS`` or a config) with ``overrides`` applied.

    Overrides that are ``None`` keep the preset's value.

    Raises:
        ValueError: unknown preset name, or a bad field value.
        TypeError: an override that is not a field, or a bad field type.
    """
    if isinstance(preset, SyntheticConfig):
        base = preset
    elif isinstance(preset, str) and preset in SYNTHETIC_PRESETS:
        base = SYNTHETIC_PRESETS[preset]
    else:
        raise ValueError(f"preset must be one of {sorted(SYNTHETIC_PRESETS)} or a "
                         f"SyntheticConfig, got {preset!r}")
    unknown = sorted(set(overrides) - _FIELDS)
    if unknown:
        raise TypeError(f"unknown synthetic dataset setting(s) {unknown}; the settings are "
                        f"the fields of SyntheticConfig: {sorted(_FIELDS)}")
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})
