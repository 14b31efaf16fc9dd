"""BNNeck ReID head (Eq. 10): ``g^s = W^s · BN(f^s)``."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from .._checks import check_int

__all__ = ["BNNeck"]

_EVAL_FEATURES = ("after", "before")


class BNNeck(nn.Module):
    """BatchNorm with a frozen zero bias, then a bias-free linear classifier (Eq. 10).

    Training: returns ``(bn_feat, logits)``; ``logits`` feed the ID loss and the NPKD KL, while
    the triplet loss and the NPKD feature term use the *pre*-BN feature ``f^s`` the caller
    already has. Eval: returns only the retrieval feature; the classifier is never run.

    The default eval feature is the pre-BN one (``eval_feature="before"``, the input returned
    unchanged), the same default as :class:`sureid.engine.ReIDModel`: TransReID's ViT configs,
    which the paper's Sec. IV-B follows, test with ``NECK_FEAT: 'before'``, and it is what
    the deployed backbone (``HTSViT``, ONNX) computes without the head. ``"after"`` returns
    the BN feature (BoT's default, torchreid's ``neck_feat='after'``); an NPKD *teacher*
    uses it, since its classifier was trained on it (``docs/objectives.md``).

    Args:
        in_dim: ``C``.
        num_classes: ``K``, the number of training identities.
        eval_feature: ``"before"`` (pre-BN, default) or ``"after"`` (post-BN) in eval mode.

    Shapes:
        ``(B, C)`` -> training ``((B, C), (B, K))``; eval ``(B, C)``.

    Example:
        >>> neck = BNNeck(384, 751)
        >>> bn_feat, logits = neck(torch.randn(4, 384))
        >>> logits.shape
        torch.Size([4, 751])
    """

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        *,
        eval_feature: Literal["before", "after"] = "before",
    ) -> None:
        super().__init__()
        in_dim = check_int("in_dim", in_dim, low=1)
        num_classes = check_int("num_classes", num_classes, low=1)
        if eval_feature not in _EVAL_FEATURES:
            raise ValueError(f"eval_feature must be one of {_EVAL_FEATURES}, got {eval_feature!r}")
        self.in_dim = in_dim
        self.num_classes = num_classes
        self.eval_feature = eval_feature
        self.bn = nn.BatchNorm1d(in_dim)
        # BNNeck (Luo et al.): the BN shift is fixed at zero so the feature stays centred
        self.bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(in_dim, num_classes, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """BN weight 1, bias 0; classifier ``N(0, 0.001²)`` as in BoT/TransReID."""
        self.bn.reset_parameters()
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.in_dim:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"BNNeck expects features of shape (B, {self.in_dim}), got {shape}")
        if not self.training:
            return self.bn(x) if self.eval_feature == "after" else x
        bn_feat = self.bn(x)
        return bn_feat, self.classifier(bn_feat)

    def extra_repr(self) -> str:
        return f"eval_feature={self.eval_feature!r}"
