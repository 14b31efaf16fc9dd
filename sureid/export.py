"""ONNX export of an eval-mode :class:`~sureid.HTSViT` with physical token pruning.

The exported graph contains the decision modules, ``TopK`` and the row gather of
:func:`sureid.models.hts.select_topk_tokens`, so every block after a pruning stage runs on
``P + k_s`` tokens only. ``k_s`` is static (fixed by ``img_size`` and the keep ratios); the
batch dimension can stay dynamic.

Every exported file says how to feed it in its ``metadata_props`` (JSON values, read back
by :func:`read_onnx_metadata` or onnxruntime's ``get_modelmeta().custom_metadata_map``):
``input_size`` ``[H, W]``, ``mean``/``std`` (RGB, on [0, 1] pixels; when given),
``embedding_dim``, ``keep_ratios`` (per pruning stage; ``[]`` keeps every token),
``prune_layers``, ``input_name``/``output_name``, ``quantization`` and ``sureid_version``.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ._atomic import temp_file
from ._checks import (
    check_bool,
    check_int,
    check_output_path,
    check_real,
    check_size,
    is_int,
)
from ._optional import require
from .models.hts_vit import HTSViT

__all__ = [
    "SUPPORTED_OPSETS", "QuantizationReport", "export_onnx", "quantize_onnx", "read_onnx_metadata",
]

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
    if (
        isinstance(sizes, (str, bytes))
        or not isinstance(sizes, Sequence)
        or not all(is_int(b) for b in sizes)
    ):
        raise TypeError(f"verify_batch_sizes must be a sequence of ints, got {sizes!r}")
    if not sizes or min(sizes) < 1:
        raise ValueError(f"verify_batch_sizes must be positive ints, got {sizes!r}")
    return [int(b) for b in sizes]


def _temp_beside(path: Path) -> Path:
    """A new empty file in ``path``'s folder (same file system, so ``os.replace`` is atomic).

    Created ``0o666`` less the umask (:func:`sureid._atomic.temp_file`), not ``tempfile``'s
    ``0600``: the graph renamed onto ``path`` is readable as any file the user writes.
    """
    fd, name = temp_file(path)
    os.close(fd)
    return Path(name)


def _session(ort, model_or_path):
    src = model_or_path if isinstance(model_or_path, (bytes, str)) else str(model_or_path)
    return ort.InferenceSession(src, providers=["CPUExecutionProvider"])


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
        metadata: more ``metadata_props`` (str keys and values); the keys the module
            docstring lists are sureid's and cannot be given here.

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
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = check_output_path("path", path)  # a folder, or below a file: refused before export
    for name, flag in (("dynamic_batch", dynamic_batch), ("verify", verify)):
        check_bool(name, flag)
    atol = check_real("atol", atol, low=0.0, low_open=True)
    sizes = _check_batch_sizes(verify_batch_sizes)
    if quantize not in _QUANTIZE:
        raise ValueError(f"quantize must be one of {_QUANTIZE}, got {quantize!r}")
    img_size = check_size("img_size", img_size)
    _check_model_img_size(model, img_size)
    props = _metadata(model, img_size, mean, std, metadata, quantize)
    require("onnx", purpose="export_onnx")
    ort = require("onnxruntime", purpose="export_onnx(verify=True)") if verify else None
    if quantize is not None:
        _check_quant_args(min_cosine, min_token_overlap)
        require("onnxruntime.quantization", purpose="export_onnx(quantize='int8')")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path)
    tmp_q = _temp_beside(path) if quantize is not None else None
    try:
        _export(model, tmp, img_size, dynamic_batch, opset, verify, sizes, atol, ort)
        _write_metadata(tmp, props)
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


_OWN_KEYS = ("input_size", "mean", "std", "embedding_dim", "keep_ratios", "prune_layers",
             "input_name", "output_name", "quantization", "sureid_version")


def _rgb(name: str, value: object, positive: bool) -> list[float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 3:
        raise TypeError(f"{name} must be 3 numbers (RGB), got {value!r}")
    out = [check_real(f"{name}[{i}]", v, low=0.0 if positive else -math.inf,
                      low_open=positive) for i, v in enumerate(value)]
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def _metadata(model: HTSViT, img_size, mean, std, extra, quantize) -> dict[str, str]:
    """The ``metadata_props`` of an exported file (JSON-encoded values)."""
    from .version import __version__

    if (mean is None) != (std is None):
        raise ValueError("mean and std go together: give both (the model's normalisation) or "
                         "neither")
    props = {
        "input_size": list(img_size),
        "embedding_dim": int(model.embed_dim),
        "keep_ratios": [float(r) for r in model.keep_ratios] if model.prune else [],
        "prune_layers": list(model.prune_layers) if model.prune else [],
        "input_name": "images", "output_name": "embedding",
        "quantization": quantize or "none", "sureid_version": __version__,
    }
    if mean is not None:
        props["mean"], props["std"] = _rgb("mean", mean, False), _rgb("std", std, True)
    out = {k: json.dumps(v) for k, v in props.items()}
    if extra is not None:
        if not isinstance(extra, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
            raise TypeError(f"metadata must be a mapping of str to str, got {extra!r}")
        taken = sorted(set(extra) & set(_OWN_KEYS))
        if taken:
            raise ValueError(f"metadata keys {taken} are written by export_onnx itself; "
                             "give them through its arguments")
        out.update(extra)
    return out


def _write_metadata(path: Path, props: Mapping[str, str]) -> None:
    """Set ``props`` in the ``metadata_props`` of the ONNX file ``path`` (others kept)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    old = {p.key: p.value for p in proto.metadata_props}
    old.update(props)
    del proto.metadata_props[:]
    for key, value in old.items():
        proto.metadata_props.add(key=key, value=value)
    with open(path, "wb") as f:  # the same file: keeps the mode temp_file gave it
        f.write(proto.SerializeToString())


def read_onnx_metadata(path: str | os.PathLike) -> dict[str, object]:
    """The metadata an exported file carries, read with onnxruntime, JSON values decoded.

    Keys whose value is not JSON (added by another tool) come back as strings.

    Example:
        >>> meta = read_onnx_metadata("model.onnx")  # doctest: +SKIP
        >>> meta["input_size"], meta["mean"], meta["embedding_dim"]  # doctest: +SKIP
        ([256, 128], [0.485, 0.456, 0.406], 384)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    ort = require("onnxruntime", purpose="read_onnx_metadata")
    if not Path(path).is_file():
        raise FileNotFoundError(f"ONNX file not found: {str(path)!r}")
    try:
        raw = _session(ort, Path(path)).get_modelmeta().custom_metadata_map
    except Exception as err:  # onnxruntime's own errors name no file
        raise ValueError(f"{str(path)!r} is not an ONNX model onnxruntime can read "
                         f"({type(err).__name__}: {err})") from None
    out: dict[str, object] = {}
    for key, value in raw.items():
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _export(model, path: Path, img_size, dynamic_batch, opset, verify, sizes, atol, ort) -> None:
    """Write the float32 graph to ``path`` and check it against PyTorch."""
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
        session = _session(ort, path)
        for b in sizes if dynamic_batch else sizes[:1]:
            x = torch.randn(b, 3, *img_size, generator=gen, dtype=param.dtype)
            with torch.no_grad():
                ref = model(x.to(param.device)).float().cpu()
            got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0]).float()
            err = (got - ref).abs().max().item()
            if not err <= atol:
                raise RuntimeError(
                    f"onnxruntime output differs from PyTorch at batch {b}: max abs diff "
                    f"{err:.3g} > atol={atol:g}; nothing was written"
                )


def _check_quant_args(min_cosine: object, min_token_overlap: object) -> None:
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


def _with_topk_outputs(onnx, model_path: Path):
    """Serialized model with every TopK output exposed, and the TopK names (graph order)."""
    proto = onnx.load(str(model_path))
    known = {o.name for o in proto.graph.output}
    names = []
    for node in proto.graph.node:
        if node.op_type == "TopK":
            names.append((node.name, node.output[0], node.output[1]))
            for out in node.output[:2]:
                if out not in known:
                    proto.graph.output.append(onnx.helper.make_empty_tensor_value_info(out))
    return proto.SerializeToString(), names


def _run_all(ort, model_bytes: bytes, topk, images: np.ndarray, batch: int = 16):
    session = _session(ort, model_bytes)
    fixed = session.get_inputs()[0].shape[0]
    if isinstance(fixed, int):  # a fixed-batch export: whole batches, images repeated
        batch = fixed
        images = np.resize(images, (-(-len(images) // batch) * batch, *images.shape[1:]))
    wanted = ["embedding"] + [n for _, v, i in topk for n in (v, i)]
    outs = [session.run(wanted, {"images": images[s : s + batch]})
            for s in range(0, len(images), batch)]
    return [np.concatenate([o[j] for o in outs]) for j in range(len(wanted))]


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
    quantised: by default the linear layers, not the patch embedding's ``Conv`` (its
    ``ConvInteger`` ran 2.5x slower than the float32 ``Conv`` in onnxruntime 1.32 on an AVX2
    CPU, docs/deploy.md). Both graphs run on ``verify_images``; the embeddings are
    compared by cosine similarity and, for each pruning stage, the kept token sets by their
    overlap. ``dst`` is written atomically, and only if both checks pass.

    Args:
        src: float32 ``.onnx`` file from :func:`export_onnx`.
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
    if not isinstance(keep_decision_fp32, bool):
        raise TypeError(f"keep_decision_fp32 must be a bool, got {keep_decision_fp32!r}")
    if (isinstance(op_types_to_quantize, str) or not isinstance(op_types_to_quantize, Sequence)
            or not op_types_to_quantize
            or not all(isinstance(t, str) for t in op_types_to_quantize)):
        raise TypeError(
            "op_types_to_quantize must be a non-empty sequence of ONNX op type names such as "
            f"('MatMul', 'Gemm'), got {op_types_to_quantize!r}"
        )
    _check_quant_args(min_cosine, min_token_overlap)
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
    tmp = _temp_beside(dst)
    try:
        quant.quantize_dynamic(src, tmp, weight_type=quant.QuantType.QInt8,
                               op_types_to_quantize=list(op_types_to_quantize),
                               nodes_to_exclude=list(excluded))
        # the source's metadata (input size, mean, std, ...) holds for the int8 graph too
        _write_metadata(tmp, {**{p.key: p.value for p in proto.metadata_props},
                              "quantization": json.dumps("int8")})
        ref_bytes, ref_topk = _with_topk_outputs(onnx, src)
        q_bytes, q_topk = _with_topk_outputs(onnx, tmp)
        if [n for n, _, _ in ref_topk] != [n for n, _, _ in q_topk]:
            raise RuntimeError("quantisation changed the TopK nodes; cannot compare selections")
        ref = _run_all(ort, ref_bytes, ref_topk, images)
        got = _run_all(ort, q_bytes, q_topk, images)
        a, b = ref[0].astype(np.float64), got[0].astype(np.float64)
        cos = (a * b).sum(1) / np.maximum(
            np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30
        )
        overlap = []
        for j in range(len(ref_topk)):
            values, r_idx, q_idx = ref[1 + 2 * j], ref[2 + 2 * j], got[2 + 2 * j]
            if not np.issubdtype(values.dtype, np.floating):
                continue  # the second TopK of a stage sorts the kept indices
            k = r_idx.shape[-1]
            same = [len(np.intersect1d(r, q)) / k
                    for r, q in zip(r_idx.reshape(-1, k), q_idx.reshape(-1, k), strict=True)]
            overlap.append(float(np.mean(same)))
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
