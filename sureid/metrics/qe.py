"""Alpha query expansion (alpha-QE, Radenovic et al. 2018), as fast-reid's ``aqe``.

Every query and gallery feature is replaced by the weighted mean of its ``k`` nearest
neighbours among all ``Q + G`` features (itself included, as its own nearest), weighted by
their cosine similarity to the power ``alpha``:

    f_i <- (1 / k) * sum_{j in top-k(i)} sim(i, j)^alpha * f_j

repeated ``times`` times (neighbours from the cosine similarity of the current features).
As in fast-reid, the sum is divided by ``k`` (not by the weights' sum) and the features are
not normalised afterwards; distances are then computed with the evaluation's ``metric``.
Neighbour ties are broken by index (queries first), where fast-reid's ``argpartition`` leaves
them unspecified. A neighbour with a negative similarity gets ``sim^alpha``, as fast-reid,
when ``alpha`` is a whole number, and weight 0 otherwise (fast-reid: NaN).

Memory: one ``(chunk, Q + G)`` float32 block of similarities at a time, plus the
``(Q + G, k)`` neighbour table and a float32 copy of the features.
"""

from __future__ import annotations

import numpy as np
import torch

from .._checks import check_int, check_real
from .distance import _check_finite, _check_pair
from .rerank import _smallest_k

__all__ = ["alpha_query_expansion"]

# Elements of a (rows, Q + G) similarity block (64 MB).
_CHUNK_ELEMS = 1 << 24


def _check_qe(k, alpha, times, prefix: str = "") -> tuple[int, float, int]:
    return (check_int(f"{prefix}k", k, low=1), check_real(f"{prefix}alpha", alpha, low=0.0),
            check_int(f"{prefix}times", times, low=1))


@torch.no_grad()
def _expand(x: torch.Tensor, k: int, alpha: float, times: int,
            device: torch.device) -> torch.Tensor:
    """alpha-QE of every row of ``x`` ``(N, D)`` against all rows; float32 ``(N, D)``."""
    feats = x.detach().to(device, torch.float32)
    n = feats.shape[0]
    k = min(k, n)
    whole = float(alpha).is_integer()
    rows = max(1, _CHUNK_ELEMS // n)
    for _ in range(times):
        unit = feats / torch.linalg.vector_norm(feats, dim=1, keepdim=True).clamp_min(1e-12)
        out = torch.empty_like(feats)
        for s in range(0, n, rows):
            sim = unit[s : s + rows] @ unit.T  # (b, N)
            # k most similar, ties by index: the k smallest of -sim in stable order
            idx = torch.from_numpy(_smallest_k(np.ascontiguousarray(
                (-sim).cpu().numpy(), dtype=np.float32), k)).to(device)
            w = torch.gather(sim, 1, idx)
            w = w.pow(alpha) if whole else w.clamp_min(0.0).pow(alpha)
            # sum_j w_j f_j / k, in neighbour order
            out[s : s + rows] = torch.einsum("bk,bkd->bd", w, feats[idx]) / k
        feats = out
    return feats


def alpha_query_expansion(
    query_feats,
    gallery_feats,
    *,
    k: int = 5,
    alpha: float = 3.0,
    times: int = 1,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Alpha query expansion of queries and gallery together (see the module docstring).

    fast-reid's defaults (``TEST.AQE``): ``QE_K=5``, ``ALPHA=3.0``, ``QE_TIME=1``.

    Args:
        query_feats: ``(Q, D)`` tensor or array.
        gallery_feats: ``(G, D)`` tensor or array.
        k: neighbours averaged (itself included), capped at ``Q + G``.
        alpha: exponent of the similarity weights, ``>= 0`` (0: a plain mean).
        times: rounds of expansion.
        device: where the similarities are computed (default: the gallery's device).

    Returns:
        ``(Q, D)`` and ``(G, D)`` float32 expanded features, on ``device``.

    Raises:
        ValueError: bad shapes, different dims, empty sets, NaN or inf features, ``k < 1``,
            ``alpha < 0``, ``times < 1``.
        TypeError: non-float features, non-int ``k`` / ``times``, non-real ``alpha``.

    Example:
        >>> q, g = alpha_query_expansion(torch.randn(4, 8), torch.randn(10, 8), k=3)
        >>> q.shape, g.shape
        (torch.Size([4, 8]), torch.Size([10, 8]))
    """
    k, alpha, times = _check_qe(k, alpha, times)
    q, g = _check_pair(query_feats, gallery_feats, "cosine")
    _check_finite(q, "query_feats")
    _check_finite(g, "gallery_feats")
    dev = torch.device(device) if device is not None else g.device
    both = torch.cat([q.to(dev, torch.float32), g.to(dev, torch.float32)])
    out = _expand(both, k, alpha, times, dev)
    return out[: q.shape[0]], out[q.shape[0]:]
