"""The paper's experimental set-up as importable code: ablation presets, table rows, dataset
protocols (Tables I-III), reference numbers, the training recipe's building blocks, the
shipped pretrained backbones and the paired statistics behind the verdicts.

``examples/reproduce_table4.py`` and ``examples/train_protocol.py`` are thin command lines over
:func:`run_table` and :func:`run_protocol`; benchmarks and tests import the same definitions.
"""

from .build import build_row, row_objective
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
from .protocol_run import ProtocolRun, run_protocol
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
from .table import TableRun, run_table
from .workspace import Workspace

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
    "ProtocolRun",
    "Row",
    "TableRun",
    "Weights",
    "WeightsUnavailable",
    "Workspace",
    "build_backbone",
    "build_row",
    "load_backbone_weights",
    "learns_selection",
    "make_optimizer",
    "override",
    "row_objective",
    "run_protocol",
    "run_table",
    "save_backbone_weights",
    "table_rows",
    "train_loader",
    "view_transforms",
]
