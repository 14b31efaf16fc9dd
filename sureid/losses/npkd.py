"""Non-parametric feature-alignment knowledge distillation, NPKD (Eqs. 11-13).

``L_KD = λ·KL(σ(g^s/T), σ(g^t/T)) + ||f^s - I(f^t)||²₂`` with ``I`` a 1-D linear interpolation
along the channel axis. The teacher runs outside the loss; teacher tensors are detached here.
See ``docs/objectives.md`` for the KL direction and interpolation choices.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .._amp import fp32, no_autocast
from .._checks import check_bool, check_finite, check_int
from .reid import (
    _check_2d,
    _check_nonempty,
    _check_same_batch,
    _check_width,
)

__all__ = ["NPKDLoss", "interpolate_features", "kd_kl_div"]

Align = Literal["interpolate", "linear"]
Direction = Literal["t2s", "s2t"]
KLMode = Literal["forward", "reverse"]
Reduction = Literal["sum", "mean"]
_ALIGNS = ("interpolate", "linear")
_DIRECTIONS = ("t2s", "s2t")
_KL_MODES = ("forward", "reverse")
_REDUCTIONS = ("sum", "mean")


def interpolate_features(
    x: torch.Tensor, out_dim: int, *, align_corners: bool = False
) -> torch.Tensor:
    """Resize features along the channel axis by 1-D linear interpolation, ``I(·)`` of Eq. 13.

    ``align_corners=False`` (default, as ``F.interpolate``): output channel ``j`` samples
    ``(j + 0.5)·C_in/out_dim - 0.5`` (half-pixel centres). An exact 2x shrink then averages
    channel pairs, ``y_j = (x_2j + x_2j+1) / 2``, so every teacher channel gets the same
    weight; growing clamps at both ends.

    ``align_corners=True``: output channel ``j`` samples input position
    ``j·(C_in - 1)/(out_dim - 1)``, so the first and last channels map onto each other and a
    linear ramp stays an exact linear ramp whether the features are shrunk or grown. Shrinking
    samples, it does not average: 768 -> 384 gives some teacher channels under 5 % weight.

    Returns ``x`` itself when ``C_in == out_dim``.

    Args:
        x: ``(B, C_in)`` features.
        out_dim: ``C_out >= 1``.
        align_corners: see above.

    Returns:
        ``(B, C_out)``, differentiable with respect to ``x``.

    Raises:
        ValueError: ``x`` not 2-D or ``out_dim < 1``.
        TypeError: ``out_dim`` not an int, ``align_corners`` not a bool.

    Example:
        >>> interpolate_features(torch.arange(4.0)[None], 2)
        tensor([[0.5000, 2.5000]])
        >>> interpolate_features(torch.arange(5.0)[None], 3, align_corners=True)
        tensor([[0., 2., 4.]])
    """
    x = _check_2d("x", x)
    out_dim = check_int("out_dim", out_dim, low=1)
    check_bool("align_corners", align_corners)
    if x.shape[1] == out_dim:
        return x
    # F.interpolate wants (B, channels, length): our feature channels are the "length"
    return F.interpolate(
        x.unsqueeze(1), size=out_dim, mode="linear", align_corners=align_corners
    ).squeeze(1)


def kd_kl_div(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 1.0,
    *,
    mode: KLMode = "forward",
) -> torch.Tensor:
    """KL divergence between temperature-softened class distributions (Eqs. 11-12), ``batchmean``.

    With ``p^s = softmax(g^s/T)`` and ``p^t = softmax(g^t/T)``:

    * ``mode="forward"`` (default): ``KL(p^t || p^s) = mean_b Σ_k p^t log(p^t / p^s)``, i.e.
      ``F.kl_div(log p^s, p^t, reduction="batchmean")``. The paper's ``KL(σ(g^s), σ(g^t))``
      lists its arguments in exactly ``F.kl_div``'s order (student input, teacher target), and
      this is the Hinton distillation loss the reference ReID KD code uses.
    * ``mode="reverse"``: ``KL(p^s || p^t)``, the literal mathematical reading of Eq. 11.

    No ``T²`` factor is applied here (``NPKDLoss`` can add it). Gradients reach both inputs;
    callers detach the teacher.

    Args:
        student_logits: ``(B, K)``.
        teacher_logits: ``(B, K)``.
        temperature: ``T > 0`` (1 in the paper).
        mode: ``"forward"`` or ``"reverse"``.

    Raises:
        ValueError: non-2-D logits, an empty batch, different batch sizes or class counts,
            ``T <= 0`` or not finite, bad mode.
    """
    s = _check_nonempty("student_logits", _check_2d("student_logits", student_logits))
    t = _check_2d("teacher_logits", teacher_logits)
    _check_same_batch(student_logits=s, teacher_logits=t)
    if s.shape[1] != t.shape[1]:
        raise ValueError(
            "student_logits and teacher_logits must have the same number of classes, got "
            f"{tuple(s.shape)} and {tuple(t.shape)}"
        )
    temperature = _check_temperature(temperature)
    if mode not in _KL_MODES:
        raise ValueError(f"mode must be one of {_KL_MODES}, got {mode!r}")
    log_ps = F.log_softmax(s / temperature, dim=1)
    log_pt = F.log_softmax(t / temperature, dim=1)
    if mode == "forward":
        return F.kl_div(log_ps, log_pt, reduction="batchmean", log_target=True)
    return F.kl_div(log_pt, log_ps, reduction="batchmean", log_target=True)


def _check_temperature(temperature: object) -> float:
    """``T`` as a float in ``(0, inf)``; every refusal a ``ValueError`` (``check_finite``'s)."""
    if check_finite("temperature", temperature) <= 0:
        # T = inf would flatten both distributions and give a silent zero KL
        raise ValueError(f"temperature must be a finite float > 0, got {temperature!r}")
    return float(temperature)


class NPKDLoss(nn.Module):
    """NPKD loss ``L_KD = kl_weight·KL + feature_weight·mean_b D(f^s_b, I(f^t_b))`` (Eq. 13).

    ``D`` is the squared difference averaged over channels (``feature_reduction="mean"``, the
    default) or summed over them (``"sum"``: Eq. 13's ``||·||²₂`` literally).

    Args:
        kl_weight: ``λ`` of Eq. 13 (0.1 in the paper).
        temperature: ``T`` of Eq. 12 (1 in the paper).
        align: ``"interpolate"`` (non-parametric ``I``, the paper's choice) or ``"linear"``
            (a learnable ``nn.Linear`` projector: Table VI's parametric rows; it then lives in
            this module, so give this module's parameters to the optimiser).
        direction: ``"t2s"`` maps the teacher feature to the student dimension (the paper's
            choice); ``"s2t"`` maps the student feature up to the teacher's.
        student_dim, teacher_dim: ``C_s`` and ``C_t``. Required for ``align="linear"``;
            otherwise optional and, when given, checked against the inputs.
        kl_mode: ``"forward"`` ``KL(p^t||p^s)`` (default) or ``"reverse"``; see :func:`kd_kl_div`.
        t2_scale: multiply the KL by ``T²`` (Hinton's convention, keeps gradient size independent
            of ``T``). Off by default to match Eq. 13; at the paper's ``T = 1`` it changes nothing.
        align_corners: the sampling grid of ``I`` for ``align="interpolate"`` (see
            :func:`interpolate_features`): ``False`` (default) makes an exact 2x shrink
            (768 -> 384) average channel pairs; ``True`` maps end channels onto each other and
            leaves some teacher channels almost unweighted. Why ``False``: docs/objectives.md.
        feature_weight: weight of the feature term (1 in Eq. 13; 0 leaves the logits KL only).
        feature_reduction: ``"mean"`` over channels (default; ``F.mse_loss``'s scale, ``1/C``
            of the sum, ``C`` the aligned dimension) or ``"sum"`` over channels, Eq. 13's
            literal squared L2 norm. Either way the batch is averaged. Why ``"mean"``: the
            sum outweighs every other loss term (docs/objectives.md, "NPKD").

    The terms are computed in float32 with autocast off, so ``f16``/``bf16`` inputs from a
    mixed-precision forward cannot overflow the squared-distance sum.

    Raises:
        ValueError: bad enum strings, ``align="linear"`` without both dims, bad numbers
            (weights and ``temperature``: any non-finite or non-number too).
        TypeError: ``student_dim``/``teacher_dim`` not an int or None, ``t2_scale`` or
            ``align_corners`` not a bool.

    Example:
        >>> loss = NPKDLoss()
        >>> f_s, f_t = torch.randn(4, 384), torch.randn(4, 768)
        >>> loss(f_s, torch.randn(4, 10), f_t, torch.randn(4, 10)).shape
        torch.Size([])
    """

    def __init__(
        self,
        kl_weight: float = 0.1,
        temperature: float = 1.0,
        align: Align = "interpolate",
        direction: Direction = "t2s",
        student_dim: int | None = None,
        teacher_dim: int | None = None,
        *,
        kl_mode: KLMode = "forward",
        t2_scale: bool = False,
        align_corners: bool = False,
        feature_weight: float = 1.0,
        feature_reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        if align not in _ALIGNS:
            raise ValueError(f"align must be one of {_ALIGNS}, got {align!r}")
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")
        if kl_mode not in _KL_MODES:
            raise ValueError(f"kl_mode must be one of {_KL_MODES}, got {kl_mode!r}")
        kl_weight = check_finite("kl_weight", kl_weight, minimum=0.0)
        feature_weight = check_finite("feature_weight", feature_weight, minimum=0.0)
        if feature_reduction not in _REDUCTIONS:
            raise ValueError(
                f"feature_reduction must be one of {_REDUCTIONS}, got {feature_reduction!r}"
            )
        self.temperature = _check_temperature(temperature)
        self.student_dim = None if student_dim is None else check_int(
            "student_dim", student_dim, low=1)
        self.teacher_dim = None if teacher_dim is None else check_int(
            "teacher_dim", teacher_dim, low=1)
        self.kl_weight = kl_weight
        self.feature_weight = feature_weight
        self.feature_reduction = feature_reduction
        self.align = align
        self.direction = direction
        self.kl_mode = kl_mode
        self.t2_scale = check_bool("t2_scale", t2_scale)  # "no" would scale by T**2
        self.align_corners = check_bool("align_corners", align_corners)
        self.proj: nn.Linear | None = None
        if align == "linear":
            if self.student_dim is None or self.teacher_dim is None:
                raise ValueError(
                    "align='linear' needs student_dim and teacher_dim at construction, got "
                    f"student_dim={student_dim!r}, teacher_dim={teacher_dim!r}"
                )
            if direction == "t2s":
                self.proj = nn.Linear(self.teacher_dim, self.student_dim)
            else:
                self.proj = nn.Linear(self.student_dim, self.teacher_dim)

    def _check_inputs(self, sf, sl, tf, tl) -> None:
        sf = _check_nonempty("student_feat", _check_2d("student_feat", sf))
        sl = _check_2d("student_logits", sl)
        tf = _check_2d("teacher_feat", tf)
        tl = _check_2d("teacher_logits", tl)
        _check_same_batch(student_feat=sf, student_logits=sl, teacher_feat=tf, teacher_logits=tl)
        if sl.shape[1] != tl.shape[1]:
            raise ValueError(
                "student_logits and teacher_logits must have the same number of classes, got "
                f"{tuple(sl.shape)} and {tuple(tl.shape)}"
            )
        for name, x, dim in (
            ("student_feat", sf, self.student_dim),
            ("teacher_feat", tf, self.teacher_dim),
        ):
            if dim is not None:
                _check_width(name, x, dim)

    def terms(
        self,
        student_feat: torch.Tensor,
        student_logits: torch.Tensor,
        teacher_feat: torch.Tensor,
        teacher_logits: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The unweighted ``(L_KL, feature term)`` pair (the feature term reduced over channels
        by ``feature_reduction``); ``forward`` weights and adds them."""
        self._check_inputs(student_feat, student_logits, teacher_feat, teacher_logits)
        with no_autocast(student_feat.device.type):
            return self._terms(
                fp32(student_feat), fp32(student_logits),
                fp32(teacher_feat.detach()), fp32(teacher_logits.detach()),
            )

    def _terms(self, student_feat, student_logits, teacher_feat, teacher_logits):
        kl = kd_kl_div(student_logits, teacher_logits, self.temperature, mode=self.kl_mode)
        if self.t2_scale:
            kl = kl * self.temperature**2
        s, t = student_feat, teacher_feat
        if self.proj is not None:
            if self.direction == "t2s":
                t = self.proj(t)
            else:
                s = self.proj(s)
        elif self.direction == "t2s":
            t = interpolate_features(t, s.shape[1], align_corners=self.align_corners)
        else:
            s = interpolate_features(s, t.shape[1], align_corners=self.align_corners)
        sq = (s - t).pow(2)
        feat = (sq.sum(dim=1) if self.feature_reduction == "sum" else sq.mean(dim=1)).mean()
        return kl, feat

    def forward(
        self,
        student_feat: torch.Tensor,
        student_logits: torch.Tensor,
        teacher_feat: torch.Tensor,
        teacher_logits: torch.Tensor,
    ) -> torch.Tensor:
        """``f^s (B, C_s)``, ``g^s (B, K)``, ``f^t (B, C_t)``, ``g^t (B, K)`` -> scalar ``L_KD``."""
        kl, feat = self.terms(student_feat, student_logits, teacher_feat, teacher_logits)
        return self.kl_weight * kl + self.feature_weight * feat

    def extra_repr(self) -> str:
        return (
            f"kl_weight={self.kl_weight}, temperature={self.temperature}, align={self.align!r}, "
            f"direction={self.direction!r}, kl_mode={self.kl_mode!r}, t2_scale={self.t2_scale}, "
            f"align_corners={self.align_corners}, feature_weight={self.feature_weight}, "
            f"feature_reduction={self.feature_reduction!r}"
        )
