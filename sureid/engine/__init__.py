"""Training and evaluation engine: the loop the reference examples are built on."""

from .checkpoint import load_checkpoint, save_checkpoint
from .evaluation import evaluate_model, extract_features
from .model import ReIDModel, ReIDTrainOutput
from .progress import Progress
from .schedule import cosine_with_warmup
from .trainer import Trainer, TrainState, split_batch

__all__ = [
    "Progress",
    "ReIDModel",
    "ReIDTrainOutput",
    "TrainState",
    "Trainer",
    "cosine_with_warmup",
    "evaluate_model",
    "extract_features",
    "load_checkpoint",
    "save_checkpoint",
    "split_batch",
]
