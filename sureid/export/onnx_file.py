"""The exported file: its ``metadata_props``, a temporary file beside it, an onnxruntime session.

Every exported file says how to feed it in its ``metadata_props`` (JSON values, read back
by :func:`read_onnx_metadata` or onnxruntime's ``get_modelmeta().custom_metadata_map``):
``input_size`` ``[H, W]``, ``mean``/``std`` (RGB, on [0, 1] pixels; when given),
``embedding_dim``, ``keep_ratios`` (per pruning stage; ``[]`` keeps every token),
``prune_layers``, ``input_name``/``output_name``, ``quantization`` and ``sureid_version``
(:data:`OWN_KEYS`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .._atomic import temp_file
from .._checks import check_real
from .._optional import require
from ..models.hts_vit import HTSViT

__all__ = ["OWN_KEYS", "build_metadata", "read_onnx_metadata", "session", "temp_beside",
           "write_metadata"]

OWN_KEYS = ("input_size", "mean", "std", "embedding_dim", "keep_ratios", "prune_layers",
            "input_name", "output_name", "quantization", "sureid_version")


def temp_beside(path: Path) -> Path:
    """A new empty file in ``path``'s folder (same file system, so ``os.replace`` is atomic).

    Created ``0o666`` less the umask (:func:`sureid._atomic.temp_file`), not ``tempfile``'s
    ``0600``: the graph renamed onto ``path`` is readable as any file the user writes.
    """
    fd, name = temp_file(path)
    os.close(fd)
    return Path(name)


def session(ort, model_or_path):
    """An onnxruntime CPU session on a file path or a serialized model (``bytes``)."""
    src = model_or_path if isinstance(model_or_path, (bytes, str)) else str(model_or_path)
    return ort.InferenceSession(src, providers=["CPUExecutionProvider"])


def _rgb(name: str, value: object, positive: bool) -> list[float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 3:
        raise TypeError(f"{name} must be 3 numbers (RGB), got {value!r}")
    out = [check_real(f"{name}[{i}]", v, low=0.0 if positive else -math.inf,
                      low_open=positive) for i, v in enumerate(value)]
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def build_metadata(model: HTSViT, img_size, mean, std, extra, quantize) -> dict[str, str]:
    """The ``metadata_props`` of an exported file (JSON-encoded values)."""
    from ..version import __version__

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
        taken = sorted(set(extra) & set(OWN_KEYS))
        if taken:
            raise ValueError(f"metadata keys {taken} are written by export_onnx itself; "
                             "give them through its arguments")
        out.update(extra)
    return out


def write_metadata(path: Path, props: Mapping[str, str]) -> None:
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
        raw = session(ort, Path(path)).get_modelmeta().custom_metadata_map
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
