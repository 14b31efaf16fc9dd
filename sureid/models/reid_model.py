"""A ReID network for training: HTS backbone + BNNeck (+ optional reweight head)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._checks import check_bool, check_int
from . import model_file
from .data_config import DataConfig
from .heads import BNNeck
from .output import HTSOutput
from .reweight import ClsTokenReweight

__all__ = ["ReIDModel", "ReIDTrainOutput"]


@dataclass
class ReIDTrainOutput:
    """Training outputs of :class:`ReIDModel`.

    Attributes:
        hts: the backbone's :class:`~sureid.HTSOutput` (features, tokens, keep masks, cls_attn).
        logits: ``(B, K)`` post-BN identity logits ``g^s`` (Eq. 10).
        aux_feature, aux_logits: the reweight head's ``(B, C)`` feature and ``(B, K)`` logits
            (Eqs. 7-8), ``None`` without the head.
    """

    hts: HTSOutput
    logits: torch.Tensor
    aux_feature: torch.Tensor | None = None
    aux_logits: torch.Tensor | None = None

    @property
    def features(self) -> torch.Tensor:
        """``(B, C)`` pre-BN class-token feature ``f^s`` (triplet and NPKD feature term)."""
        return self.hts.features

    @property
    def keep_masks(self) -> list[torch.Tensor]:
        """One ``(B, N)`` keep mask per pruning stage (Eq. 3); empty when HTS is off."""
        return self.hts.keep_masks

    @property
    def keep_ratios(self) -> tuple[float, ...]:
        """The target keep ratio ``p_j`` of each mask in :attr:`keep_masks` (Eq. 9)."""
        return self.hts.keep_ratios


class ReIDModel(nn.Module):
    """Backbone (an :class:`~sureid.HTSViT`, pruning on or off) with the ReID training heads.

    * train: returns :class:`ReIDTrainOutput`;
    * eval: returns the backbone's ``(B, C)`` embedding, computed on pruned tokens (the heads
      cost nothing at inference, so ``model.backbone`` alone is what you deploy).

    Args:
        backbone: module whose train forward returns :class:`~sureid.HTSOutput` and whose
            eval forward returns ``(B, C)``; ``backbone.embed_dim`` gives ``C``.
        num_classes: number of training identities ``K``.
        reweight: add the class-token reweight head (Eqs. 7-8, training only).
        eval_feature: ``"before"`` (default, as :class:`~sureid.BNNeck`) returns the pre-BN
            class token at eval, what the exported backbone computes and what TransReID's
            ViT configs test with (``NECK_FEAT: 'before'``); ``"after"`` returns the BNNeck
            feature (BoT/torchreid ``neck_feat='after'``). Use ``"after"`` for an NPKD
            teacher: ``FrozenTeacher(net, net.classifier_weight.detach())`` then gets the
            feature its classifier was trained on (``docs/objectives.md``).
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        reweight: bool = False,
        eval_feature: str = "before",
    ) -> None:
        super().__init__()
        embed_dim = getattr(backbone, "embed_dim", None)
        if not isinstance(embed_dim, int):
            raise TypeError(
                f"backbone must expose an int `embed_dim` (e.g. sureid.HTSViT), "
                f"got {type(backbone).__name__}"
            )
        num_classes = check_int("num_classes", num_classes, low=2)
        check_bool("reweight", reweight)
        if eval_feature not in ("before", "after"):
            raise ValueError(f"eval_feature must be 'before' or 'after', got {eval_feature!r}")
        self.backbone = backbone
        self.neck = BNNeck(embed_dim, num_classes, eval_feature=eval_feature)
        self.reweight = ClsTokenReweight(embed_dim, num_classes=num_classes) if reweight else None
        self.embed_dim = embed_dim
        self.num_classes = num_classes
        self.eval_feature = eval_feature

    @property
    def classifier_weight(self) -> torch.Tensor:
        """``(K, C)`` identity classifier weight ``W`` (Eq. 10); a teacher's ``g^t = W f^t``."""
        return self.neck.classifier.weight

    def inactive_parameters(self, *, aux_loss: bool = True) -> list[str]:
        """Names of trainable parameters that a training step never uses.

        The backbone's own (:meth:`~sureid.HTSViT.inactive_parameters`, under ``backbone.``),
        and the reweight head's when the backbone returns no class-token attention or the
        objective does not supervise the head (``aux_loss=False``).
        """
        names: list[str] = []
        inactive = getattr(self.backbone, "inactive_parameters", None)
        if callable(inactive):
            names.extend(f"backbone.{n}" for n in inactive())
        no_cls_attn = not getattr(self.backbone, "compute_cls_attn", True)
        if self.reweight is not None and (no_cls_attn or not aux_loss):
            names.extend(f"reweight.{n}" for n, p in self.reweight.named_parameters()
                         if p.requires_grad)
        return names

    def forward(self, images: torch.Tensor) -> torch.Tensor | ReIDTrainOutput:
        if not self.training:
            feat = self.backbone(images)
            return self.neck(feat) if self.eval_feature == "after" else feat
        hts = self.backbone(images)
        if not isinstance(hts, HTSOutput):
            raise TypeError(
                "ReIDModel's backbone must return sureid.HTSOutput in train mode, got "
                f"{type(hts).__name__} from {type(self.backbone).__name__}; wrap a plain ViT "
                "as HTSViT.from_timm(vit, keep_ratio=1.0) (dense) or keep_ratio=p (pruned)"
            )
        _, logits = self.neck(hts.features)
        aux_feature = aux_logits = None
        if self.reweight is not None and hts.cls_attn is not None:
            aux = self.reweight.from_output(hts)
            aux_feature, aux_logits = aux.feature, aux.logits
        return ReIDTrainOutput(
            hts=hts, logits=logits, aux_feature=aux_feature, aux_logits=aux_logits
        )

    def save(
        self,
        path: str | os.PathLike,
        *,
        data_config: DataConfig | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Path:
        """Write the weights and the architecture to one file that :func:`sureid.load` rebuilds.

        Records the backbone (the arguments it was built with: a sureid ViT's ``config``, or
        the record of :func:`~sureid.models.create_timm_model`), HTS stages, head, input
        size and normalisation (``data_config``; default
        ``self.data_config`` if set, else the input size with ImageNet mean/std). Written
        atomically; loads with ``weights_only=True``. ``metadata``: JSON-like extras (e.g.
        metrics) returned as ``model.metadata`` on load.

        Example:
            >>> model.save("runs/final.pt"); model = sureid.load("runs/final.pt")  # doctest: +SKIP
        """
        return model_file.save_model(self, path, data_config=data_config, metadata=metadata)

    @classmethod
    def load(cls, path: str | os.PathLike, *, map_location: str | torch.device = "cpu"):
        """Same as :func:`sureid.load`."""
        return model_file.load_model(path, map_location=map_location, model_cls=ReIDModel)
