"""Feature extraction from images: paths, a folder, PIL images or tensors.

:class:`FeatureExtractor` applies the model's own preprocessing (its
:class:`~sureid.hub.DataConfig`: input size, mean, std), runs batches in eval mode on any
device with an optional progress line and flip test-time augmentation, and returns the
features (and, for HTS models, the kept patch indices of every pruning stage).

Example:
    >>> model = sureid.load("runs/final.pt")  # doctest: +SKIP
    >>> out = FeatureExtractor(model, device="cuda")("data/query/")  # doctest: +SKIP
    >>> out.features.shape, out.paths[0]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ._checks import check_bool, check_device, is_int
from ._image_files import list_images, open_image, to_mode
from ._progress import Progress
from .hub import DataConfig, resolve_data_config
from .models.hts_vit import HTSViT
from .models.reid_model import ReIDModel

__all__ = ["ExtractedFeatures", "FeatureExtractor", "list_images", "preprocess"]


def _to_uint8_chw(image) -> torch.Tensor:
    if isinstance(image, Image.Image):
        arr = np.asarray(to_mode(image, "RGB"))  # 16-bit grey scaled, not clipped to white
        return torch.from_numpy(arr.copy()).permute(2, 0, 1)
    if isinstance(image, torch.Tensor) and image.dtype == torch.uint8 and image.ndim == 3:
        if image.shape[0] != 3:
            raise ValueError(f"uint8 image tensors must be (3, H, W), got {tuple(image.shape)}")
        return image
    raise TypeError(
        f"expected a PIL image or a (3, H, W) uint8 tensor, got {type(image).__name__}"
    )


def preprocess(image, data_config: DataConfig) -> torch.Tensor:
    """One image to the model's input ``(3, H, W)`` float32.

    8-bit RGB (the shared decoder: 16-bit greyscale is scaled, 32-bit ``"I"``/``"F"`` images
    are refused), antialiased bilinear resize to ``data_config.input_size`` on the uint8 image (the
    same numbers as torchvision's ``v2.Resize(antialias=True)`` after ``v2.ToImage()``),
    scale to [0, 1], normalise. The input is not modified.

    Args:
        image: a PIL image or a ``(3, H, W)`` uint8 tensor.
    """
    x = _to_uint8_chw(image)
    size = tuple(data_config.input_size)
    if tuple(x.shape[-2:]) != size:
        x = F.interpolate(x[None], size=size, mode="bilinear", antialias=True,
                          align_corners=False)[0]
    x = x.float().div_(255.0)
    mean = torch.tensor(data_config.mean).view(3, 1, 1)
    std = torch.tensor(data_config.std).view(3, 1, 1)
    return x.sub_(mean).div_(std)


class _Images(Dataset):
    """Paths or PIL images -> preprocessed tensors (picklable for DataLoader workers)."""

    def __init__(self, items: Sequence, data_config: DataConfig) -> None:
        self.items = items
        self.data_config = data_config

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> torch.Tensor:
        item = self.items[i]
        if isinstance(item, (str, os.PathLike)):
            try:
                item = open_image(item)
            except (OSError, ValueError) as e:
                raise ValueError(f"cannot read image {str(item)!r}: {e}") from e
        return preprocess(item, self.data_config)


@dataclass
class ExtractedFeatures:
    """What :class:`FeatureExtractor` returns.

    Attributes:
        features: ``(N, C)`` float32 on the CPU, in input order.
        kept: per pruning stage, ``(N, k_s)`` kept patch indices into the model's patch grid
            (row-major), or ``None`` (not asked for, not an HTS model, or pruning off).
        paths: the image files, in the same order, when the input was paths or a folder.
    """

    features: torch.Tensor
    kept: list[torch.Tensor] | None = None
    paths: list[str] | None = None


def _hts_of(model: nn.Module) -> HTSViT | None:
    if isinstance(model, HTSViT):
        return model
    backbone = getattr(model, "backbone", None)
    return backbone if isinstance(backbone, HTSViT) else None


class FeatureExtractor:
    """Embeddings of images with a trained model, preprocessing included.

    Args:
        model: a :class:`~sureid.ReIDModel` (e.g. from :func:`sureid.load`), an
            :class:`~sureid.HTSViT` or any module mapping ``(B, 3, H, W)`` to ``(B, C)`` in
            eval mode. Moved to ``device``; its train/eval mode is restored after each call.
        device: where the model runs.
        batch_size: images per forward.
        flip: flip test-time augmentation: the mean of the features of each image and of its
            horizontal mirror.
        kept_indices: also return the kept patch indices of HTS models (costs a second
            inference pass of the backbone).
        progress: print a progress line (:class:`sureid.engine.Progress`) on stderr.
        num_workers: DataLoader workers reading image files.
        data_config: preprocessing; default :func:`sureid.hub.resolve_data_config` of the
            model (a loaded model's own, else its input size with ImageNet mean/std).

    Inputs (``extractor(images)``): a folder (searched recursively) or an image path; a
    sequence of paths or PIL images; a PIL image; a uint8 tensor ``(3, H, W)`` or
    ``(B, 3, H, W)`` (preprocessed like an image); a float tensor ``(B, 3, H, W)``, taken as
    already preprocessed model input.

    Example:
        >>> from sureid import HTSViT, deit_tiny
        >>> model = HTSViT(deit_tiny(img_size=(64, 32), patch_size=8, depth=2),
        ...                prune_layers=(1,))
        >>> out = FeatureExtractor(model, kept_indices=True)(
        ...     torch.zeros(2, 3, 128, 64, dtype=torch.uint8))
        >>> out.features.shape, out.kept[0].shape
        (torch.Size([2, 192]), torch.Size([2, 22]))
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
        flip: bool = False,
        kept_indices: bool = False,
        progress: bool = False,
        num_workers: int = 0,
        data_config: DataConfig | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if not is_int(batch_size) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if not is_int(num_workers) or num_workers < 0:
            raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}")
        # "no" or 1 where a bool is meant would switch the option on
        for name, value in (("flip", flip), ("kept_indices", kept_indices),
                            ("progress", progress)):
            check_bool(name, value)
        if data_config is not None and not isinstance(data_config, DataConfig):
            raise TypeError(
                f"data_config must be a sureid.hub.DataConfig or None, got "
                f"{type(data_config).__name__}"
            )
        self.device = check_device("device", device)
        self.data_config = data_config if data_config is not None else resolve_data_config(model)
        self.model = model.to(self.device)
        self.batch_size = int(batch_size)
        self.flip = flip
        self.kept_indices = kept_indices
        self.progress = progress
        self.num_workers = int(num_workers)

    def transform(self, image) -> torch.Tensor:
        """The model's preprocessing of one image (PIL or ``(3, H, W)`` uint8), see
        :func:`preprocess`; usable as an ``ImageDataset`` transform."""
        return preprocess(image, self.data_config)

    def _batches(self, images):
        """``(iterable of (B, 3, H, W) batches, number of batches, paths or None)``."""
        paths = None
        if isinstance(images, (str, os.PathLike)):
            p = Path(images).expanduser()
            if p.is_dir():
                images = list_images(p)
            elif p.is_file():
                images = [p]
            else:
                raise FileNotFoundError(f"no such image or folder: {str(p)!r}")
        if isinstance(images, Image.Image):
            images = [images]
        if isinstance(images, torch.Tensor):
            x = images.detach()
            if x.ndim == 3:
                x = x[None]
            if x.ndim != 4 or x.shape[1] != 3:
                raise ValueError(f"image tensors must be (B, 3, H, W), got {tuple(x.shape)}")
            if x.dtype == torch.uint8:
                x = torch.stack([self.transform(img) for img in x]) if len(x) else x.float()
            elif not x.is_floating_point():
                raise TypeError(f"image tensors must be uint8 or float, got {x.dtype}")
            elif not bool(torch.isfinite(x).all()):
                bad = int((~torch.isfinite(x)).sum())
                raise ValueError(
                    f"image tensors must be finite, got {bad} NaN or infinite value(s) in a "
                    f"{tuple(x.shape)} tensor"
                )
            chunks = x.split(self.batch_size)
            return chunks, len(chunks), None
        if isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
            raise TypeError(
                "images must be a folder, a path, a sequence of paths or PIL images, a PIL "
                f"image or a tensor, got {type(images).__name__}"
            )
        items = list(images)
        if not items:
            raise ValueError("no images given")
        if all(isinstance(i, (str, os.PathLike)) for i in items):
            for i in items:
                if not Path(i).is_file():
                    raise FileNotFoundError(f"image not found: {str(i)!r}")
            paths = [str(i) for i in items]
        elif not all(isinstance(i, Image.Image) for i in items):
            raise TypeError("a sequence of images must hold only paths or only PIL images")
        loader = DataLoader(
            _Images(items, self.data_config), batch_size=self.batch_size,
            num_workers=self.num_workers,
        )
        return loader, len(loader), paths

    @torch.inference_mode()
    def __call__(self, images) -> ExtractedFeatures:
        batches, total, paths = self._batches(images)
        hts = _hts_of(self.model) if self.kept_indices else None
        was_training = self.model.training
        self.model.eval()
        feats: list[torch.Tensor] = []
        kept: list[list[torch.Tensor]] = []
        try:
            for x in Progress(batches, desc="extract", total=total, enabled=self.progress):
                x = x.to(self.device, torch.float32, non_blocking=True)
                f = self._forward(x)
                if self.flip:
                    f = (f + self._forward(x.flip(-1))) / 2
                feats.append(f.float().cpu())
                if hts is not None:
                    _, k = hts.forward_features(x, return_indices=True)
                    kept.append([t.cpu() for t in k])
        finally:
            self.model.train(was_training)
        if not feats:
            raise ValueError("no images given")
        stages = [torch.cat(s) for s in zip(*kept, strict=True)] if kept else []
        return ExtractedFeatures(torch.cat(feats), stages or None, paths)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if not isinstance(out, torch.Tensor) or out.ndim != 2:
            what = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise TypeError(f"the model must return (B, C) features in eval mode, got {what}")
        return out


def describe(model: nn.Module) -> str:
    """One line about a model: class, input size, feature width, HTS stages."""
    hts = _hts_of(model)
    cfg = resolve_data_config(model)
    parts = [type(model).__name__, f"input {cfg.input_size[0]}x{cfg.input_size[1]}"]
    if isinstance(model, ReIDModel):
        parts.append(f"{model.embed_dim}-d ({model.eval_feature} BN), {model.num_classes} ids")
    if hts is not None:
        ratios = ", ".join(f"{r:.3g}" for r in hts.keep_ratios)
        parts.append(
            f"HTS {'on' if hts.prune else 'off'} (keep {ratios} before blocks "
            f"{list(hts.prune_layers)})"
        )
    return ", ".join(parts)
