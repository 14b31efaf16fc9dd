"""The dataset protocols of the paper's Tables I-III, each a set of overrides on the paper preset.

A :class:`Protocol` names the dataset the full SUReID model trains on, the dataset(s) it is
tested on, what it changes on ``PRESETS["paper"]`` (student, alpha/beta of Eq. 14, extra colour
jitter) and the numbers the paper reports for it. :meth:`Protocol.preset` derives the training
recipe from the paper preset with :func:`dataclasses.replace`, so Sec. IV-B is stated once.

Example:
    >>> p = PROTOCOLS["market_to_occluded_reid"]
    >>> p.train, p.test, p.preset().alpha
    ('market1501', ('occluded_reid',), 2.0)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

from .presets import PRESETS, Arch, Preset

__all__ = ["PROTOCOLS", "PaperResult", "Protocol"]

_DATASETS = ("market1501", "dukemtmc", "occluded_duke", "occluded_reid", "partial_reid")
_TEST_ONLY = ("occluded_reid", "partial_reid")


class PaperResult(NamedTuple):
    """What the paper reports for SUReID on one test set, in %; None: not reported."""

    test: str
    rank1: float
    mAP: float | None = None
    rank3: float | None = None


@dataclass(frozen=True)
class Protocol:
    """Train on ``train``, test on every dataset of ``test``, with the paper preset changed by
    ``student``/``alpha``/``beta`` and, with ``color_jitter``, jittered training images.

    Args:
        name: the key in :data:`PROTOCOLS`.
        table: the paper table reporting it ("I", "II" or "III").
        train: :func:`sureid.data.build_dataset` name of the training set.
        test: reader names of the test sets; a test set equal to ``train`` uses its query and
            gallery.
        student: timm name of the student backbone.
        alpha, beta: weights of Eq. 14 (identity / distillation terms of ``SUReIDLoss``).
        color_jitter: colour jitter on both training views
            (:data:`sureid.ablation.recipe.COLOR_JITTER`).
        paper: the paper's numbers, one :class:`PaperResult` per test set, in ``test`` order.
        not_in_paper: what this protocol sets that the paper does not state, with why (added
            to the paper preset's own list by :meth:`preset`).

    Raises:
        ValueError: an unknown dataset name, a test-only dataset as ``train``, a non-positive
            ``alpha``/``beta``, or ``paper`` not matching ``test``.
    """

    name: str
    table: str
    train: str
    test: tuple[str, ...]
    student: str
    alpha: float
    beta: float
    color_jitter: bool
    paper: tuple[PaperResult, ...]
    not_in_paper: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.train not in _DATASETS or self.train in _TEST_ONLY:
            raise ValueError(
                f"train must be one of {[d for d in _DATASETS if d not in _TEST_ONLY]}, "
                f"got {self.train!r}"
            )
        if not self.test or any(t not in _DATASETS for t in self.test):
            raise ValueError(f"test must be a non-empty tuple of {list(_DATASETS)}, "
                             f"got {self.test!r}")
        for name in ("alpha", "beta"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if tuple(r.test for r in self.paper) != self.test:
            raise ValueError(f"paper must hold one result per test set {self.test!r}, got "
                             f"{tuple(r.test for r in self.paper)!r}")

    def preset(self) -> Preset:
        """``PRESETS["paper"]`` with this protocol's student, alpha and beta (the teacher, the
        schedule and the augmentations stay the paper preset's)."""
        base = PRESETS["paper"]
        return replace(
            base, student=Arch(timm_name=self.student), alpha=self.alpha, beta=self.beta,
            not_in_paper=(*base.not_in_paper, *self.not_in_paper),
        )


_DEIT_S = "deit_small_distilled_patch16_224"  # "Deit-S ... pretrained on ImageNet-1K with
# distillation token" (Sec. IV-B), the paper preset's student
_VIT = "vit_base_patch16_224"  # "ViT ... pretrained on ImageNet-21K and finetuned on ImageNet-1K"
_JITTER_NOTE = (
    "color jitter strengths (p=0.5, brightness 0.15, contrast 0.15, saturation 0.1, hue 0.1, "
    "on both training views): the paper adopts 'extra color jitter' on Occluded-REID / "
    "Partial-REID without strengths; these are fast-reid's INPUT.CJ defaults"
)
_VIT_NOTE = (
    "student=vit_base_patch16_224: the paper names 'ViT pretrained on ImageNet-21K and "
    "finetuned on ImageNet-1K' without its size; timm's ViT-B/16 default weights are exactly "
    "that (augreg in21k -> in1k) and ViT-B is the teacher's size"
)
_CROSS_NOTE = (
    "teacher fine-tuned on Market-1501 (the training set): the paper's teacher is a ViT "
    "'pretrained on corresponding datasets' (SRFR); for a cross-domain test that can only be "
    "the training set"
)

_TABLE_II = {
    "occluded_reid": PaperResult("occluded_reid", rank1=86.8, mAP=80.7),
    "partial_reid": PaperResult("partial_reid", rank1=85.3, rank3=90.7),
}


def _cross_domain(name: str, test: tuple[str, ...]) -> Protocol:
    return Protocol(
        name, "II", "market1501", test, student=_VIT, alpha=2.0, beta=1.0, color_jitter=True,
        paper=tuple(_TABLE_II[t] for t in test), not_in_paper=(_VIT_NOTE, _JITTER_NOTE,
                                                               _CROSS_NOTE),
    )


PROTOCOLS: dict[str, Protocol] = {
    # Table I: Occluded-DukeMTMC, DeiT-S student, alpha = beta = 1 (also Table IV's full model)
    "occluded_duke": Protocol(
        "occluded_duke", "I", "occluded_duke", ("occluded_duke",), student=_DEIT_S, alpha=1.0,
        beta=1.0, color_jitter=False,
        paper=(PaperResult("occluded_duke", rank1=65.8, mAP=54.9),),
    ),
    # Table III: holistic, same settings as Table I
    "market1501": Protocol(
        "market1501", "III", "market1501", ("market1501",), student=_DEIT_S, alpha=1.0,
        beta=1.0, color_jitter=False, paper=(PaperResult("market1501", rank1=94.5, mAP=87.2),),
    ),
    "dukemtmc": Protocol(
        "dukemtmc", "III", "dukemtmc", ("dukemtmc",), student=_DEIT_S, alpha=1.0, beta=1.0,
        color_jitter=False, paper=(PaperResult("dukemtmc", rank1=89.1, mAP=79.7),),
    ),
    # Table II: train on Market-1501, test cross-domain; ViT student, alpha = 2, colour jitter
    "market_to_occluded_reid": _cross_domain("market_to_occluded_reid", ("occluded_reid",)),
    "market_to_partial_reid": _cross_domain("market_to_partial_reid", ("partial_reid",)),
    # both of Table II's test sets from one training run (the model is the same)
    "market_to_occluded_partial": _cross_domain(
        "market_to_occluded_partial", ("occluded_reid", "partial_reid")
    ),
}
