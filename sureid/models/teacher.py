"""A frozen teacher for NPKD: ``(f^t, g^t)`` with ``g^t = W^t · f^t`` (Sec. III-B)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FrozenTeacher"]


class FrozenTeacher(nn.Module):
    """Wrap any feature extractor as a frozen NPKD teacher.

    The wrapped model is kept in eval mode and its parameters (and the classifier's) have
    ``requires_grad=False`` whatever the caller does: ``train()`` and ``requires_grad_()`` on
    this module are ignored, and ``forward`` puts the model back into eval mode if someone
    switched it directly. The forward runs under ``torch.no_grad()`` (not ``inference_mode``,
    so the outputs can be used freely next to student tensors in the loss graph).

    The logits are ``g^t = f^t @ W^tᵀ`` with ``f^t`` whatever ``model`` returns, so ``f^t``
    must be the feature ``W^t`` was trained on: for a teacher trained with a BNNeck
    (``sureid.engine.ReIDModel``, BoT, TransReID) the BN feature, i.e. the whole ReID model
    with ``eval_feature="after"`` and its ``classifier_weight``; the raw class token with
    that classifier gives near-constant logits (``docs/objectives.md``). A teacher whose
    classifier was trained on its raw feature (the paper's ``g^t`` "without BN") is wrapped
    around that feature directly. ``K`` must equal the student's number of
    classes (same training identities); ``classifier=None`` gives a feature-only teacher
    whose logits are ``None``.

    ``head`` separates the two: ``f^t`` (Eq. 13's feature term) is what ``model`` returns and
    the logits are ``g^t = head(f^t) @ W^tᵀ``. For a BNNeck teacher,
    ``FrozenTeacher(net.backbone, net.classifier_weight, head=net.neck.bn)`` gives its pre-BN
    feature, the same kind of feature as the student's ``f^s`` (Eq. 10), with the logits of
    its BN feature, exactly those of ``FrozenTeacher(net, net.classifier_weight)``.

    Args:
        model: maps images ``(B, 3, H, W)`` to a ``(B, C_t)`` feature in eval mode, e.g. a
            ``ReIDModel(..., eval_feature="after")`` (for timm, build it with ``num_classes=0``).
        classifier: ``(K, C_t)`` weight tensor (e.g. ``ReIDModel.classifier_weight`` or
            ``state_dict["neck.classifier.weight"]``), bias-free ``nn.Linear``, or ``None``.
        head: maps ``f^t (B, C_t)`` to the feature the classifier reads, frozen and in eval
            mode like ``model`` (e.g. the teacher's BNNeck ``BatchNorm1d``); ``None``
            (default): the classifier reads ``f^t``.

    Raises:
        TypeError: ``model`` or ``head`` not an ``nn.Module``; bad ``classifier`` type; model
            output not a tensor.
        ValueError: classifier with a bias, weight not 2-D, feature width not ``C_t``.

    Example:
        >>> backbone = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 4, 16))
        >>> teacher = FrozenTeacher(backbone, torch.randn(10, 16))
        >>> f_t, g_t = teacher(torch.randn(2, 3, 8, 4))
        >>> f_t.shape, g_t.shape, f_t.requires_grad
        (torch.Size([2, 16]), torch.Size([2, 10]), False)
    """

    def __init__(
        self,
        model: nn.Module,
        classifier: nn.Linear | torch.Tensor | None = None,
        *,
        head: nn.Module | None = None,
    ):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if head is not None and not isinstance(head, nn.Module):
            raise TypeError(f"head must be an nn.Module or None, got {type(head).__name__}")
        self.model = model
        self.head = head
        weight: torch.Tensor | None
        if classifier is None:
            weight = None
        elif isinstance(classifier, nn.Linear):
            if classifier.bias is not None:
                raise ValueError(
                    "classifier must be bias-free (g^t = W^t f^t); got nn.Linear with a bias of "
                    f"shape {tuple(classifier.bias.shape)}"
                )
            weight = classifier.weight.detach().clone()
        elif isinstance(classifier, torch.Tensor):
            weight = classifier.detach().clone()
        else:
            raise TypeError(
                "classifier must be a (K, C_t) tensor, a bias-free nn.Linear or None, got "
                f"{type(classifier).__name__}"
            )
        if weight is not None and weight.dim() != 2:
            raise ValueError(f"classifier weight must be 2-D (K, C_t), got {tuple(weight.shape)}")
        # a buffer: moves with .to(), saved in state_dict, never an optimiser parameter
        self.register_buffer("classifier_weight", weight)
        for p in self.parameters():
            p.requires_grad_(False)
        super().train(False)

    @property
    def num_classes(self) -> int | None:
        """``K``, or ``None`` for a feature-only teacher."""
        w = self.classifier_weight
        return None if w is None else int(w.shape[0])

    def train(self, mode: bool = True) -> FrozenTeacher:
        """Ignored: the teacher always stays in eval mode."""
        return super().train(False)

    def requires_grad_(self, requires_grad: bool = True) -> FrozenTeacher:
        """Ignored: the teacher's parameters always stay frozen."""
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(B, 3, H, W)`` -> ``(f^t (B, C_t), g^t (B, K) or None)``, both without grad."""
        if self.model.training or (self.head is not None and self.head.training):
            super().train(False)
        with torch.no_grad():
            feat = self.model(images)
            if not isinstance(feat, torch.Tensor):
                raise TypeError(
                    "the teacher model must return a (B, C) feature tensor in eval mode, got "
                    f"{type(feat).__name__}; wrap it so that it does"
                )
            if feat.dim() != 2:
                raise ValueError(
                    f"the teacher model must return a (B, C) feature, got shape {tuple(feat.shape)}"
                )
            w = self.classifier_weight
            if w is None:
                return feat, None
            read = feat if self.head is None else self.head(feat)
            if read.shape[1] != w.shape[1]:
                raise ValueError(
                    f"teacher feature has {read.shape[1]} channels but the classifier weight "
                    f"has shape {tuple(w.shape)} (expected (K, {read.shape[1]}))"
                )
            return feat, read @ w.to(read.dtype).t()
