"""The bucketed count of :mod:`sureid.metrics._kernels` as one compiled pass (optional numba).

``_kernels._below_bucketed`` needs about ten numpy passes over a row (subtract, scale, clip,
cast, ``bincount``, flag lookup, ...; their cost: docs/evaluation.md). The same count in one
loop over the row, compiled with numba and run without the GIL, is what this module provides
when numba is installed (``pip install 'sureid[fast]'``); without numba :func:`fused_below`
is ``None`` and the numpy kernels are used. Same numbers either way
(``tests/metrics/test_rank.py`` forces every path against the reference loop).

The count, for one row ``x (G,)`` and its matches sorted by ``(distance, index)`` key: every
item gets a bucket ``trunc(clip((x - base) * inv_w, 0, m + 1))``, computed in float32 by one
function for items and matches alike (monotone in ``x``, so an item in a lower bucket than a
match sorts before it, one in a higher bucket after it); a histogram counts the items per
bucket, and only the items that share a bucket with a match are compared by their exact key.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["fused_below"]

_KERNEL: Callable | None = None
_TRIED = False


def _compile() -> Callable | None:
    try:
        import numba  # noqa: F401  (checked first: the kernel module may already be imported)
    except ImportError:
        return None
    from ._fused_kernel import below

    return below


def fused_below() -> Callable | None:
    """The compiled kernel, or ``None`` without numba (compiled on first use, once)."""
    global _KERNEL, _TRIED
    if not _TRIED:
        _KERNEL, _TRIED = _compile(), True
    return _KERNEL
