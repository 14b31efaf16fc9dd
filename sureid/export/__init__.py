"""ONNX export of an eval-mode :class:`~sureid.HTSViT` with physical token pruning.

The exported graph contains the decision modules, ``TopK`` and the row gather of
:func:`sureid.models.hts.select_topk_tokens`, so every block after a pruning stage runs on
``P + k_s`` tokens only. ``k_s`` is static (fixed by ``img_size`` and the keep ratios); the
batch dimension can stay dynamic.

Modules: ``graph`` (:func:`export_onnx`: argument checks, tracing, the atomic write),
``verify`` (the graph against PyTorch; a second graph against the first), ``quantize``
(:func:`quantize_onnx`, dynamic int8) and ``onnx_file`` (the file's ``metadata_props``,
:func:`read_onnx_metadata`, temporary files, onnxruntime sessions).
"""

from .graph import SUPPORTED_OPSETS, export_onnx
from .onnx_file import read_onnx_metadata
from .quantize import QuantizationReport, quantize_onnx

__all__ = [
    "SUPPORTED_OPSETS", "QuantizationReport", "export_onnx", "quantize_onnx", "read_onnx_metadata",
]
