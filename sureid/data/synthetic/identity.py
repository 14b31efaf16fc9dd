"""Identity sampling: the appearance that makes a person (clothes, body, hair, accessories).

An identity is a plain dict of attributes drawn from a generator seeded by ``(seed, pid)``,
so it does not depend on the order identities are rendered in. A fraction ``sibling_rate`` of
the identities copy another identity's look and resample one or two attribute groups: these
are the hard negatives. The pose (view, walking phase, ...) is drawn per image.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .color import choice, pick

UPPER_COLORS = np.array(
    [
        (232, 232, 228), (30, 30, 34), (128, 128, 132), (32, 42, 92), (45, 95, 190),
        (125, 172, 222), (182, 32, 38), (112, 30, 44), (42, 122, 62), (112, 112, 52),
        (222, 192, 52), (222, 122, 42), (222, 142, 172), (112, 62, 142), (202, 182, 142),
        (112, 76, 46), (32, 132, 132),
    ],
    dtype=np.float64,
)
LOWER_COLORS = np.array(
    [
        (28, 28, 30), (70, 70, 74), (50, 68, 118), (110, 140, 182), (172, 152, 112),
        (96, 70, 46), (226, 224, 218), (132, 132, 136), (92, 96, 52), (150, 40, 44),
    ],
    dtype=np.float64,
)
SKIN_COLORS = np.array(
    [(240, 206, 182), (226, 182, 146), (200, 150, 112), (162, 112, 78), (122, 82, 56),
     (90, 62, 42)],
    dtype=np.float64,
)
HAIR_COLORS = np.array(
    [(24, 20, 20), (62, 42, 30), (112, 76, 46), (202, 172, 104), (152, 152, 152), (140, 62, 32)],
    dtype=np.float64,
)
SHOE_COLORS = np.array(
    [(22, 22, 22), (235, 235, 235), (102, 66, 40), (120, 120, 125), (40, 70, 150), (170, 36, 36)],
    dtype=np.float64,
)
# bags, hats and the object occluders
OBJECT_COLORS = np.array(
    [
        (180, 30, 30), (30, 60, 140), (220, 220, 220), (40, 40, 44), (150, 150, 155),
        (200, 170, 40), (40, 110, 60), (120, 90, 60),
    ],
    dtype=np.float64,
)


def base_identity(rng: np.random.Generator) -> dict[str, Any]:
    """A fresh appearance: body, upper clothes, lower clothes, accessories (in this order)."""
    ident: dict[str, Any] = {}
    for sample in ATTRIBUTE_GROUPS:
        sample(rng, ident)
    return ident


def _sample_body(rng: np.random.Generator, ident: dict[str, Any]) -> None:
    ident["height"] = float(rng.uniform(0.88, 1.04))
    ident["width"] = float(rng.uniform(0.85, 1.18))
    ident["head"] = float(rng.uniform(0.9, 1.12))
    ident["skin"] = pick(rng, SKIN_COLORS, 6)
    ident["hair"] = pick(rng, HAIR_COLORS, 8)
    ident["hair_style"] = choice(
        rng, ["short", "long", "bald", "ponytail"], [0.5, 0.25, 0.1, 0.15]
    )


def _sample_upper(rng: np.random.Generator, ident: dict[str, Any]) -> None:
    ident["upper"] = pick(rng, UPPER_COLORS, 12)
    second = pick(rng, UPPER_COLORS, 12)
    if np.abs(second - ident["upper"]).sum() < 120:  # keep patterns visible
        second = 255 - ident["upper"] * 0.8
    ident["upper2"] = second
    ident["pattern"] = choice(
        rng, ["solid", "hstripes", "vstripes", "checks", "logo"], [0.38, 0.2, 0.1, 0.12, 0.2]
    )
    ident["stripe"] = float(rng.uniform(0.035, 0.07))
    ident["logo_shape"] = choice(
        rng, ["circle", "square", "triangle", "bar"], [0.3, 0.3, 0.2, 0.2]
    )
    ident["sleeves"] = choice(rng, ["long", "short"], [0.55, 0.45])


def _sample_lower(rng: np.random.Generator, ident: dict[str, Any]) -> None:
    ident["lower"] = pick(rng, LOWER_COLORS, 10)
    ident["lower_type"] = choice(rng, ["trousers", "shorts", "skirt"], [0.62, 0.2, 0.18])
    ident["shoes"] = pick(rng, SHOE_COLORS, 8)


def _sample_accessories(rng: np.random.Generator, ident: dict[str, Any]) -> None:
    ident["backpack"] = pick(rng, OBJECT_COLORS, 12) if rng.random() < 0.3 else None
    ident["bag"] = pick(rng, OBJECT_COLORS, 12) if rng.random() < 0.2 else None
    ident["bag_side"] = int(rng.choice([-1, 1]))
    ident["hat"] = pick(rng, OBJECT_COLORS, 12) if rng.random() < 0.15 else None


# the groups a sibling identity resamples (one or two of them)
ATTRIBUTE_GROUPS = (_sample_body, _sample_upper, _sample_lower, _sample_accessories)


def identity(seed: int, pid: int, num_pids: int, sibling_rate: float) -> dict[str, Any]:
    """Appearance of ``pid``; some ids copy another id's look and change one or two parts."""
    rng = np.random.default_rng([seed, 101, pid])
    ident = base_identity(rng)
    if rng.random() < sibling_rate and num_pids > 1:
        base_pid = int(rng.integers(1, num_pids + 1))
        if base_pid != pid:  # hard negative: shares most attributes with base_pid's base look
            ident = base_identity(np.random.default_rng([seed, 101, base_pid]))
            for k in rng.choice(len(ATTRIBUTE_GROUPS), size=int(rng.integers(1, 3)),
                                replace=False):
                ATTRIBUTE_GROUPS[int(k)](rng, ident)
    return ident


def random_pose(rng: np.random.Generator) -> dict[str, Any]:
    """View, walking phase and stride, lean and arm swing of one image."""
    return dict(
        view=choice(rng, ["front", "back", "left", "right"], [0.3, 0.3, 0.2, 0.2]),
        phase=float(rng.uniform(0, 2 * math.pi)),
        stride=float(rng.uniform(0.1, 1.0)),
        lean=float(rng.normal(0, 0.03)),
        arm=float(rng.uniform(0.2, 1.0)),
    )
