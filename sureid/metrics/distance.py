"""Query x gallery distances with torch: one float32 GEMM per block, conditioned inputs.

The distances are float32 GEMMs, so their rounding error is about ``1e-7`` relative to
``|q| |g|``. Two kinds of input make that error large compared with the distances
themselves, and those inputs are *conditioned* first (in float64, then rounded to float32):

* **norms outside float32's comfortable range** (``max |x_i|`` above ``2**16`` or below
  ``2**-16``): products would overflow (``inf - inf = NaN``) or underflow to 0. All features
  are multiplied by one power of two, which is exact and changes no ranking.
* **features far from the origin compared with their spread** (a large common offset, or
  for cosine, directions that all nearly agree): ``|q|^2 + |g|^2 - 2 q.g`` and ``1 - cos``
  cancel catastrophically. Both are translation-friendly: euclidean distances do not change
  when every feature is shifted by the same ``c``, and ``1 - cos`` is computed from the unit
  vectors shifted by their mean direction. ``c`` is the mean of a strided gallery sample.

Conditioning needs a float32 copy of the gallery (``G x D`` more memory); well-conditioned
features (the usual case) are used as they are. :func:`pairwise_distance`,
:func:`sureid.metrics.evaluate`, :func:`sureid.metrics.retrieval.rank_gallery` and
:func:`sureid.metrics.retrieval.rerank` all compute their distances with :class:`_Kernel`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["pairwise_distance"]

_METRICS = ("euclidean", "cosine")
# max |x_i| outside [2**-16, 2**16]: rescale by a power of two (exact).
_SAFE_EXP = 16
# Centre when mean |x|^2 exceeds this many times the mean squared distance to the centre
# (cancellation would cost more than 4 of float32's 24 bits).
_CENTRE_KAPPA = 16.0
# Gallery rows used to estimate the centre (strided sample).
_SAMPLE_ROWS = 1024
# Rows converted to float64 at once while conditioning (bounds the float64 temporaries).
_TILE_ROWS = 8192


def pairwise_distance(query, gallery, metric: str = "euclidean") -> torch.Tensor:
    """Distance matrix ``(M, N)`` between ``query`` ``(M, D)`` and ``gallery`` ``(N, D)``.

    ``"euclidean"`` is the *squared* distance ``|q|^2 + |g|^2 - 2 q.g`` clamped at 0 (as in
    torchreid; the square root would not change any ranking). ``"cosine"`` is
    ``1 - q.g / (|q| |g|)``. Inputs are used as given (normalise them beforehand if wanted);
    ill-conditioned ones are conditioned as described in the module docstring. The result is
    float32; distances beyond float32's range are ``inf`` there, while
    :func:`sureid.metrics.evaluate` ranks their rescaled values.

    Args:
        query: ``(M, D)`` floating-point tensor or numpy array.
        gallery: ``(N, D)`` floating-point tensor or numpy array.
        metric: ``"euclidean"`` or ``"cosine"``.

    Raises:
        ValueError: unknown metric, not 2-D, different ``D``, an empty set, NaN or inf.
        TypeError: not a tensor or array, or not floating point.

    Example:
        >>> pairwise_distance(torch.zeros(2, 3), torch.ones(4, 3)).shape
        torch.Size([2, 4])
    """
    names = ("query", "gallery")
    q, g = _check_pair(query, gallery, metric, names)
    kernel = _Kernel.build(q, g, metric, names=names)
    return kernel.unscale(kernel.rows(torch.arange(q.shape[0], device=kernel.g.device)))


# ----------------------------------------------------------------------------- input checks
def _as_feats(x, name: str) -> torch.Tensor:
    """``x`` as a detached 2-D floating-point tensor (numpy arrays are shared, not copied)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (num, dim), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be floating point, got dtype {x.dtype}")
    return x.detach()


def _check_pair(query, gallery, metric: str,
                names: tuple[str, str] = ("query_feats", "gallery_feats"),
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """The two feature sets as non-empty ``(Q, D)`` / ``(G, D)`` tensors, and ``metric``.

    Finiteness is checked by :meth:`_Kernel.build`, where the gallery's norms make it free.
    """
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
    q, g = _as_feats(query, names[0]), _as_feats(gallery, names[1])
    if q.shape[1] != g.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} differ in feature dim: {q.shape[1]} vs {g.shape[1]}"
        )
    if q.shape[0] == 0:
        raise ValueError(f"the query set is empty: {names[0]} has shape {tuple(q.shape)}")
    if g.shape[0] == 0:
        raise ValueError(f"the gallery is empty: {names[1]} has shape {tuple(g.shape)}")
    return q, g


def _check_finite(x: torch.Tensor, name: str, norms: torch.Tensor | None = None) -> None:
    if not _all_finite(x, norms):
        raise ValueError(f"{name} must be finite (found NaN or inf)")


# ----------------------------------------------------------------------------- kernels
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


def _sq_euclidean(q: torch.Tensor, g: torch.Tensor, g_sq: torch.Tensor,
                  out: torch.Tensor | None = None) -> torch.Tensor:
    d = torch.addmm(g_sq.unsqueeze(0), q, g.T, alpha=-2.0, out=out)
    d += (q * q).sum(dim=1, keepdim=True)
    return d.clamp_(min=0.0)


def _cosine(q: torch.Tensor, g: torch.Tensor, g_inv: torch.Tensor,
            out: torch.Tensor | None = None) -> torch.Tensor:
    # scale the product instead of normalising g: no second copy of a large gallery
    d = torch.mm(q, g.T, out=out)
    d *= _inv_norm(q).unsqueeze(1)
    d *= g_inv.unsqueeze(0)
    return torch.sub(1.0, d, out=d)


def _max_abs(x: torch.Tensor) -> float:
    lo, hi = torch.aminmax(x)  # no |x| temporary
    return max(-float(lo), float(hi))


def _unit64(x: torch.Tensor) -> torch.Tensor:
    x = x.double()
    return x / torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(1e-300)


@dataclass
class _Kernel:
    """The float32 features a distance block is computed from, and how.

    ``rows(idx)`` returns ``scale * distance`` for the query rows ``idx`` against the whole
    gallery, as float32 ``(len(idx), G)``. ``scale`` is 1 unless the features were rescaled
    (then a power of two); ``unscale`` turns such rows into the distances themselves.
    ``rows(idx, out)`` writes into ``out`` (contiguous float32 ``(len(idx), G)`` on the
    device) and returns it: a caller that ranks chunk after chunk reuses one buffer instead
    of faulting in a fresh chunk-sized allocation each time.
    """

    metric: str
    q: torch.Tensor  # original queries (any float dtype), on the device
    g: torch.Tensor  # float32 gallery as the GEMM sees it (conditioned copy or the input)
    g_stat: torch.Tensor  # |g|^2, 1/|g|, or the per-gallery constant b_g (conditioned)
    scale: float = 1.0
    shift: torch.Tensor | None = None  # float64 centre c (conditioned), else None
    conditioned: bool = False

    @classmethod
    def build(cls, query: torch.Tensor, gallery: torch.Tensor, metric: str,
              device: torch.device | None = None, *,
              names: tuple[str, str] | None = ("query_feats", "gallery_feats")) -> _Kernel:
        """The kernel of ``query`` ``(Q, D)`` against ``gallery`` ``(G, D)``.

        ``names`` name the two in the ``ValueError`` for NaN or inf entries; ``None`` skips
        that check (the caller has made it).
        """
        dev = device if device is not None else gallery.device
        q = query.detach().to(dev)
        g_in = gallery.detach().to(dev)
        g = g_in.to(torch.float32)
        g_sq = _sq_norms(g)
        if names is not None:
            _check_finite(q, names[0])
            _check_finite(g_in, names[1], g_sq if g is g_in else None)
        scale_exp = _scale_exponent(q, g_in, g_sq)
        centre = _centre(g_in, metric, scale_exp)
        if scale_exp == 0 and centre is None:
            stat = _inv_norm(g) if metric == "cosine" else g_sq
            return cls(metric, q, g, stat)
        # conditioned: a float32 copy of the transformed gallery, built tile by tile
        if centre is None:
            centre = torch.zeros(g.shape[1], dtype=torch.float64, device=dev)
        kern = cls(metric, q, g, g_sq, scale=1.0, shift=centre, conditioned=True)
        kern.scale = 2.0 ** (2 * scale_exp) if metric == "euclidean" else 1.0
        kern._scale_exp = scale_exp
        gc = torch.empty(g.shape, dtype=torch.float32, device=dev)
        stat = torch.empty(g.shape[0], dtype=torch.float32, device=dev)
        for s in range(0, g.shape[0], _TILE_ROWS):
            x, b = kern._transform(g_in[s : s + _TILE_ROWS])
            gc[s : s + _TILE_ROWS] = x
            stat[s : s + _TILE_ROWS] = b
        kern.g, kern.g_stat = gc, stat
        return kern

    def _transform(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Conditioned float32 rows ``x'`` and their per-row constant, from float64 maths.

        euclidean: ``x' = (x - c) 2^e``, constant ``|x'|^2``, so ``d' = a + b - 2 q'.g'``.
        cosine: ``x' = x/|x| - c``, constant ``b = -c.x'`` (gallery) or
        ``a = 1 - |c|^2 - c.x'`` (query), so ``1 - cos = a + b - q'.g'``.
        """
        c = self.shift
        if self.metric == "euclidean":
            y = (x.double() - c) * (2.0 ** self._scale_exp)
            y32 = y.float()
            return y32, _sq_norms(y32)
        y = _unit64(x) - c
        return y.float(), -(y @ c)

    def unscale(self, d: torch.Tensor) -> torch.Tensor:
        """Distances from ``rows`` output ``d``: float32, ``inf`` beyond float32's range."""
        return d if self.scale == 1.0 else (d.double() / self.scale).float()

    def rows(self, idx: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        qi = self.q[idx]
        if not self.conditioned:
            qi = qi.to(torch.float32)
            if self.metric == "cosine":
                return _cosine(qi, self.g, self.g_stat, out)
            return _sq_euclidean(qi, self.g, self.g_stat, out)
        y, b = self._transform(qi)
        if self.metric == "euclidean":
            d = torch.addmm(self.g_stat.unsqueeze(0), y, self.g.T, alpha=-2.0, out=out)
            d += b.unsqueeze(1)
            return d.clamp_(min=0.0)
        c = self.shift
        a = (1.0 - c @ c) + b  # b = -c.q' for a query row
        d = torch.addmm(self.g_stat.unsqueeze(0), y, self.g.T, alpha=-1.0, out=out)
        d += a.float().unsqueeze(1)
        return d


def _scale_exponent(q: torch.Tensor, g: torch.Tensor, g_sq: torch.Tensor) -> int:
    """``e`` with ``max |x_i| * 2**e`` in ``[0.5, 1)``, or 0 when no rescale is needed."""
    top = float(g_sq.max()) if g_sq.numel() else 0.0
    if 2.0 ** (-2 * _SAFE_EXP) <= top <= 2.0 ** (2 * _SAFE_EXP):
        big = max(_max_abs(q), top**0.5) if q.numel() else top**0.5
        if big <= 2.0**_SAFE_EXP:
            return 0
    big = max(_max_abs(q) if q.numel() else 0.0, _max_abs(g))
    if big == 0.0 or 2.0**-_SAFE_EXP <= big <= 2.0**_SAFE_EXP:
        return 0
    return -torch.frexp(torch.tensor(big, dtype=torch.float64)).exponent.item()


def _centre(g: torch.Tensor, metric: str, scale_exp: int) -> torch.Tensor | None:
    """float64 centre ``c`` if cancellation would cost precision (or rescaling needs a copy)."""
    step = max(1, g.shape[0] // _SAMPLE_ROWS)
    sample = g[::step][:_SAMPLE_ROWS].double()
    if metric == "cosine":
        sample = _unit64(sample)
    mean = sample.mean(0)
    spread = float(torch.linalg.vector_norm(sample - mean).square()) / len(sample)
    total = float(torch.linalg.vector_norm(sample).square()) / len(sample)
    if total > _CENTRE_KAPPA * spread:
        return mean
    if metric == "cosine" and scale_exp != 0:
        return torch.zeros_like(mean)  # unit vectors need no rescale; condition them
    return None
