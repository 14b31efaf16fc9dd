"""The slicing bound of an :class:`~sureid.HTSViT`: the fastest any token scoring can run."""

from __future__ import annotations

import torch
from torch import nn

from ..models.hts_vit import HTSViT
from ..models.timm_adapter import embed_tokens, pool_tokens

__all__ = ["SlicingBound"]


class SlicingBound(nn.Module):
    """``model``'s blocks on the token counts it keeps, the tokens simply sliced off.

    Before each pruned block the first ``P + k_s`` tokens are kept by slicing (a view, no
    decision module, top-k or gather), so the blocks see exactly the token counts of
    ``model``'s inference path. No scoring of tokens can make HTS faster than this; timed beside
    ``model`` with :func:`~sureid.engine.measure_throughput`, ``HTS / bound`` is the share of
    the bound that the decisions and gathers leave (``benchmarks/throughput.py``, Table IV's
    speed claim). The embedding is meaningless (it keeps arbitrary tokens); time it, do not
    evaluate it. Shares ``model``'s backbone (no copy), reads its ratios at every call and starts
    in its mode (``train``/``eval`` on the bound switch the model too).

    Args:
        model: an :class:`~sureid.HTSViT`; a stage is sliced where ``model`` prunes
            (``prune`` on, ratio below 1).

    Shapes:
        ``forward(x (B, 3, H, W)) -> (B, C)``, pooled as ``model`` pools.

    Example:
        >>> from sureid import HTSViT, deit_tiny
        >>> model = HTSViT(deit_tiny(img_size=(64, 32), depth=4), keep_ratio=0.5,
        ...                prune_layers=(1, 2)).eval()
        >>> SlicingBound(model)(torch.randn(2, 3, 64, 32)).shape
        torch.Size([2, 192])
    """

    def __init__(self, model: HTSViT) -> None:
        super().__init__()
        if not isinstance(model, HTSViT):
            raise TypeError(f"model must be an HTSViT, got {type(model).__name__}")
        self.model = model
        # start in the model's mode: measure_throughput restores each module's own mode, and
        # a bound in (default) training mode would switch the shared model back to training
        self.train(model.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vit, p = self.model.backbone, self.model.num_prefix_tokens
        x = embed_tokens(vit, x)
        for blk, k in zip(vit.blocks, self.model.kept_per_block(x.shape[1] - p), strict=True):
            if k is not None:
                x = x[:, : p + k]
            x = blk(x)
        return pool_tokens(vit, vit.norm(x))
