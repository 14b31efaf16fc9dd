"""ReID losses: label-smoothing cross-entropy and batch-hard triplet (L_cls, L_tri of Eq. 14).

The maths lives in plain functions (``label_smoothing_cross_entropy``, ``pairwise_distance``,
``batch_hard_triplet_loss``); the modules only hold the hyper-parameters.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_finite, check_int, check_real

__all__ = [
    "CrossEntropyLabelSmooth",
    "TripletLoss",
    "batch_hard_triplet_loss",
    "label_smoothing_cross_entropy",
    "pairwise_distance",
]

Metric = Literal["euclidean", "cosine"]
_METRICS = ("euclidean", "cosine")


# --------------------------------------------------------------------------- input checks
# (shared with npkd.py / objective.py; private)


def _check_tensor(name: str, x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def _check_2d(name: str, x: object) -> torch.Tensor:
    x = _check_tensor(name, x)
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D (B, C), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def _check_nonempty(name: str, x: torch.Tensor) -> torch.Tensor:
    if x.shape[0] == 0:
        raise ValueError(
            f"{name} must hold at least one sample, got an empty batch of shape {tuple(x.shape)}"
        )
    return x



def _check_labels(labels: object, batch: int) -> torch.Tensor:
    labels = _check_tensor("labels", labels)
    if labels.dim() != 1 or labels.shape[0] != batch:
        raise ValueError(
            f"labels must have shape ({batch},) to match the batch, got {tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    return labels


def _check_same_batch(**tensors: torch.Tensor) -> None:
    sizes = {name: int(t.shape[0]) for name, t in tensors.items()}
    if len(set(sizes.values())) > 1:
        shapes = ", ".join(f"{n}={tuple(t.shape)}" for n, t in tensors.items())
        raise ValueError(f"batch sizes differ: {shapes}")


def _check_width(name: str, x: torch.Tensor, width: int, what: str = "channels") -> None:
    """``x`` ``(B, width)``: its second dim must be ``width`` (named ``what`` in the error)."""
    if x.shape[1] != width:
        raise ValueError(f"{name} must have {width} {what}, got shape {tuple(x.shape)}")


def _check_metric(metric: object) -> str:
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
    return metric  # type: ignore[return-value]


# --------------------------------------------------------------------------- cross-entropy


def label_smoothing_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, epsilon: float = 0.1
) -> torch.Tensor:
    """Cross-entropy against the smoothed target ``(1 - ε)·onehot + ε/K`` (torchreid convention),
    i.e. ``F.cross_entropy(logits, labels, label_smoothing=ε)`` after the checks below.

    Args:
        logits: ``(B, K)`` class scores (post-BN logits of the BNNeck, Eq. 10).
        labels: ``(B,)`` integer identities in ``[0, K)``.
        epsilon: smoothing ``ε`` in ``[0, 1)``; ``0`` gives plain cross-entropy.

    Returns:
        Scalar: ``mean_b  -Σ_k q_bk log softmax(logits)_bk``.

    Raises:
        ValueError: non-2-D logits, an empty batch, labels of the wrong length or out of
            range, bad ``epsilon``.

    Example:
        >>> label_smoothing_cross_entropy(torch.zeros(2, 4), torch.tensor([0, 3])).shape
        torch.Size([])
    """
    logits = _check_nonempty("logits", _check_2d("logits", logits))
    labels = _check_labels(labels, logits.shape[0])
    if not 0.0 <= float(epsilon) < 1.0:
        raise ValueError(f"epsilon must be in [0, 1), got {epsilon!r}")
    num_classes = logits.shape[1]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}) for logits of shape {tuple(logits.shape)}, "
            f"got values in [{int(labels.min())}, {int(labels.max())}]"
        )
    # torch's label smoothing is this target: (1 - ε)·onehot + ε/K
    return F.cross_entropy(logits, labels.long(), label_smoothing=float(epsilon))


class CrossEntropyLabelSmooth(nn.Module):
    """Label-smoothing cross-entropy ``L_cls`` (torchreid's ``(1 - ε)·onehot + ε/K``).

    Args:
        num_classes: ``K``; when given, logits with another class count raise ``ValueError``.
            ``None`` takes ``K`` from the logits.
        epsilon: smoothing ``ε`` in ``[0, 1)``.

    Raises:
        TypeError: ``num_classes`` not an int or None, ``epsilon`` not a real number.
        ValueError: ``num_classes < 1``, ``epsilon`` outside ``[0, 1)``.

    Example:
        >>> loss = CrossEntropyLabelSmooth(751)
        >>> loss(torch.randn(8, 751), torch.randint(0, 751, (8,))).shape
        torch.Size([])
    """

    def __init__(self, num_classes: int | None = None, epsilon: float = 0.1) -> None:
        super().__init__()
        self.num_classes = None if num_classes is None else check_int(
            "num_classes", num_classes, low=1)
        self.epsilon = check_real("epsilon", epsilon, low=0.0, high=1.0, high_open=True)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``logits (B, K)``, ``labels (B,)`` -> scalar."""
        logits = _check_2d("logits", logits)
        if self.num_classes is not None and logits.shape[1] != self.num_classes:
            raise ValueError(
                f"logits must have {self.num_classes} classes, got shape {tuple(logits.shape)}"
            )
        return label_smoothing_cross_entropy(logits, labels, self.epsilon)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, epsilon={self.epsilon}"


# --------------------------------------------------------------------------- triplet


def pairwise_distance(x: torch.Tensor, metric: Metric = "euclidean") -> torch.Tensor:
    """``(B, C)`` features -> ``(B, B)`` distance matrix.

    ``"euclidean"``: ``sqrt(clamp(|x_i|² + |x_j|² - 2 x_i·x_j, 1e-12))``; the clamp before the
    square root keeps the gradient finite at zero distance (the diagonal, duplicates).
    ``"cosine"``: ``1 - cos(x_i, x_j)``.
    """
    x = _check_2d("features", x)
    metric = _check_metric(metric)
    if metric == "cosine":
        xn = F.normalize(x, dim=1)
        return 1.0 - xn @ xn.t()
    sq = x.pow(2).sum(dim=1)
    d2 = sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * (x @ x.t())
    return d2.clamp(min=1e-12).sqrt()


def batch_hard_triplet_loss(
    features: torch.Tensor,
    labels: torch.Tensor,
    margin: float | None = 0.3,
    metric: Metric = "euclidean",
) -> torch.Tensor:
    """Batch-hard triplet loss ``L_tri`` (Hermans et al.): hardest positive and negative per anchor.

    ``l_a = relu(max_p d(a, p) - min_n d(a, n) + margin)``, or ``softplus(max_p d - min_n d)``
    when ``margin is None`` (soft margin). Positives exclude the anchor itself. Anchors without
    a positive or without a negative in the batch are left out of the mean; a batch with no
    valid anchor returns a zero that is still connected to ``features`` (never NaN). An empty
    batch (``B = 0``) has no anchor at all and is refused: it is a data-loading bug, not a
    batch without positive pairs.

    Args:
        features: ``(B, C)`` embeddings (the pre-BN feature in BNNeck training).
        labels: ``(B,)`` integer identities.
        margin: non-negative margin, or ``None`` for the soft margin.
        metric: ``"euclidean"`` or ``"cosine"``.

    Returns:
        Scalar loss.

    Raises:
        ValueError: non-2-D features, an empty batch, labels of the wrong length, negative
            or non-finite margin, bad metric.
    """
    features = _check_nonempty("features", _check_2d("features", features))
    labels = _check_labels(labels, features.shape[0])
    metric = _check_metric(metric)
    if margin is not None:
        margin = check_finite("margin", margin, minimum=0.0)
    dist = pairwise_distance(features, metric)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    neg = ~same
    hardest_pos = dist.masked_fill(~pos, float("-inf")).amax(dim=1)
    hardest_neg = dist.masked_fill(~neg, float("inf")).amin(dim=1)
    valid = pos.any(dim=1) & neg.any(dim=1)
    # torch.where (not a product) so the +-inf of invalid rows never meets a zero weight
    gap = torch.where(valid, hardest_pos - hardest_neg, torch.zeros_like(hardest_pos))
    per_anchor = F.softplus(gap) if margin is None else F.relu(gap + float(margin))
    per_anchor = torch.where(valid, per_anchor, torch.zeros_like(per_anchor))
    # no host sync: the empty case is 0 / 1 and stays on the graph
    return per_anchor.sum() / valid.sum().clamp(min=1).to(per_anchor.dtype)


class TripletLoss(nn.Module):
    """Batch-hard triplet loss ``L_tri``; see :func:`batch_hard_triplet_loss`.

    Args:
        margin: margin (default 0.3), or ``None`` for the soft margin ``softplus(d_ap - d_an)``.
        metric: ``"euclidean"`` or ``"cosine"``.

    Example:
        >>> TripletLoss(0.3)(torch.randn(8, 16), torch.arange(4).repeat_interleave(2)).shape
        torch.Size([])
    """

    def __init__(self, margin: float | None = 0.3, metric: Metric = "euclidean") -> None:
        super().__init__()
        self.margin = None if margin is None else check_finite("margin", margin, minimum=0)
        self.metric = _check_metric(metric)

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``features (B, C)``, ``labels (B,)`` -> scalar."""
        return batch_hard_triplet_loss(features, labels, self.margin, self.metric)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, metric={self.metric!r}"
