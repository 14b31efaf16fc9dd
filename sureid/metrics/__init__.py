"""sureid.metrics: exact ReID retrieval metrics (CMC, mAP, mINP) at any gallery size."""

from .distance import pairwise_distance
from .evaluate import evaluate
from .rank import RankResult, evaluate_rank
from .rerank import rank_gallery, rerank, rerank_distmat

__all__ = [
    "RankResult",
    "evaluate",
    "evaluate_rank",
    "pairwise_distance",
    "rank_gallery",
    "rerank",
    "rerank_distmat",
]
