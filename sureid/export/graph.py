"""ONNX export of an eval-mode :class:`~sureid.HTSViT` with physical token pruning."""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from .._checks import check_bool, check_int, check_output_path, check_real, check_size
from .._optional import require
from ..models.hts_vit import HTSViT
from .onnx_file import build_metadata, temp_beside, write_metadata
from .quantize import check_quant_args, quantize_onnx
from .verify import check_against_torch

__all__ = ["SUPPORTED_OPSETS", "export_onnx"]

_QUANTIZE = (None, "int8")

# LayerNormalization is a single op from 17 on; scaled_dot_product_attention needs >= 14.
# 20 is the newest opset the TorchScript exporter writes.
SUPPORTED_OPSETS = tuple(range(14, 21))


def _check_model_img_size(model: HTSViT, img_size: tuple[int, int]) -> None:
    pe = model.backbone.patch_embed
    fixed = getattr(pe, "img_size", None)
    dynamic = getattr(model.backbone, "dynamic_img_size", False)
    if fixed is not None and not dynamic and tuple(fixed) != img_size:
        raise ValueError(
            f"img_size must match the model's input size {tuple(fixed)} (H, W) (built without "
            f"dynamic_img_size), got {img_size}"
        )
    if fixed is not None and dynamic and tuple(fixed) != img_size:
        # timm resamples the position embedding with antialiased bicubic interpolation at any
        # other size, an operator ONNX does not have; the exporter would fail with a graph dump
        raise ValueError(
            f"a dynamic_img_size model exports only at its own input size {tuple(fixed)} (H, W), "
            f"got {img_size}: its position embedding would be resampled with antialiased "
            "bicubic interpolation, which ONNX cannot express. Build the model at the target "
            "size (timm.create_model(..., img_size=...) resamples the weights once) and export that"
        )
    ph, pw = getattr(pe, "patch_size", (None, None))
    if ph is None or img_size[0] % ph or img_size[1] % pw:
        raise ValueError(f"img_size {img_size} must be divisible by the patch size {(ph, pw)}")


def _check_batch_sizes(sizes: object) -> list[int]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise TypeError(f"verify_batch_sizes must be a sequence of ints, got {sizes!r}")
    if not sizes:
        raise ValueError(f"verify_batch_sizes must hold at least one batch size, got {sizes!r}")
    return [check_int(f"verify_batch_sizes[{i}]", b, low=1) for i, b in enumerate(sizes)]


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
    quantize: str | None = None,
    verify_images: torch.Tensor | None = None,
    min_cosine: float = 0.99,
    min_token_overlap: float = 0.8,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Export an eval-mode ``HTSViT`` to ONNX: images ``(B, 3, H, W)`` -> embedding ``(B, C)``.

    The graph computes only the kept tokens: each active stage is a decision MLP, ``TopK``
    (``k_s = num_kept_tokens(N, ratio_s)``) and a ``Gather`` of the kept rows, and the later
    blocks' MatMuls run on ``P + k_s`` tokens. Uses the TorchScript exporter
    (``torch.onnx.export(..., dynamo=False)``), which needs only the ``onnx`` package; its
    expected tracer and deprecation warnings are silenced because the result is checked
    numerically instead (``verify``). Input ``"images"``, output ``"embedding"``.

    The file appears at ``path`` only once every check has passed (it is written to a
    temporary file in the same folder and moved into place), so a failed export or
    verification leaves an existing file untouched.

    With ``quantize="int8"`` the verified float32 graph is quantised with onnxruntime's
    dynamic int8 quantisation and checked with :func:`quantize_onnx` (embedding cosine and
    kept-token overlap against the float32 graph) before it is moved to ``path``.

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
        quantize: ``None`` (float32) or ``"int8"`` (see :func:`quantize_onnx`).
        verify_images: ``(B, 3, H, W)`` images for the int8 checks (default: 8 seeded
            random images; real images make the token-overlap figure meaningful).
        min_cosine, min_token_overlap: int8 acceptance thresholds (:func:`quantize_onnx`).
        mean, std: the RGB normalisation the model expects (3 finite values each, std
            positive; ``ReIDModel.data_config.mean``/``.std``), recorded in the file's
            metadata; both or neither.
        metadata: more ``metadata_props`` (str keys and values); the keys
            :mod:`sureid.export.onnx_file` lists are sureid's and cannot be given here.

    Returns:
        ``Path`` of the written file.

    Raises:
        TypeError: ``model`` is not an ``HTSViT``; bad argument types.
        ValueError: ``model`` in training mode, unsupported ``opset``, bad ``img_size`` (also
            a ``dynamic_img_size`` model at another size than its own), bad ``quantize``.
        ImportError: ``onnx``/``onnxruntime`` (or ``onnxruntime.quantization``) missing
            (``pip install 'sureid[onnx]'``).
        RuntimeError: ``verify`` found a difference above ``atol``, or the int8 graph failed
            its checks; ``path`` is left as it was.

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
    check_int("opset", opset)
    if opset not in SUPPORTED_OPSETS:
        raise ValueError(
            f"opset must be in {SUPPORTED_OPSETS[0]}..{SUPPORTED_OPSETS[-1]}, got {opset}"
        )
    path = check_output_path("path", path)  # a folder, or below a file: refused before export
    for name, flag in (("dynamic_batch", dynamic_batch), ("verify", verify)):
        check_bool(name, flag)
    atol = check_real("atol", atol, low=0.0, low_open=True)
    sizes = _check_batch_sizes(verify_batch_sizes)
    if quantize not in _QUANTIZE:
        raise ValueError(f"quantize must be one of {_QUANTIZE}, got {quantize!r}")
    img_size = check_size("img_size", img_size)
    _check_model_img_size(model, img_size)
    props = build_metadata(model, img_size, mean, std, metadata, quantize)
    require("onnx", purpose="export_onnx")
    ort = require("onnxruntime", purpose="export_onnx(verify=True)") if verify else None
    if quantize is not None:
        check_quant_args(min_cosine, min_token_overlap)
        require("onnxruntime.quantization", purpose="export_onnx(quantize='int8')")

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)
    tmp_q = temp_beside(path) if quantize is not None else None
    try:
        gen = torch.Generator().manual_seed(0)  # leaves the caller's RNG stream alone
        _write_graph(model, tmp, img_size, dynamic_batch, opset, sizes, gen)
        if verify:
            check_against_torch(ort, model, tmp, img_size,
                                sizes if dynamic_batch else sizes[:1], atol, gen)
        write_metadata(tmp, props)
        if quantize is not None:
            images = verify_images
            if images is None:
                gen = torch.Generator().manual_seed(1)
                images = torch.randn(8, 3, *img_size, generator=gen)
            quantize_onnx(tmp, tmp_q, images, min_cosine=min_cosine,
                          min_token_overlap=min_token_overlap)
            os.replace(tmp_q, path)
        else:
            os.replace(tmp, path)
    finally:
        for t in (tmp, tmp_q):
            if t is not None:
                t.unlink(missing_ok=True)
    return path


def _write_graph(model: HTSViT, path: Path, img_size: tuple[int, int], dynamic_batch: bool,
                 opset: int, sizes: list[int], gen: torch.Generator) -> None:
    """Trace ``model`` on an example batch drawn from ``gen`` and write its graph to ``path``."""
    param = next(model.parameters())
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
