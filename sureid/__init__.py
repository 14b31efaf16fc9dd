"""sureid: fast, occlusion-robust person re-identification (SUReID building blocks).

Every public name is imported here, so ``import sureid`` costs about what ``import torch``
costs and prints nothing. Optional dependencies (timm, torchvision, onnx) are imported only
inside the entry points that need them, which raise an ``ImportError`` naming the extra.
"""

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
from .data.folder import read_custom
from .data.image_dataset import ImageDataset
from .data.sampler import RandomIdentitySampler
from .data.synthetic import (
    SYNTHETIC_PRESETS,
    SyntheticConfig,
    make_synthetic_reid,
    summarize_reid_folder,
)
from .engine.trainer import Trainer
from .export import export_onnx
from .flops import count_flops
from .hub import DataConfig, ModelFileError, load
from .inference import ExtractedFeatures, FeatureExtractor
from .losses.npkd import NPKDLoss
from .losses.objective import SUReIDLoss
from .losses.ratio import RatioLoss
from .losses.reid import CrossEntropyLabelSmooth, TripletLoss
from .metrics.distance import pairwise_distance
from .metrics.evaluate import evaluate
from .metrics.rank import RankResult, evaluate_rank
from .metrics.retrieval import rank_gallery, rerank
from .models.decision import DecisionModule
from .models.heads import BNNeck
from .models.hts_vit import HTSViT
from .models.output import HTSOutput
from .models.pretrained import (
    PretrainedReport,
    PretrainedWeightsError,
    load_pretrained,
    pretrained,
)
from .models.reid_model import ReIDModel
from .models.reweight import ClsTokenReweight
from .models.teacher import FrozenTeacher
from .models.vit import VisionTransformer, deit_small, deit_tiny, vit_base
from .transforms.dual import DualBatch, DualViewDataset, dual_collate, paper_dual_views
from .transforms.noda import NODA
from .transforms.occluders import OccluderBank, make_procedural_occluders, save_occluders
from .transforms.random_patch import RandomPatch, reid_random_erasing
from .version import __version__
from .viz_rank import render_ranked_list

__all__ = [
    # models (HTS)
    "DecisionModule",
    "HTSOutput",
    "HTSViT",
    "PretrainedReport",
    "PretrainedWeightsError",
    "VisionTransformer",
    "deit_small",
    "deit_tiny",
    "load_pretrained",
    "pretrained",
    "vit_base",
    # losses
    "CrossEntropyLabelSmooth",
    "NPKDLoss",
    "RatioLoss",
    "SUReIDLoss",
    "TripletLoss",
    # training heads / teacher
    "BNNeck",
    "ClsTokenReweight",
    "FrozenTeacher",
    # transforms (NODA, RandomPatch, dual-view batches)
    "NODA",
    "DualBatch",
    "DualViewDataset",
    "OccluderBank",
    "RandomPatch",
    "dual_collate",
    "make_procedural_occluders",
    "paper_dual_views",
    "reid_random_erasing",
    "save_occluders",
    # data: synthetic occluded-ReID benchmark
    "SYNTHETIC_PRESETS",
    "SyntheticConfig",
    "make_synthetic_reid",
    "summarize_reid_folder",
    # data: readers, image dataset, identity sampler
    "DATASETS",
    "ImageDataset",
    "ImageRecord",
    "RandomIdentitySampler",
    "ReIDDataset",
    "build_dataset",
    "read_custom",
    "read_dukemtmc",
    "read_market1501",
    "read_occluded_duke",
    "read_occluded_reid",
    "read_partial_reid",
    # metrics
    "RankResult",
    "evaluate",
    "evaluate_rank",
    "pairwise_distance",
    # training engine
    "ReIDModel",
    "Trainer",
    # deployment
    "export_onnx",
    # after training: model files, feature extraction, re-ranking, ranked lists, FLOPs
    "DataConfig",
    "ExtractedFeatures",
    "FeatureExtractor",
    "ModelFileError",
    "count_flops",
    "load",
    "rank_gallery",
    "render_ranked_list",
    "rerank",
    # version
    "__version__",
]
