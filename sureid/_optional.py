"""Lazy imports of optional dependencies with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

_EXTRAS = {
    "timm": "timm",
    "torchvision": "vision",
    "onnx": "onnx",
    "onnxruntime": "onnx",
}


def require(module: str, *, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise ``ImportError`` naming the sureid extra that provides it.

    Example:
        >>> timm = require("timm", purpose="HTSViT.from_timm")  # doctest: +SKIP
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = module.split(".")[0]
        extra = _EXTRAS.get(top, top)
        what = f" for {purpose}" if purpose else ""
        raise ImportError(
            f"{top!r} is required{what} but is not installed; "
            f"install it with `pip install 'sureid[{extra}]'`"
        ) from err
