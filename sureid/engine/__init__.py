"""Training and evaluation engine: the loop the reference examples are built on.

``ReIDModel``/``ReIDTrainOutput`` live in :mod:`sureid.models` and ``save_checkpoint``/
``load_checkpoint`` in :mod:`sureid._checkpoint`; they are re-exported here.
"""

from .._checkpoint import load_checkpoint, save_checkpoint
from .._progress import Progress
from ..models.reid_model import ReIDModel, ReIDTrainOutput
from .batch import split_batch
from .checkpoint import TrainState, check_settings, normalize_settings
from .distributed import (
    DistInfo,
    barrier,
    broadcast_module,
    cleanup,
    init_distributed,
    sync_gradients,
    unused_parameters,
    wrap_ddp,
)
from .evaluation import evaluate_model, extract_features
from .hardware import cpu_line, describe_cpu, format_cpu
from .schedule import cosine_with_warmup
from .slicing import SlicingBound
from .throughput import measure_throughput
from .trainer import Trainer

__all__ = [
    "DistInfo",
    "Progress",
    "ReIDModel",
    "ReIDTrainOutput",
    "SlicingBound",
    "TrainState",
    "Trainer",
    "barrier",
    "broadcast_module",
    "cleanup",
    "cosine_with_warmup",
    "cpu_line",
    "describe_cpu",
    "evaluate_model",
    "extract_features",
    "format_cpu",
    "init_distributed",
    "check_settings",
    "load_checkpoint",
    "normalize_settings",
    "measure_throughput",
    "save_checkpoint",
    "split_batch",
    "sync_gradients",
    "unused_parameters",
    "wrap_ddp",
]
