"""``HTSViT``: a ViT with hierarchical token sparsification (Sec. III-A, Fig. 3)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .._checks import check_bool, check_real, is_real
from .decision import DecisionModule
from .fused_decision import can_fuse, fused_stages
from .hts import gumbel_keep_decision, num_kept_tokens, select_topk_tokens, topk_keep_mask
from .hts_checks import check_images, check_keep_masks, check_prune_layers, stage_ratios
from .output import HTSOutput
from .timm_adapter import (
    block_forward_cls_attention,
    block_forward_masked,
    check_vit_structure,
    embed_tokens,
    pool_tokens,
)
from .timm_backbone import check_timm_vit

__all__ = ["HTSViT"]

KEEP_SCORES = ("decision", "attention")


class HTSViT(nn.Module):
    """A ViT whose patch tokens are sparsified hierarchically before chosen blocks.

    Before block ``prune_layers[s]`` a :class:`DecisionModule` scores the patch tokens (or,
    with ``keep_score="attention"``, the previous block's class-token attention does).
    Training (``model.train()``) samples Gumbel hard decisions (Eqs. 1-3) and masks the
    attention of every later block (Eqs. 4-6) so all tokens stay; inference
    (``model.eval()``) keeps the top ``k_s = num_kept_tokens(N, ratio_s)`` patch tokens by
    keep probability and physically drops the rest, so later blocks run on fewer tokens.
    Class and register tokens are never dropped. The embedding is pooled as the wrapped
    model pools (:func:`~sureid.models.timm_adapter.pool_tokens`): the class token after the
    final norm, or timm's average/max pooling over the kept patch tokens, then ``fc_norm``.

    Args:
        vit: a timm-layout ViT with a class token, e.g. :func:`sureid.deit_small` (use
            :meth:`from_timm` for a timm model; it checks timm's types too). Kept as
            ``self.backbone``; its weights and modules are used as they are.
        keep_ratio: ``p`` giving stage ratios ``(p, p^2, p^3, ...)``, or one ratio per
            stage (non-increasing, each in ``(0, 1]``). A stage with ratio 1 is skipped.
        prune_layers: 0-based indices of the blocks before which to prune, strictly
            increasing. Default ``(3, 6, 9)``: before blocks 4, 7 and 10 as in the paper.
        tau: Gumbel-softmax temperature.
        decision_hidden_dim: hidden width of the decision modules (default ``C // 2``).
        decision_init_keep: where the untrained decision modules start. Default ``0.95``:
            stage ``s``'s module starts keeping about ``max(0.95, p_s / p_{s-1})`` of the
            tokens it sees (:meth:`DecisionModule.reset_keep_bias`), so no stage drops more
            than its target before it has learned anything and a pretrained backbone is not
            fine-tuned on randomly pruned inputs; the ratio loss then brings each stage down
            to its target. ``None``: PyTorch's init as in DynamicViT and the paper's code
            base, which keeps about half of the tokens at random at every stage, whatever
            ``p`` (``docs/hts.md``, "Where training starts"). Not in the paper.
        keep_score: what ranks the patch tokens at a stage. ``"decision"`` (default, the
            paper): a learned :class:`DecisionModule` per stage, Gumbel decisions in
            training. ``"attention"`` (not in the paper; EViT's score, parameter-free): the
            attention the class token pays each patch token in the block just before the
            stage, averaged over heads, taken from that block's own ``q`` and ``k``
            (:func:`~sureid.models.timm_adapter.block_forward_cls_attention`; about
            ``T * C`` multiply-adds per stage instead of the decision MLP's ``T * C^2 / 2``).
            The top ``k_s`` are kept in training too (hard masks from the masked attention,
            no sampling), so training and inference select the same tokens. No decision
            modules are built (``decision`` is empty) and the ratio loss has nothing to
            train. Needs ``prune_layers[0] >= 1``.
        prune: ``False`` switches HTS off (the attribute can be changed later).
        compute_cls_attn: in training, also return the last block's class-token
            attention (Eq. 7) in :class:`HTSOutput`.
        fused_decision: at inference, run each stage's decision module, top-k and gather as
            one compiled CPU call (:mod:`sureid.models.fused_decision`) where the tokens are
            float32 on the CPU (elsewhere, and under tracing, ``torch.compile`` or autocast,
            the eager modules run). It removes the per-operator cost that makes the decision
            modules expensive at small batches (docs/hts.md, "Fused decision"). Compiled on
            first use (a C++ compiler and ninja, about 30 s once per machine); scores agree
            with the eager modules to a few 1e-6, not bit for bit, so near-ties can rank the
            other way. Default ``False``; the attribute can be changed later and is not stored
            by ``ReIDModel.save`` (it is the running machine's choice). Not in the paper.

    Shapes:
        eval ``forward(x (B, 3, H, W)) -> (B, C)``; train ``forward(x) -> HTSOutput``.

    Example:
        >>> from sureid import deit_tiny
        >>> model = HTSViT(deit_tiny(img_size=(64, 32), depth=4), keep_ratio=0.7,
        ...                prune_layers=(1, 2)).eval()
        >>> model(torch.randn(2, 3, 64, 32)).shape
        torch.Size([2, 192])
    """

    def __init__(
        self,
        vit: nn.Module,
        *,
        keep_ratio: float | Sequence[float] = 0.7,
        prune_layers: Sequence[int] = (3, 6, 9),
        tau: float = 1.0,
        decision_hidden_dim: int | None = None,
        decision_init_keep: float | None = 0.95,
        keep_score: str = "decision",
        prune: bool = True,
        compute_cls_attn: bool = True,
        fused_decision: bool = False,
    ) -> None:
        super().__init__()
        check_vit_structure(vit)
        self.prune_layers = check_prune_layers(prune_layers, len(vit.blocks))
        self._keep_ratios = stage_ratios(keep_ratio, len(self.prune_layers))
        tau = check_real("tau", tau, low=0.0, high=math.inf, low_open=True, high_open=True)
        check_bool("prune", prune)
        check_bool("compute_cls_attn", compute_cls_attn)
        check_bool("fused_decision", fused_decision)
        if keep_score not in KEEP_SCORES:
            raise ValueError(f"keep_score must be one of {KEEP_SCORES}, got {keep_score!r}")
        if keep_score == "attention" and decision_hidden_dim is not None:
            raise ValueError(
                "decision_hidden_dim sets the decision modules' width; keep_score='attention' "
                f"builds none, got decision_hidden_dim={decision_hidden_dim!r}"
            )
        if decision_init_keep is not None:
            check_real("decision_init_keep", decision_init_keep, low=0.0, high=1.0,
                       low_open=True, high_open=True)
        if keep_score == "attention" and self.prune_layers[0] == 0:
            raise ValueError(
                "keep_score='attention' scores a stage with the attention of the block before "
                f"it, so prune_layers must start at 1 or later, got {self.prune_layers}"
            )
        self.keep_score = keep_score
        self.tau = tau
        self.prune = prune
        self.compute_cls_attn = compute_cls_attn
        self.fused_decision = fused_decision
        self.backbone = vit
        self.num_prefix_tokens = int(vit.num_prefix_tokens)
        embed_dim = int(vit.cls_token.shape[-1])
        self.embed_dim = embed_dim
        self.decision = nn.ModuleList(
            DecisionModule(embed_dim, hidden_dim=decision_hidden_dim, init_keep=init)
            for init in (self._initial_keeps(decision_init_keep) if keep_score == "decision"
                         else ())
        )
        #: the decision modules' hidden width; None with ``keep_score="attention"``
        self.decision_hidden_dim = (
            self.decision[0].hidden_dim if keep_score == "decision" else None
        )
        # block index -> stage index (-1: no pruning before this block); static, read-only
        stage_of_block = [-1] * len(vit.blocks)
        for s, layer in enumerate(self.prune_layers):
            stage_of_block[layer] = s
        self._stage_of_block = tuple(stage_of_block)

    def _initial_keeps(self, init_keep: float | None) -> list[float | None]:
        """Per stage, the keep probability its untrained decision module starts at: at least
        ``init_keep`` and at least the stage's own ratio ``p_s / p_{s-1}``."""
        if init_keep is None:
            return [None] * len(self.prune_layers)
        previous = (1.0, *self.keep_ratios[:-1])
        return [min(max(float(init_keep), r / q), 1.0 - 1e-4)
                for r, q in zip(self.keep_ratios, previous, strict=True)]

    @property
    def keep_ratios(self) -> tuple[float, ...]:
        """Per-stage keep ratios ``(p_1, ..., p_S)``; may be reassigned (same length, checked)."""
        return self._keep_ratios

    @keep_ratios.setter
    def keep_ratios(self, ratios: Sequence[float]) -> None:
        if is_real(ratios):  # a float p would silently mean (p, p^2, ...)
            raise TypeError(
                f"keep_ratios must be a sequence of one ratio per stage, got {ratios!r}; "
                "for the geometric schedule of p assign tuple(p ** (s + 1) for s in range(S))"
            )
        self._keep_ratios = stage_ratios(ratios, len(self.prune_layers), name="keep_ratios")

    @classmethod
    def from_timm(cls, vit: nn.Module, **kwargs: Any) -> HTSViT:
        """Wrap a timm ``VisionTransformer`` (timm>=1.0.16), reusing its modules and weights;
        ``kwargs`` are :class:`HTSViT`'s (``keep_ratio``, ``prune_layers``, ...).

        Supports class and register tokens, ``no_embed_class``, LayerScale, q/k norm,
        fused attention, rectangular and dynamic image sizes, and timm's pooling:
        ``global_pool`` ``"token"``, ``"avg"``, ``"max"`` or ``"avgmax"`` followed by
        ``fc_norm``, exactly as ``vit.forward_head(x, pre_logits=True)``; on pruned tokens
        the average (max) runs over the kept patch tokens. At ``keep_ratio=1.0`` the
        embedding is the wrapped model's.

        Distilled DeiT (``deit_*_distilled_patch16_224``, timm ``VisionTransformerDistilled``,
        the paper's student): both prefix tokens, class and distillation, are kept at every
        stage; the embedding is the class token ``vit.forward_features(x)[:, 0]``, not timm's
        ``(cls + dist) / 2`` head average (see :func:`~sureid.models.timm_adapter.pool_tokens`).

        Raises:
            ImportError: timm is not installed (``pip install 'sureid[timm]'``).
            TypeError: ``vit`` is not a timm ``VisionTransformer`` or uses a block or
                attention type other than timm's ``Block``/``Attention``.
            ValueError: no class token, patch dropout on, attention pooling
                (``global_pool="map"``/``"prr"``) or no pooling (``""``), or bad
                ``keep_ratio``/``prune_layers``.

        A model built with :func:`~sureid.models.create_timm_model` (``timm.create_model``
        that records its arguments) can be saved in a ReID model file.

        Example:
            >>> from sureid.models import create_timm_model
            >>> vit = create_timm_model("deit_small_patch16_224",
            ...                         img_size=(256, 128))  # doctest: +SKIP
            >>> model = HTSViT.from_timm(vit, keep_ratio=0.7)  # doctest: +SKIP
        """
        check_timm_vit(vit)
        return cls(vit, **kwargs)

    def load_backbone_state_dict(
        self, state_dict: Mapping[str, torch.Tensor], *, strict: bool = True
    ):
        """Load a plain ViT/timm checkpoint (keys without ``backbone.``) into ``self.backbone``.

        Decision modules are left as they are. Equivalent to
        ``model.backbone.load_state_dict(state_dict, strict=strict)``.
        """
        return self.backbone.load_state_dict(state_dict, strict=strict)

    def _num_patches(self, tokens: torch.Tensor) -> int:
        # A Python int, also under tracing/ONNX export (k must be static): the patch grid
        # is fixed unless the backbone resizes dynamically.
        pe = self.backbone.patch_embed
        if not getattr(self.backbone, "dynamic_img_size", False) and hasattr(pe, "num_patches"):
            return int(pe.num_patches)
        return int(tokens.shape[1]) - self.num_prefix_tokens

    def _active(self, stage: int) -> bool:
        return self.prune and self.keep_ratios[stage] < 1.0

    def kept_per_block(self, num_patches: int) -> tuple[int | None, ...]:
        """Patch tokens the inference path keeps before each block: ``k_s`` before the first
        block of an active stage, ``None`` where nothing is dropped (``prune`` off, ratio 1,
        or no stage starts there). Read at call time, so reassigned ratios count.

        Example:
            >>> from sureid import deit_tiny
            >>> HTSViT(deit_tiny(img_size=(64, 32), depth=4), keep_ratio=0.5,
            ...        prune_layers=(1, 3)).kept_per_block(8)
            (None, 4, None, 2)
        """
        return tuple(
            num_kept_tokens(num_patches, self.keep_ratios[s]) if s >= 0 and self._active(s)
            else None for s in self._stage_of_block
        )

    def inactive_parameters(self) -> list[str]:
        """Names of trainable parameters that a training step never uses.

        Known by construction: the decision modules of skipped stages (``prune=False`` or
        ratio 1) and the wrapped ViT's ``head``/``fc_norm``/``attn_pool`` (the embedding is
        taken before them). Active decision modules do get gradients, through the
        straight-through masks and the masked attention. ``DistributedDataParallel`` needs
        this to know whether to search for unused parameters.
        """
        names: list[str] = []

        def add(module: nn.Module | None, name: str) -> None:
            if module is not None:
                names.extend(
                    f"{name}.{n}" for n, p in module.named_parameters() if p.requires_grad
                )

        for s, dec in enumerate(self.decision):
            if not self._active(s):
                add(dec, f"decision.{s}")
        for part in ("head", "fc_norm", "attn_pool"):
            add(getattr(self.backbone, part, None), f"backbone.{part}")
        return names

    def forward(self, x: torch.Tensor) -> torch.Tensor | HTSOutput:
        """Eval: ``(B, C)`` embedding on pruned tokens, pooled as the wrapped model pools
        (the class token after the final norm by default; see :func:`pool_tokens`).
        Train: :class:`HTSOutput` from :meth:`forward_train`."""
        if self.training:
            return self.forward_train(x)
        return pool_tokens(self.backbone, self.forward_features(x))

    def forward_features(
        self, x: torch.Tensor, *, return_indices: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Inference path: physically drop tokens (top-k by keep probability).

        Args:
            x: ``(B, 3, H, W)`` images.
            return_indices: also return, per active stage, the kept patch indices
                ``(B, k_s)`` into the ORIGINAL patch grid (row-major ``N = H/p * W/p``),
                in increasing order, e.g. for the Fig. 6 visualisation.

        Returns:
            Tokens ``(B, P + k_last, C)`` after the final norm (class token first), and
            with ``return_indices`` the list of index tensors.
        """
        check_images(x, self.backbone)
        vit = self.backbone
        p = self.num_prefix_tokens
        x = embed_tokens(vit, x)
        n = self._num_patches(x)
        kept: list[torch.Tensor] = []
        orig = cls = None
        attention = self.keep_score == "attention"
        plan = self.kept_per_block(n)
        # the fused stages are bound once here: between two blocks every Python step costs
        # several times what it does in a loop (docs/hts.md, "Fused decision")
        fused = (fused_stages(self.decision) if self.fused_decision and not attention
                 and any(k is not None for k in plan) and can_fuse(self.decision, x) else None)
        blocks = zip(vit.blocks, self._stage_of_block, plan, strict=True)
        for i, (blk, stage, k) in enumerate(blocks):
            if k is not None:
                if attention:
                    x, idx = select_topk_tokens(x, cls[:, p:], k, p)
                elif fused is not None:
                    x, idx = fused[stage](x, k, p)
                else:
                    score = self.decision[stage](x[:, p:])[..., 1]
                    x, idx = select_topk_tokens(x, score, k, p)
                if return_indices:
                    orig = idx if orig is None else orig.gather(1, idx)
                    kept.append(orig)
            if attention and self._scores_next(i):
                x, cls = block_forward_cls_attention(blk, x)
            else:
                x = blk(x)
        x = vit.norm(x)
        return (x, kept) if return_indices else x

    def _scores_next(self, block: int) -> bool:
        """Whether ``block``'s class-token attention ranks the tokens of the next stage."""
        if self.keep_score != "attention" or block + 1 >= len(self._stage_of_block):
            return False
        stage = self._stage_of_block[block + 1]
        return stage >= 0 and self._active(stage)

    def forward_train(
        self, x: torch.Tensor, *, keep_masks: Sequence[torch.Tensor] | None = None
    ) -> HTSOutput:
        """Training path: Gumbel decisions (Eqs. 1-3) and masked attention (Eqs. 4-6).

        No token is removed. From the first active stage on every block uses the masked
        attention of :func:`sureid.models.hts.masked_attention`; earlier blocks run as usual.

        Args:
            x: ``(B, 3, H, W)`` images.
            keep_masks: optional cumulative hard masks ``(B, N)``, one per stage, used
                instead of sampling (the decision modules are then not run): values 0/1
                (or bool), each stage keeping a subset of the previous one. With the
                masks of :meth:`forward_features`' indices this path gives the same
                embedding as the inference path.

        Raises:
            ValueError: wrong image size, or ``keep_masks`` of the wrong count or shape,
                with values other than 0/1, or not cumulative.

        Returns:
            :class:`HTSOutput`; ``keep_masks`` has one ``(B, N)`` mask per stage (a skipped
            ratio-1 stage repeats the running mask) and is empty when ``prune`` is off.
        """
        check_images(x, self.backbone)
        vit = self.backbone
        p = self.num_prefix_tokens
        x = embed_tokens(vit, x)
        b, t, _ = x.shape
        n = self._num_patches(x)
        if keep_masks is not None:
            keep_masks = check_keep_masks(keep_masks, len(self.prune_layers), b, n)
        mask = x.new_ones(b, n)
        prefix_ones = x.new_ones(b, p)
        keep: torch.Tensor | None = None  # (B, T) once a stage is active
        masks: list[torch.Tensor] = []
        cls_attn = cls_prev = None
        last = len(vit.blocks) - 1
        for i, (blk, stage) in enumerate(zip(vit.blocks, self._stage_of_block, strict=True)):
            if stage >= 0 and self.prune:
                if self._active(stage):
                    if keep_masks is not None:
                        mask = keep_masks[stage].to(x.dtype)
                    elif self.keep_score == "attention":  # the previous block's, masked
                        k = num_kept_tokens(n, self.keep_ratios[stage])
                        mask = topk_keep_mask(cls_prev[:, p:].detach(), mask, k)
                    else:
                        log_probs = self.decision[stage](x[:, p:], mask)  # Eq. 1
                        mask = mask * gumbel_keep_decision(log_probs, self.tau)  # Eqs. 2-3
                    keep = torch.cat([prefix_ones, mask], dim=1)
                masks.append(mask)
            scores_next = keep_masks is None and self._scores_next(i)
            if keep is not None or (i == last and self.compute_cls_attn) or scores_next:
                full = keep if keep is not None else x.new_ones(b, t)
                x, attn = block_forward_masked(blk, x, full)
                cls_prev = attn
                if i == last and self.compute_cls_attn:
                    cls_attn = attn
            else:
                x = blk(x)
        x = vit.norm(x)
        return HTSOutput(
            features=pool_tokens(vit, x, keep), tokens=x, keep_masks=masks, cls_attn=cls_attn,
            num_prefix_tokens=p, keep_ratios=self.keep_ratios if self.prune else (),
        )

    def extra_repr(self) -> str:
        return (
            f"keep_ratios={tuple(round(r, 4) for r in self.keep_ratios)}, "
            f"prune_layers={self.prune_layers}, keep_score={self.keep_score!r}, "
            f"tau={self.tau}, prune={self.prune}"
            + (", fused_decision=True" if self.fused_decision else "")
        )

