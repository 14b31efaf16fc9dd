"""The paper's ablation set-up as importable code: presets, table rows, reference numbers,
the shipped pretrained backbones and the paired statistics behind the verdicts.

``examples/reproduce_table4.py`` is a thin command line over this package; benchmarks and
tests import the same definitions.
"""

from .presets import CLAIMS, PAPER, PRESETS, Arch, Preset, Row, build_backbone, table_rows
from .pretrained import load_backbone_weights, save_backbone_weights

__all__ = [
    "CLAIMS",
    "PAPER",
    "PRESETS",
    "Arch",
    "Preset",
    "Row",
    "build_backbone",
    "load_backbone_weights",
    "save_backbone_weights",
    "table_rows",
]
