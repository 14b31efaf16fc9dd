"""sureid.metrics: exact ReID retrieval metrics (CMC, mAP, mINP) at any gallery size."""

from .distance import pairwise_distance
from .evaluate import evaluate
from .qe import alpha_query_expansion
from .rank import RankResult, evaluate_rank
from .retrieval import RankedLists, rank_gallery, ranked_lists, rerank, rerank_distmat

__all__ = [
    "RankResult",
    "RankedLists",
    "alpha_query_expansion",
    "evaluate",
    "evaluate_rank",
    "pairwise_distance",
    "rank_gallery",
    "ranked_lists",
    "rerank",
    "rerank_distmat",
]
