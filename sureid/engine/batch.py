"""What a training batch is: images and their identity labels, from a loader's batch."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["split_batch"]


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images (B', 3, H, W), labels (B',))`` from a loader batch.

    Accepts an ``(images, pids, ...)`` tuple/list, or a batch with a ``joint()`` method
    returning ``(images, (pids, ...))``, such as a :class:`~sureid.DualBatch` (both halves
    stacked, ``B' = 2B``, the paper's dual-batch scheme).
    """
    joint = getattr(batch, "joint", None)
    if callable(joint):
        images, targets = joint()
        return images, targets[0]
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        images, labels = batch[0], batch[1]
        if (
            isinstance(images, torch.Tensor)
            and isinstance(labels, torch.Tensor)
            and labels.ndim == images.ndim == 4
        ):
            raise TypeError(
                "a training batch must be (images (B, 3, H, W), pids (B,), ...), got two image "
                f"tensors {tuple(images.shape)} and {tuple(labels.shape)}: this looks like "
                "sureid.DualViewDataset items merged by the default collate; build the "
                "DataLoader with collate_fn=sureid.dual_collate"
            )
        if isinstance(labels, torch.Tensor) and (
            labels.ndim != 1 or labels.is_floating_point() or labels.is_complex()
        ):
            raise TypeError(
                "a training batch must be (images (B, 3, H, W), pids (B,), ...) with integer "
                f"pids, got pids of shape {tuple(labels.shape)} and dtype {labels.dtype}"
            )
        return images, labels
    raise TypeError(
        "a training batch must be a sureid.DualBatch or an (images, pids, ...) tuple, "
        f"got {type(batch).__name__}"
    )
