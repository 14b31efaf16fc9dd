"""Query x gallery distances with torch (float32)."""

from __future__ import annotations

import torch

__all__ = ["pairwise_distance"]

_METRICS = ("euclidean", "cosine")


def pairwise_distance(query: torch.Tensor, gallery: torch.Tensor, metric: str = "euclidean"):
    """Distance matrix ``(M, N)`` between ``query`` ``(M, D)`` and ``gallery`` ``(N, D)``.

    ``"euclidean"`` is the *squared* distance ``|q|^2 + |g|^2 - 2 q.g`` clamped at 0 (as in
    torchreid; the square root would not change any ranking). ``"cosine"`` is
    ``1 - q.g / (|q| |g|)``. Inputs are used as given (normalise them beforehand if wanted).

    Example:
        >>> pairwise_distance(torch.zeros(2, 3), torch.ones(4, 3)).shape
        torch.Size([2, 4])
    """
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
    q, g = query.float(), gallery.float()
    if metric == "cosine":
        return _cosine(q, g, _inv_norm(g))
    return _sq_euclidean(q, g, _sq_norms(g))


def _sq_norms(x: torch.Tensor) -> torch.Tensor:
    # vector_norm reduces in place: (x * x).sum(1) would be a gallery-sized temporary
    return torch.linalg.vector_norm(x, dim=1).square()


def _all_finite(x: torch.Tensor, norms: torch.Tensor | None = None) -> bool:
    """True if every entry of ``x`` is finite; ``norms`` (row norms) make the usual case free."""
    if norms is not None and bool(torch.isfinite(norms).all()):
        return True  # a NaN or inf entry would have made its row norm NaN or inf
    return all(bool(torch.isfinite(s).all()) for s in x.split(8192))


def _inv_norm(x: torch.Tensor) -> torch.Tensor:
    return 1.0 / torch.linalg.vector_norm(x, dim=1).clamp_min(1e-12)


def _sq_euclidean(q: torch.Tensor, g: torch.Tensor, g_sq: torch.Tensor) -> torch.Tensor:
    d = torch.addmm(g_sq.unsqueeze(0), q, g.T, alpha=-2.0)
    d += (q * q).sum(dim=1, keepdim=True)
    return d.clamp_(min=0.0)


def _cosine(q: torch.Tensor, g: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
    # scale the product instead of normalising g: no second copy of a large gallery
    d = q @ g.T
    d *= _inv_norm(q).unsqueeze(1)
    d *= g_inv.unsqueeze(0)
    return torch.sub(1.0, d, out=d)
