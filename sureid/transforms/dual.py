"""The paper's dual-batch scheme (Sec. III-C): every image yields two differently augmented views.

View 1: common augmentation + random erasing + RandomPatch. View 2: common augmentation +
NODA. :class:`DualViewDataset` makes both per item and :func:`dual_collate` stacks them
into a :class:`DualBatch` whose labels are aligned with both halves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from torch.utils.data import Dataset, default_collate

from .._checks import check_size
from .._optional import require

__all__ = ["DualBatch", "DualViewDataset", "dual_collate", "paper_dual_views"]


class DualBatch(NamedTuple):
    """Both halves of a dual batch.

    Attributes:
        first: ``(B, C, H, W)`` view 1 (common + random erasing + RandomPatch).
        second: ``(B, C, H, W)`` view 2 (common + NODA), row ``i`` is the same item as
            ``first[i]``.
        targets: the item's other fields collated, e.g. ``(pids (B,), camids (B,))``;
            they label both halves.
    """

    first: torch.Tensor
    second: torch.Tensor
    targets: tuple[Any, ...]

    @property
    def labels(self) -> Any:
        """The first target field (the identity labels in a ReID dataset), shape ``(B,)``."""
        if not self.targets:
            raise ValueError("this DualBatch has no targets (the dataset items had no labels)")
        return self.targets[0]

    def joint(self) -> tuple[torch.Tensor, tuple[Any, ...]]:
        """One forward pass for both halves: images ``(2B, C, H, W)`` = [first; second] and
        every target repeated to length ``2B`` in the same order."""
        images = torch.cat([self.first, self.second])
        targets = tuple(
            torch.cat([t, t]) if isinstance(t, torch.Tensor) else [*t, *t] for t in self.targets
        )
        return images, targets


class DualViewDataset(Dataset):
    """Wrap a dataset so each item gives two independently augmented views of its image.

    Args:
        dataset: map-style dataset whose items are ``image`` or ``(image, *targets)``
            (e.g. ``(img, pid, camid)``).
        first: transform for view 1 (e.g. common + RandomPatch + random erasing).
        second: transform for view 2 (e.g. common + NODA).
        shared: optional transform applied once before both views (e.g. decoding).

    Items are ``(view1, view2, *targets)``; use :func:`dual_collate` in the DataLoader.

    Example:
        >>> items = [(torch.zeros(3, 8, 4), 7)]
        >>> ds = DualViewDataset(items, first=lambda x: x, second=lambda x: x + 1)
        >>> v1, v2, pid = ds[0]
        >>> pid, float(v2.max())
        (7, 1.0)
    """

    def __init__(
        self,
        dataset: Sequence[Any] | Dataset,
        first: Callable[[Any], Any],
        second: Callable[[Any], Any],
        *,
        shared: Callable[[Any], Any] | None = None,
    ) -> None:
        for name, fn in (("first", first), ("second", second)):
            if not callable(fn):
                raise TypeError(f"{name} must be a callable transform, got {type(fn).__name__}")
        if shared is not None and not callable(shared):
            raise TypeError(f"shared must be callable or None, got {type(shared).__name__}")
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError(
                f"dataset must be map-style (with __getitem__ and __len__), "
                f"got {type(dataset).__name__}"
            )
        self.dataset = dataset
        self.first = first
        self.second = second
        self.shared = shared

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        item = self.dataset[index]
        if isinstance(item, (tuple, list)):
            if not item:
                raise ValueError(f"dataset item {index} is empty")
            image, targets = item[0], tuple(item[1:])
        else:
            image, targets = item, ()
        if self.shared is not None:
            image = self.shared(image)
        return (self.first(image), self.second(image), *targets)


def dual_collate(batch: Sequence[tuple[Any, ...]]) -> DualBatch:
    """Collate ``DualViewDataset`` items into a :class:`DualBatch`.

    Args:
        batch: items ``(view1, view2, *targets)``; views must be tensors ``(C, H, W)``
            of one shape (end both transforms with a to-tensor step).

    Returns:
        ``DualBatch(first (B, C, H, W), second (B, C, H, W), targets)``.

    Example:
        >>> b = dual_collate([(torch.zeros(3, 8, 4), torch.ones(3, 8, 4), 5)] * 2)
        >>> b.first.shape, b.labels.tolist(), b.joint()[0].shape
        (torch.Size([2, 3, 8, 4]), [5, 5], torch.Size([4, 3, 8, 4]))
    """
    if len(batch) == 0:
        raise ValueError("dual_collate got an empty batch")
    widths = {len(item) for item in batch}
    if len(widths) != 1 or min(widths) < 2:
        raise ValueError(
            "dual_collate expects items (view1, view2, *targets) of one length, "
            f"got lengths {sorted(widths)}"
        )
    for k, name in ((0, "view1"), (1, "view2")):
        bad = next((item[k] for item in batch if not isinstance(item[k], torch.Tensor)), None)
        if bad is not None:
            raise TypeError(
                f"dual_collate: {name} must be a tensor, got {type(bad).__name__}; "
                "end the view transform with a to-tensor step (e.g. v2.ToImage + v2.ToDtype)"
            )
    first = torch.stack([item[0].as_subclass(torch.Tensor) for item in batch])
    second = torch.stack([item[1].as_subclass(torch.Tensor) for item in batch])
    n_targets = len(batch[0]) - 2
    targets = tuple(default_collate([item[2 + j] for item in batch]) for j in range(n_targets))
    return DualBatch(first, second, targets)


def paper_dual_views(
    noda: Callable[[Any], Any],
    *,
    size: tuple[int, int] = (256, 128),
    padding: int = 10,
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406),
    std: tuple[float, float, float] = (0.229, 0.224, 0.225),
    random_patch: Callable[[Any], Any] | None = None,
    erasing_p: float = 0.5,
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """The paper's two view transforms built with torchvision v2 (extra ``sureid[vision]``).

    Common: ToImage, Resize(size), RandomHorizontalFlip, Pad(padding), RandomCrop(size).
    View 1: common, RandomPatch (``random_patch``, default ``RandomPatch()``), float,
    Normalize(mean, std), random erasing (:func:`reid_random_erasing` with ``erasing_p``).
    View 2: common, ``noda`` on uint8, float, Normalize. Both give float ``(3, H, W)``.

    Returns:
        ``(first, second)``, e.g. for ``DualViewDataset(ds, first, second)``.
    """
    from .random_patch import RandomPatch, reid_random_erasing

    v2 = require("torchvision.transforms.v2", purpose="paper_dual_views")
    size = check_size("size", size)

    def common() -> list[Any]:
        return [
            v2.ToImage(),
            v2.Resize(list(size), antialias=True),
            v2.RandomHorizontalFlip(0.5),
            v2.Pad(padding),
            v2.RandomCrop(list(size)),
        ]

    to_float = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    first = v2.Compose([
        *common(),
        random_patch if random_patch is not None else RandomPatch(),
        *to_float,
        reid_random_erasing(erasing_p),
    ])
    second = v2.Compose([*common(), noda, *to_float])
    return first, second
