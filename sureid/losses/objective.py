"""The SUReID training objective (Eq. 14).

``L = α·(L_KD + λ_ratio·L_ratio) + β·(L_cls + L_tri + w_aux·(L_cls^aux + L_tri^aux))``

Each term has one switch: its loss module, or ``None`` to leave it out (``"default"``, the
constructor's default, builds the paper's module). That is how the rows of Table IV differ:

============  ===========================================================
row           arguments
============  ===========================================================
vanilla       ``kd=None, ratio=None, aux_weight=0`` (cls + tri only)
+HTS          ``kd=None`` (adds ``L_ratio`` and the reweight head's terms)
+HTS +NPKD    all defaults (the paper's full objective)
============  ===========================================================

The ``aux`` terms supervise the class-token reweight head (Eq. 8, see ``docs/objectives.md``);
``aux_weight=0`` leaves them out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from .._amp import fp32, no_autocast
from .._checks import check_finite
from .npkd import NPKDLoss
from .ratio import RatioLoss
from .reid import (
    CrossEntropyLabelSmooth,
    TripletLoss,
    _check_2d,
    _check_labels,
    _check_nonempty,
    _check_same_batch,
    _check_width,
)

__all__ = ["SUReIDLoss", "SUReIDLossOutput"]


@dataclass
class SUReIDLossOutput:
    """Result of :class:`SUReIDLoss`.

    Attributes:
        total: scalar to call ``backward()`` on.
        terms: the unweighted terms that were computed, detached, keyed ``"cls"``, ``"tri"``,
            ``"kd"`` (with ``"kd_kl"`` and ``"kd_feat"``), ``"ratio"``, ``"aux_cls"`` and
            ``"aux_tri"``; and, whenever ``keep_masks`` were given, ``"keep1"``, ``"keep2"``,
            ... : the mean of each stage's hard keep mask over the batch and the patch tokens,
            the keep fraction training actually reached (a diagnostic, not a loss; compare it
            with the stage's target ratio, which inference enforces with top-k).
    """

    total: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)

    def to_floats(self) -> dict[str, float]:
        """``{"total": ..., **terms}`` as Python floats (one host sync), for logging."""
        return {"total": float(self.total.detach()), **{k: float(v) for k, v in self.terms.items()}}


def _check_weight(name: str, value: object) -> float:
    return check_finite(name, value, minimum=0.0)


class SUReIDLoss(nn.Module):
    """SUReID objective, Eq. 14: ``α(L_KD + λ_ratio L_ratio) + β(L_cls + L_tri)``.

    Takes tensors only; the student, the teacher and the heads run outside.

    Args:
        alpha: ``α`` (1, or 2 on Occluded-/Partial-REID).
        beta: ``β`` (1).
        ratio_weight: ``λ_ratio`` (2).
        kd: the distillation loss ``L_KD(f^s, g^s, f^t, g^t, labels)``; ``"default"``:
            ``NPKDLoss()`` (Eqs. 10-13); ``None``: no distillation (no teacher needed).
        id_loss: ``L_cls(logits, labels)``; ``"default"``:
            ``CrossEntropyLabelSmooth(epsilon=0.1)``; ``None``: off.
        triplet: ``L_tri(features, labels)``; ``"default"``: ``TripletLoss(margin=0.3)``;
            ``None``: off.
        ratio: ``L_ratio`` (Eq. 9); ``"default"``: ``RatioLoss()``, whose targets come with
            every call (``target_ratios``); pass ``RatioLoss(model.keep_ratios)`` to fix them
            once; ``None``: off (dense models). Called as ``ratio(keep_masks)`` or
            ``ratio(keep_masks, target_ratios)``.
        aux_weight: weight of the reweight head's ID + triplet terms inside the ``β`` group;
            0 leaves them out.

    What the objective holds is what it computes: ``crit.use_kd`` reads ``crit.kd is not
    None`` (likewise ``use_cls``, ``use_tri``, ``use_ratio``; ``use_reweight`` is
    ``aux_weight > 0``); :attr:`needs_teacher` tells a training loop whether to run the
    teacher.

    Learnable losses (``NPKDLoss(align="linear")``) are submodules: give
    ``criterion.parameters()`` to the optimiser too.

    Raises:
        ValueError: negative, NaN or infinite weights; every term switched off; a string
            other than ``"default"`` for a term.
        TypeError: a non-number weight, or a term that is neither callable, ``None`` nor
            ``"default"``.

    Example:
        >>> crit = SUReIDLoss(kd=None, ratio=None)
        >>> out = crit(torch.randn(8, 16), torch.randn(8, 4), torch.arange(4).repeat(2))
        >>> sorted(out.terms)
        ['cls', 'tri']
    """

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 1.0,
        ratio_weight: float = 2.0,
        *,
        kd: nn.Module | None | Literal["default"] = "default",
        id_loss: nn.Module | None | Literal["default"] = "default",
        triplet: nn.Module | None | Literal["default"] = "default",
        ratio: nn.Module | None | Literal["default"] = "default",
        aux_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.alpha = _check_weight("alpha", alpha)
        self.beta = _check_weight("beta", beta)
        self.ratio_weight = _check_weight("ratio_weight", ratio_weight)
        self.aux_weight = _check_weight("aux_weight", aux_weight)
        self.id_loss = _term("id_loss", id_loss, lambda: CrossEntropyLabelSmooth(epsilon=0.1))
        self.triplet = _term("triplet", triplet, lambda: TripletLoss(margin=0.3))
        self.kd = _term("kd", kd, NPKDLoss)
        # Eq. 9 lives in sureid.losses.ratio only; targets may come at call time
        self.ratio = _term("ratio", ratio, RatioLoss)
        if self.id_loss is None and self.triplet is None and self.kd is None and self.ratio is None:
            raise ValueError("every term is switched off (id_loss, triplet, kd and ratio are all "
                             "None)")

    @property
    def use_cls(self) -> bool:
        return self.id_loss is not None

    @property
    def use_tri(self) -> bool:
        return self.triplet is not None

    @property
    def use_kd(self) -> bool:
        return self.kd is not None

    @property
    def use_ratio(self) -> bool:
        return self.ratio is not None

    @property
    def use_reweight(self) -> bool:
        return self.aux_weight > 0

    @property
    def needs_teacher(self) -> bool:
        """Whether a call needs ``teacher_feat``/``teacher_logits`` (the KD term is on)."""
        return self.kd is not None

    def forward(
        self,
        student_feat: torch.Tensor,
        student_logits: torch.Tensor,
        labels: torch.Tensor,
        *,
        teacher_feat: torch.Tensor | None = None,
        teacher_logits: torch.Tensor | None = None,
        keep_masks: Sequence[torch.Tensor] | None = None,
        target_ratios: Sequence[float] | None = None,
        aux_feat: torch.Tensor | None = None,
        aux_logits: torch.Tensor | None = None,
    ) -> SUReIDLossOutput:
        """Compute Eq. 14.

        Args:
            student_feat: ``(B, C_s)`` pre-BN feature ``f^s`` (triplet, NPKD feature term).
            student_logits: ``(B, K)`` post-BN logits ``g^s`` (ID loss, NPKD KL).
            labels: ``(B,)`` identities.
            teacher_feat, teacher_logits: ``(B, C_t)``, ``(B, K)``; required when ``use_kd``.
            keep_masks: per-stage ``(B, N)`` keep masks (``HTSOutput.keep_masks``); required
                when ``use_ratio``.
            target_ratios: per-stage keep ratios ``p^j`` (e.g. ``HTSViT.keep_ratios``),
                forwarded to the ratio loss when given.
            aux_feat, aux_logits: the reweight head's ``(B, C_s)`` feature and ``(B, K)`` logits;
                used when ``use_reweight`` (either may be ``None`` to skip its term).

        Raises:
            ValueError: missing inputs for an enabled term, an empty batch, mismatched batch
                sizes or shapes.
        """
        feat = _check_nonempty("student_feat", _check_2d("student_feat", student_feat))
        logits = _check_2d("student_logits", student_logits)
        _check_same_batch(student_feat=feat, student_logits=logits)
        labels = _check_labels(labels, feat.shape[0])
        # Every term in float32 with autocast off: a mixed-precision forward hands over f16/bf16
        # tensors, and distances, sums over channels and log-softmaxes must not overflow.
        with no_autocast(feat.device.type):
            return self._forward(
                fp32(feat), fp32(logits), labels,
                teacher_feat=None if teacher_feat is None else fp32(teacher_feat),
                teacher_logits=None if teacher_logits is None else fp32(teacher_logits),
                keep_masks=keep_masks, target_ratios=target_ratios,
                aux_feat=None if aux_feat is None else fp32(aux_feat),
                aux_logits=None if aux_logits is None else fp32(aux_logits),
            )

    def _forward(
        self, feat, logits, labels, *, teacher_feat, teacher_logits, keep_masks, target_ratios,
        aux_feat, aux_logits,
    ) -> SUReIDLossOutput:

        terms: dict[str, torch.Tensor] = {}
        zero = feat.new_zeros(())
        group_a, group_b = zero, zero

        if self.use_cls:
            terms["cls"] = self.id_loss(logits, labels)
            group_b = group_b + terms["cls"]
        if self.use_tri:
            terms["tri"] = self.triplet(feat, labels)
            group_b = group_b + terms["tri"]
        if self.use_reweight and (aux_feat is not None or aux_logits is not None):
            aux = zero
            if aux_logits is not None and self.use_cls:
                aux_logits = _check_2d("aux_logits", aux_logits)
                _check_same_batch(student_logits=logits, aux_logits=aux_logits)
                _check_width("aux_logits", aux_logits, logits.shape[1], "classes (as logits)")
                terms["aux_cls"] = self.id_loss(aux_logits, labels)
                aux = aux + terms["aux_cls"]
            if aux_feat is not None and self.use_tri:
                aux_feat = _check_2d("aux_feat", aux_feat)
                _check_same_batch(student_feat=feat, aux_feat=aux_feat)
                _check_width("aux_feat", aux_feat, feat.shape[1], "channels (as student_feat)")
                terms["aux_tri"] = self.triplet(aux_feat, labels)
                aux = aux + terms["aux_tri"]
            group_b = group_b + self.aux_weight * aux

        if self.use_kd:
            if teacher_feat is None or teacher_logits is None:
                raise ValueError(
                    "the kd term needs teacher_feat and teacher_logits, got "
                    f"teacher_feat={_describe(teacher_feat)}, "
                    f"teacher_logits={_describe(teacher_logits)}; pass them or build the "
                    "objective with kd=None"
                )
            if hasattr(self.kd, "terms"):
                kl, kd_feat = self.kd.terms(feat, logits, teacher_feat, teacher_logits)
                # the same weighting as NPKDLoss.forward: kl_weight·KL + feature_weight·feature
                kd = self.kd.kl_weight * kl + getattr(self.kd, "feature_weight", 1.0) * kd_feat
                terms["kd_kl"], terms["kd_feat"] = kl, kd_feat
            else:
                kd = self.kd(feat, logits, teacher_feat, teacher_logits)
            terms["kd"] = kd
            group_a = group_a + kd
        if self.use_ratio:
            if keep_masks is None or len(keep_masks) == 0:
                raise ValueError(
                    "the ratio term needs keep_masks (HTSOutput.keep_masks, one (B, N) mask per "
                    f"stage), got {_describe(keep_masks)}; pass them or build the objective "
                    "with ratio=None"
                )
            masks = list(keep_masks)
            for i, m in enumerate(masks):
                if not isinstance(m, torch.Tensor) or m.dim() != 2 or m.shape[0] != feat.shape[0]:
                    raise ValueError(
                        f"keep_masks[{i}] must be (B={feat.shape[0]}, N), got {_describe(m)}"
                    )
            if target_ratios is None:
                terms["ratio"] = self.ratio(masks)
            else:
                terms["ratio"] = self.ratio(masks, target_ratios)
            group_a = group_a + self.ratio_weight * terms["ratio"]
        if keep_masks is not None:
            # diagnostics, not losses: the train-time keep fraction of each stage, to set
            # beside its target (inference enforces the target with top-k)
            for j, m in enumerate(keep_masks):
                if isinstance(m, torch.Tensor) and m.dim() == 2:
                    terms[f"keep{j + 1}"] = m.detach().float().mean()

        total = self.alpha * group_a + self.beta * group_b
        return SUReIDLossOutput(total=total, terms={k: v.detach() for k, v in terms.items()})

    def extra_repr(self) -> str:
        flags = ", ".join(
            f"{n}={getattr(self, n)}"
            for n in ("use_cls", "use_tri", "use_kd", "use_ratio", "use_reweight")
        )
        return (
            f"alpha={self.alpha}, beta={self.beta}, ratio_weight={self.ratio_weight}, "
            f"aux_weight={self.aux_weight}, {flags}"
        )


def _term(name: str, value: object, default: Callable[[], nn.Module]) -> nn.Module | None:
    """One term's switch: ``"default"`` builds the paper's module, ``None`` leaves the term out,
    a callable is used as given."""
    if isinstance(value, str):
        if value != "default":
            raise ValueError(f"{name} must be a loss module, None or 'default', got {value!r}")
        return default()
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a loss module, None or 'default', got "
                        f"{type(value).__name__}")
    return value


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"tensor of shape {tuple(x.shape)}"
    return repr(x) if x is None else type(x).__name__

