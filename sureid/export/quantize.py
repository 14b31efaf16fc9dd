"""Dynamic int8 quantisation of an exported graph, accepted only if it agrees with float32."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._checks import check_bool, check_output_path, check_real
from .._optional import require
from .onnx_file import temp_beside, write_metadata
from .verify import compare_graphs

__all__ = ["QuantizationReport", "check_quant_args", "quantize_onnx"]


def check_quant_args(min_cosine: object, min_token_overlap: object) -> None:
    """The int8 acceptance thresholds: ``min_cosine`` in (-1, 1], ``min_token_overlap`` <= 1."""
    check_real("min_cosine", min_cosine, low=-1.0, high=1.0, low_open=True)
    check_real("min_token_overlap", min_token_overlap, high=1.0, low_open=True)


@dataclass(frozen=True)
class QuantizationReport:
    """How an int8 graph agrees with its float32 source on the same images.

    Attributes:
        path: the int8 file.
        num_images: images compared.
        min_cosine, mean_cosine: embedding cosine similarity per image, lowest and mean.
        token_overlap: per pruning stage (graph order), the mean share of the ``k_s`` tokens
            kept by the int8 graph that the float32 graph keeps too (1.0 = same selection);
            empty for a dense model.
        excluded_nodes: nodes left in float32 (the decision modules' MatMuls by default).
    """

    path: Path
    num_images: int
    min_cosine: float
    mean_cosine: float
    token_overlap: tuple[float, ...]
    excluded_nodes: tuple[str, ...]


def quantize_onnx(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    verify_images: torch.Tensor | np.ndarray,
    *,
    min_cosine: float = 0.99,
    min_token_overlap: float = 0.8,
    keep_decision_fp32: bool = True,
    op_types_to_quantize: Sequence[str] = ("MatMul", "Gemm"),
) -> QuantizationReport:
    """Dynamic int8 quantisation of an exported graph, checked against the float32 graph.

    Weights of the MatMuls become int8 and activations are quantised per call
    (``onnxruntime.quantization.quantize_dynamic``). The decision modules' MatMuls stay in
    float32 by default: they are a few percent of the FLOPs and the ``TopK`` on their scores
    decides which tokens survive. Only the op types in ``op_types_to_quantize`` are
    quantised: by default the linear layers, not the patch embedding's ``Conv``, whose int8
    form (``ConvInteger``) ran slower than float32 where docs/deploy.md measured it. Both
    graphs run on ``verify_images``; the embeddings are compared by cosine similarity and, for
    each pruning stage, the kept token sets by their overlap. ``dst`` is written atomically,
    and only if both checks pass.

    Args:
        src: float32 ``.onnx`` file from :func:`~sureid.export.export_onnx`.
        dst: output file (may equal ``src``; replaced only after the checks pass).
        verify_images: ``(B, 3, H, W)`` images, normalised as for the model (real images
            give a meaningful token overlap; random ones a pessimistic one).
        min_cosine: lowest allowed per-image embedding cosine.
        min_token_overlap: lowest allowed mean kept-token overlap of any stage.
        keep_decision_fp32: leave the decision modules' MatMuls unquantised.
        op_types_to_quantize: ONNX op types to quantise (onnxruntime's argument of the same
            name), e.g. ``("MatMul", "Gemm", "Conv")`` to quantise the patch embedding too.

    Returns:
        :class:`QuantizationReport`.

    Raises:
        ImportError: ``onnx``, ``onnxruntime`` or ``onnxruntime.quantization`` missing
            (``pip install 'sureid[onnx]'``).
        TypeError, ValueError: bad arguments.
        RuntimeError: a check failed (the figures are in the message); ``dst`` untouched.

    Example:
        >>> export_onnx(model, "fp32.onnx")  # doctest: +SKIP
        >>> quantize_onnx("fp32.onnx", "int8.onnx", images).min_cosine  # doctest: +SKIP
        0.9987
    """
    for name, value in (("src", src), ("dst", dst)):
        if not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"{name} must be a str or os.PathLike, got {type(value).__name__}")
    check_bool("keep_decision_fp32", keep_decision_fp32)
    if (isinstance(op_types_to_quantize, str) or not isinstance(op_types_to_quantize, Sequence)
            or not op_types_to_quantize
            or not all(isinstance(t, str) for t in op_types_to_quantize)):
        raise TypeError(
            "op_types_to_quantize must be a non-empty sequence of ONNX op type names such as "
            f"('MatMul', 'Gemm'), got {op_types_to_quantize!r}"
        )
    check_quant_args(min_cosine, min_token_overlap)
    if isinstance(verify_images, torch.Tensor):
        verify_images = verify_images.detach().cpu().float().numpy()
    images = np.ascontiguousarray(verify_images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[0] < 1:
        raise ValueError(f"verify_images must be (B, 3, H, W) with B >= 1, got {images.shape}")
    if not np.isfinite(images).all():
        raise ValueError("verify_images must be finite, got NaN or infinite values")
    onnx = require("onnx", purpose="quantize_onnx")
    ort = require("onnxruntime", purpose="quantize_onnx")
    quant = require("onnxruntime.quantization", purpose="quantize_onnx")
    src = Path(src)
    if not src.is_file():
        raise ValueError(f"src {str(src)!r} is not a file")
    dst = check_output_path("dst", dst)  # may be src itself: replaced after the checks

    try:
        proto = onnx.load(str(src), load_external_data=False)
    except Exception as err:  # protobuf's DecodeError and friends, which name no file
        raise ValueError(
            f"src {str(src)!r} is not an ONNX model file ({type(err).__name__}: {err})"
        ) from err
    if not proto.graph.node:
        raise ValueError(f"src {str(src)!r} is not an ONNX model file (its graph is empty)")
    excluded = tuple(
        n.name for n in proto.graph.node
        if keep_decision_fp32 and n.op_type in ("MatMul", "Gemm") and "/decision" in n.name
    )
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(dst)
    try:
        quant.quantize_dynamic(src, tmp, weight_type=quant.QuantType.QInt8,
                               op_types_to_quantize=list(op_types_to_quantize),
                               nodes_to_exclude=list(excluded))
        # the source's metadata (input size, mean, std, ...) holds for the int8 graph too
        write_metadata(tmp, {**{p.key: p.value for p in proto.metadata_props},
                             "quantization": json.dumps("int8")})
        cos, overlap = compare_graphs(onnx, ort, src, tmp, images)
        report = QuantizationReport(
            path=dst, num_images=len(images), min_cosine=float(cos.min()),
            mean_cosine=float(cos.mean()), token_overlap=tuple(overlap), excluded_nodes=excluded,
        )
        if not report.min_cosine >= min_cosine or any(o < min_token_overlap for o in overlap):
            raise RuntimeError(
                f"int8 graph failed its checks on {len(images)} images: embedding cosine min "
                f"{report.min_cosine:.4f} (need >= {min_cosine:g}), kept-token overlap per "
                f"stage {[round(o, 3) for o in overlap]} (need >= {min_token_overlap:g}); "
                f"{str(dst)!r} was not written"
            )
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return report
