"""Checks of an exported graph: against PyTorch, and a second graph against the first.

Both run the graphs with onnxruntime on the CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .onnx_file import session

__all__ = ["check_against_torch", "compare_graphs"]


def check_against_torch(
    ort, model: torch.nn.Module, path: Path, img_size: tuple[int, int],
    batch_sizes: Sequence[int], atol: float, gen: torch.Generator,
) -> None:
    """Run the graph at ``path`` and ``model`` on the same random ``(b, 3, H, W)`` images.

    One batch of ``gen``'s normal noise per size in ``batch_sizes``; the embeddings
    ``(b, C)`` must agree within ``atol`` (largest absolute difference).

    Raises:
        RuntimeError: a difference above ``atol`` (batch size and difference named).
    """
    param = next(model.parameters())
    graph = session(ort, path)
    for b in batch_sizes:
        x = torch.randn(b, 3, *img_size, generator=gen, dtype=param.dtype)
        with torch.no_grad():
            ref = model(x.to(param.device)).float().cpu()
        got = torch.from_numpy(graph.run(None, {"images": x.numpy()})[0]).float()
        err = (got - ref).abs().max().item()
        if not err <= atol:
            raise RuntimeError(
                f"onnxruntime output differs from PyTorch at batch {b}: max abs diff "
                f"{err:.3g} > atol={atol:g}; nothing was written"
            )


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
    graph = session(ort, model_bytes)
    fixed = graph.get_inputs()[0].shape[0]
    if isinstance(fixed, int):  # a fixed-batch export: whole batches, images repeated
        batch = fixed
        images = np.resize(images, (-(-len(images) // batch) * batch, *images.shape[1:]))
    wanted = ["embedding"] + [n for _, v, i in topk for n in (v, i)]
    outs = [graph.run(wanted, {"images": images[s : s + batch]})
            for s in range(0, len(images), batch)]
    return [np.concatenate([o[j] for o in outs]) for j in range(len(wanted))]


def compare_graphs(
    onnx, ort, ref_path: Path, test_path: Path, images: np.ndarray
) -> tuple[np.ndarray, list[float]]:
    """How the graph at ``test_path`` agrees with the one at ``ref_path`` on ``images``.

    Args:
        images: ``(B, 3, H, W)`` float32, fed to both graphs.

    Returns:
        ``(cosine, overlap)``: the embedding cosine similarity per image ``(B,)``, and per
        pruning stage (graph order) the mean share of the ``k_s`` tokens kept by the test
        graph that the reference keeps too (1.0 = same selection; empty for a dense model).

    Raises:
        RuntimeError: the graphs' TopK nodes differ, so their selections cannot be paired.
    """
    ref_bytes, ref_topk = _with_topk_outputs(onnx, ref_path)
    test_bytes, test_topk = _with_topk_outputs(onnx, test_path)
    if [n for n, _, _ in ref_topk] != [n for n, _, _ in test_topk]:
        raise RuntimeError("quantisation changed the TopK nodes; cannot compare selections")
    ref = _run_all(ort, ref_bytes, ref_topk, images)
    got = _run_all(ort, test_bytes, test_topk, images)
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
    return cos, overlap
