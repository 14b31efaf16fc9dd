"""ONNX export of an eval-mode :class:`~sureid.HTSViT` with physical token pruning.

The exported graph contains the decision modules, ``TopK`` and the row gather of
:func:`sureid.models.hts.select_topk_tokens`, so every block after a pruning stage runs on
``P + k_s`` tokens only. ``k_s`` is static (fixed by ``img_size`` and the keep ratios); the
batch dimension can stay dynamic.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from ._optional import require
from .models.hts_vit import HTSViT

__all__ = ["SUPPORTED_OPSETS", "export_onnx"]

# LayerNormalization is a single op from 17 on; scaled_dot_product_attention needs >= 14.
# 20 is the newest opset the TorchScript exporter writes.
SUPPORTED_OPSETS = tuple(range(14, 21))


def _check_img_size(img_size: object) -> tuple[int, int]:
    if (
        not isinstance(img_size, Sequence)
        or isinstance(img_size, str)
        or len(img_size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in img_size)
    ):
        raise TypeError(f"img_size must be a pair of ints (H, W), got {img_size!r}")
    if min(img_size) < 1:
        raise ValueError(f"img_size must be positive, got {tuple(img_size)}")
    return int(img_size[0]), int(img_size[1])


def _check_model_img_size(model: HTSViT, img_size: tuple[int, int]) -> None:
    pe = model.backbone.patch_embed
    fixed = getattr(pe, "img_size", None)
    dynamic = getattr(model.backbone, "dynamic_img_size", False)
    if fixed is not None and not dynamic and tuple(fixed) != img_size:
        raise ValueError(
            f"img_size must match the model's input size {tuple(fixed)} (H, W) (built without "
            f"dynamic_img_size), got {img_size}"
        )
    ph, pw = getattr(pe, "patch_size", (None, None))
    if ph is None or img_size[0] % ph or img_size[1] % pw:
        raise ValueError(f"img_size {img_size} must be divisible by the patch size {(ph, pw)}")


def export_onnx(
    model: HTSViT,
    path: str | os.PathLike,
    img_size: Sequence[int] = (256, 128),
    *,
    dynamic_batch: bool = True,
    opset: int = 17,
    verify: bool = True,
    verify_batch_sizes: Sequence[int] = (1, 2),
    atol: float = 1e-4,
) -> Path:
    """Export an eval-mode ``HTSViT`` to ONNX: images ``(B, 3, H, W)`` -> embedding ``(B, C)``.

    The graph computes only the kept tokens: each active stage is a decision MLP, ``TopK``
    (``k_s = num_kept_tokens(N, ratio_s)``) and a ``Gather`` of the kept rows, and the later
    blocks' MatMuls run on ``P + k_s`` tokens. Uses the TorchScript exporter
    (``torch.onnx.export(..., dynamo=False)``), which needs only the ``onnx`` package; its
    expected tracer and deprecation warnings are silenced because the result is checked
    numerically instead (``verify``). Input ``"images"``, output ``"embedding"``.

    Args:
        model: an :class:`~sureid.HTSViT` in eval mode (deploy ``reid_model.backbone``).
        path: output ``.onnx`` file; parent folders are created.
        img_size: ``(H, W)``; must be the model's input size unless it was built with
            ``dynamic_img_size``.
        dynamic_batch: leave the batch dimension symbolic (one file serves any ``B``).
        opset: ONNX opset, one of :data:`SUPPORTED_OPSETS`.
        verify: run the file with onnxruntime (CPU) and compare with PyTorch.
        verify_batch_sizes: batch sizes checked by ``verify`` (only the export batch size
            when ``dynamic_batch=False``).
        atol: largest allowed absolute difference in ``verify``.

    Returns:
        ``Path`` of the written file.

    Raises:
        TypeError: ``model`` is not an ``HTSViT``; bad argument types.
        ValueError: ``model`` in training mode, unsupported ``opset``, bad ``img_size``.
        ImportError: ``onnx``/``onnxruntime`` missing (``pip install 'sureid[onnx]'``).
        RuntimeError: ``verify`` found a difference above ``atol``.

    Example:
        >>> model = sureid.HTSViT(sureid.deit_small(img_size=(256, 128))).eval()  # doctest: +SKIP
        >>> export_onnx(model, "sureid.onnx", (256, 128))  # doctest: +SKIP
    """
    if not isinstance(model, HTSViT):
        hint = " (for a ReIDModel pass model.backbone)" if hasattr(model, "backbone") else ""
        raise TypeError(
            f"model must be a sureid.HTSViT{hint}, "
            f"got {type(model).__module__}.{type(model).__name__}"
        )
    if model.training:
        raise ValueError(
            "model must be in eval mode (the training forward masks tokens instead of "
            "dropping them and samples Gumbel noise); call model.eval() before export_onnx"
        )
    if isinstance(opset, bool) or not isinstance(opset, int):
        raise TypeError(f"opset must be an int, got {type(opset).__name__} {opset!r}")
    if opset not in SUPPORTED_OPSETS:
        raise ValueError(
            f"opset must be in {SUPPORTED_OPSETS[0]}..{SUPPORTED_OPSETS[-1]}, got {opset}"
        )
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    for name, flag in (("dynamic_batch", dynamic_batch), ("verify", verify)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {flag!r}")
    if not atol > 0:
        raise ValueError(f"atol must be > 0, got {atol!r}")
    sizes = [int(b) for b in verify_batch_sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"verify_batch_sizes must be positive ints, got {verify_batch_sizes!r}")
    img_size = _check_img_size(img_size)
    _check_model_img_size(model, img_size)
    require("onnx", purpose="export_onnx")
    ort = require("onnxruntime", purpose="export_onnx(verify=True)") if verify else None

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    param = next(model.parameters())
    gen = torch.Generator().manual_seed(0)  # leaves the caller's RNG stream alone
    example = torch.randn(max(2, sizes[0]) if dynamic_batch else sizes[0], 3, *img_size,
                          generator=gen, dtype=param.dtype).to(param.device)
    # torch < 2.5 has no `dynamo` argument (and only the TorchScript exporter)
    has_dynamo = "dynamo" in inspect.signature(torch.onnx.export).parameters
    legacy = {"dynamo": False} if has_dynamo else {}
    with warnings.catch_warnings():
        # Expected: TracerWarnings where the tracer freezes static sizes (k_s is a Python int
        # by design) and the TorchScript exporter's deprecation notice (the dynamo exporter
        # needs onnxscript). Correctness is checked against PyTorch in `verify`.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (example,),
            str(path),
            **legacy,
            opset_version=opset,
            input_names=["images"],
            output_names=["embedding"],
            dynamic_axes=(
                {"images": {0: "batch"}, "embedding": {0: "batch"}} if dynamic_batch else None
            ),
            do_constant_folding=True,
        )
    if verify:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for b in sizes if dynamic_batch else sizes[:1]:
            x = torch.randn(b, 3, *img_size, generator=gen, dtype=param.dtype)
            with torch.no_grad():
                ref = model(x.to(param.device)).float().cpu()
            got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0]).float()
            err = (got - ref).abs().max().item()
            if not err <= atol:
                raise RuntimeError(
                    f"onnxruntime output differs from PyTorch at batch {b}: max abs diff "
                    f"{err:.3g} > atol={atol:g} ({path})"
                )
    return path
