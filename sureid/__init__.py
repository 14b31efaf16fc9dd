"""sureid: fast, occlusion-robust person re-identification (SUReID building blocks).

Public names are imported lazily (PEP 562), so ``import sureid`` is cheap and quiet and
optional dependencies (timm, torchvision, onnx) are only touched by the entry points
that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

# public name -> module that defines it
_LAZY: dict[str, str] = {
    # models (HTS)
    "HTSViT": "sureid.models.hts_vit",
    "HTSOutput": "sureid.models.output",
    "VisionTransformer": "sureid.models.vit",
    "deit_tiny": "sureid.models.vit",
    "deit_small": "sureid.models.vit",
    "vit_base": "sureid.models.vit",
    "DecisionModule": "sureid.models.decision",
    "load_pretrained": "sureid.models.pretrained",
    "PretrainedReport": "sureid.models.pretrained",
    "PretrainedWeightsError": "sureid.models.pretrained",
    # losses
    "RatioLoss": "sureid.losses.ratio",
    "NPKDLoss": "sureid.losses.npkd",
    "SUReIDLoss": "sureid.losses.objective",
    "CrossEntropyLabelSmooth": "sureid.losses.reid",
    "TripletLoss": "sureid.losses.reid",
    # training heads / teacher
    "BNNeck": "sureid.models.heads",
    "ClsTokenReweight": "sureid.models.reweight",
    "FrozenTeacher": "sureid.models.teacher",
    # transforms (NODA, RandomPatch, dual-view batches)
    "NODA": "sureid.transforms.noda",
    "OccluderBank": "sureid.transforms.occluders",
    "make_procedural_occluders": "sureid.transforms.occluders",
    "save_occluders": "sureid.transforms.occluders",
    "RandomPatch": "sureid.transforms.random_patch",
    "reid_random_erasing": "sureid.transforms.random_patch",
    "DualViewDataset": "sureid.transforms.dual",
    "DualBatch": "sureid.transforms.dual",
    "dual_collate": "sureid.transforms.dual",
    "paper_dual_views": "sureid.transforms.dual",
    # data: synthetic occluded-ReID benchmark
    "make_synthetic_reid": "sureid.data.synthetic",
    "summarize_reid_folder": "sureid.data.synthetic",
    "SYNTHETIC_PRESETS": "sureid.data.synthetic",
    # data: readers, image dataset, identity sampler
    "ImageRecord": "sureid.data.datasets",
    "ReIDDataset": "sureid.data.datasets",
    "DATASETS": "sureid.data.datasets",
    "build_dataset": "sureid.data.datasets",
    "read_market1501": "sureid.data.datasets",
    "read_dukemtmc": "sureid.data.datasets",
    "read_occluded_duke": "sureid.data.datasets",
    "read_occluded_reid": "sureid.data.datasets",
    "read_partial_reid": "sureid.data.datasets",
    "ImageDataset": "sureid.data.image_dataset",
    "RandomIdentitySampler": "sureid.data.sampler",
    # metrics
    "evaluate": "sureid.metrics.evaluate",
    "evaluate_rank": "sureid.metrics.rank",
    "RankResult": "sureid.metrics.rank",
    "pairwise_distance": "sureid.metrics.distance",
    # training engine
    "ReIDModel": "sureid.engine.model",
    "Trainer": "sureid.engine.trainer",
    # deployment
    "export_onnx": "sureid.export",
    # after training: model files, feature extraction, re-ranking, ranked lists, FLOPs
    "load": "sureid.hub",
    "DataConfig": "sureid.hub",
    "ModelFileError": "sureid.hub",
    "FeatureExtractor": "sureid.inference",
    "ExtractedFeatures": "sureid.inference",
    "rerank": "sureid.metrics.rerank",
    "rank_gallery": "sureid.metrics.rerank",
    "render_ranked_list": "sureid.viz_rank",
    "count_flops": "sureid.flops",
    "read_custom": "sureid.data.folder",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sureid' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover
    from .data.datasets import (
        DATASETS,
        ImageRecord,
        ReIDDataset,
        build_dataset,
        read_dukemtmc,
        read_market1501,
        read_occluded_duke,
        read_occluded_reid,
        read_partial_reid,
    )
    from .data.image_dataset import ImageDataset
    from .data.sampler import RandomIdentitySampler
    from .engine.model import ReIDModel
    from .engine.trainer import Trainer
    from .data.synthetic import SYNTHETIC_PRESETS, make_synthetic_reid, summarize_reid_folder
    from .export import export_onnx
    from .losses.npkd import NPKDLoss
    from .losses.objective import SUReIDLoss
    from .losses.ratio import RatioLoss
    from .losses.reid import CrossEntropyLabelSmooth, TripletLoss
    from .metrics.distance import pairwise_distance
    from .metrics.evaluate import evaluate
    from .metrics.rank import RankResult, evaluate_rank
    from .models.heads import BNNeck
    from .models.reweight import ClsTokenReweight
    from .models.teacher import FrozenTeacher
    from .models.decision import DecisionModule
    from .models.hts_vit import HTSViT
    from .models.output import HTSOutput
    from .models.pretrained import PretrainedReport, PretrainedWeightsError, load_pretrained
    from .models.vit import VisionTransformer, deit_small, deit_tiny, vit_base
    from .transforms.dual import DualBatch, DualViewDataset, dual_collate, paper_dual_views
    from .transforms.noda import NODA
    from .transforms.occluders import OccluderBank, make_procedural_occluders, save_occluders
    from .transforms.random_patch import RandomPatch, reid_random_erasing
    from .data.folder import read_custom
    from .flops import count_flops
    from .hub import DataConfig, ModelFileError, load
    from .inference import ExtractedFeatures, FeatureExtractor
    from .metrics.rerank import rank_gallery, rerank
    from .viz_rank import render_ranked_list
