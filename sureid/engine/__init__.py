"""Training and evaluation engine: the loop the reference examples are built on.

``ReIDModel``/``ReIDTrainOutput`` live in :mod:`sureid.models`; they are re-exported here.
"""

from .._progress import Progress
from ..models.reid_model import ReIDModel, ReIDTrainOutput
from .checkpoint import check_settings, load_checkpoint, normalize_settings, save_checkpoint
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
from .hardware import describe_cpu
from .schedule import cosine_with_warmup
from .throughput import measure_throughput
from .trainer import Trainer, TrainState, split_batch

__all__ = [
    "DistInfo",
    "Progress",
    "ReIDModel",
    "ReIDTrainOutput",
    "TrainState",
    "Trainer",
    "barrier",
    "broadcast_module",
    "cleanup",
    "cosine_with_warmup",
    "describe_cpu",
    "evaluate_model",
    "extract_features",
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
