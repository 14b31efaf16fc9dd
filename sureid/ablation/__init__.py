"""The paper's experimental set-up as importable code: ablation presets, table rows, dataset
protocols (Tables I-III), reference numbers, the training recipe's building blocks, the
shipped pretrained backbones and the paired statistics behind the verdicts.

``examples/reproduce_table4.py`` and ``examples/train_protocol.py`` are thin command lines over
this package; benchmarks and tests import the same definitions.
"""

from .presets import (
    CLAIMS,
    PAPER,
    PRESETS,
    Arch,
    Preset,
    Row,
    build_backbone,
    override,
    table_rows,
)
from .pretrained import load_backbone_weights, save_backbone_weights
from .protocols import PROTOCOLS, PaperResult, Protocol
from .recipe import (
    COLOR_JITTER,
    LimitedLoader,
    Weights,
    WeightsUnavailable,
    learns_selection,
    make_optimizer,
    train_loader,
    view_transforms,
)

__all__ = [
    "CLAIMS",
    "COLOR_JITTER",
    "PAPER",
    "PRESETS",
    "PROTOCOLS",
    "Arch",
    "LimitedLoader",
    "PaperResult",
    "Preset",
    "Protocol",
    "Row",
    "Weights",
    "WeightsUnavailable",
    "build_backbone",
    "load_backbone_weights",
    "learns_selection",
    "make_optimizer",
    "override",
    "save_backbone_weights",
    "table_rows",
    "train_loader",
    "view_transforms",
]
