"""Evaluation speed: sureid.metrics vs a per-query loop evaluator, and a 520k-gallery run.

Part 1, Occluded-Duke sized (2,210 queries x 17,661 gallery, 8 cameras, 1,110 gallery ids of
which 519 are query ids): ``evaluate_rank`` vs the torchreid-style loop kept in
``tests/metrics/reference.py``, same distance matrix, same numbers asserted, speedup printed.

Part 2, Market-1501 + 500k distractors (3,368 queries x 519,732 gallery, 768-d float32
features): ``evaluate`` wall time and peak resident memory (``ru_maxrss``).

Usage:
    python benchmarks/eval_speed.py              # both parts
    python benchmarks/eval_speed.py --skip-large # part 1 only
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sureid.metrics import evaluate, evaluate_rank, pairwise_distance  # noqa: E402
from tests.metrics.reference import reference_eval  # noqa: E402


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def labels(rng, num_ids, total, num_cams, id_offset=1):
    """Uneven images per id (1..~2x mean), random cameras."""
    w = rng.gamma(2.0, size=num_ids)
    counts = np.maximum(1, np.round(w / w.sum() * total)).astype(int)
    counts[-1] += total - counts.sum()
    counts = np.maximum(counts, 1)
    pids = np.repeat(np.arange(id_offset, id_offset + num_ids), counts)[:total]
    if len(pids) < total:
        extra = rng.integers(id_offset, id_offset + num_ids, total - len(pids))
        pids = np.concatenate([pids, extra])
    return rng.permutation(pids), rng.integers(0, num_cams, total)


def part1(rng, max_rank):
    nq, ng, dim = 2210, 17661, 64
    g_pids, g_cams = labels(rng, 1110, ng, 8)
    query_ids = rng.choice(np.unique(g_pids), 519, replace=False)
    q_pids = rng.choice(query_ids, nq)
    q_cams = rng.integers(0, 8, nq)
    centres = torch.from_numpy(rng.standard_normal((1111, dim)).astype(np.float32))
    qf = centres[q_pids] + 1.2 * torch.from_numpy(rng.standard_normal((nq, dim)).astype(np.float32))
    gf = centres[g_pids] + 1.2 * torch.from_numpy(rng.standard_normal((ng, dim)).astype(np.float32))
    distmat = pairwise_distance(qf, gf).numpy()
    print(f"[part 1] distmat {distmat.shape} float32, max_rank={max_rank}")

    t0 = time.perf_counter()
    fast = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank)
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast_sort = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank, strategy="sort")
    t_sort = time.perf_counter() - t0
    t0 = time.perf_counter()
    cmc, m_ap, m_inp, n_valid, _ = reference_eval(distmat, q_pids, g_pids, q_cams, g_cams, max_rank)
    t_ref = time.perf_counter() - t0

    for r in (fast, fast_sort):
        assert r.num_valid_queries == n_valid
        assert np.allclose(r.cmc, cmc, rtol=0, atol=1e-12), "cmc differs"
        assert abs(r.mAP - m_ap) < 1e-12 and abs(r.mINP - m_inp) < 1e-12, "mAP/mINP differ"
    print(f"  result: {fast}")
    print(f"  reference loop           : {t_ref:8.3f} s")
    print(f"  evaluate_rank (auto)     : {t_fast:8.3f} s   speedup {t_ref / t_fast:6.1f}x")
    print(f"  evaluate_rank (sort path): {t_sort:8.3f} s   speedup {t_ref / t_sort:6.1f}x")
    print("  numbers identical to the reference (|diff| < 1e-12)")


def part2(rng, max_rank, metric):
    nq, ng_market, n_distract, dim = 3368, 19732, 500_000, 768
    g_pids, g_cams = labels(rng, 751, ng_market, 6)
    g_pids = np.concatenate([g_pids, np.zeros(n_distract, dtype=g_pids.dtype)])  # distractors
    g_cams = np.concatenate([g_cams, rng.integers(0, 6, n_distract)])
    q_ids = np.unique(g_pids[:ng_market])[:750]
    q_pids, q_cams = rng.choice(q_ids, nq), rng.integers(0, 6, nq)
    gen = torch.Generator().manual_seed(0)
    gf = torch.randn(len(g_pids), dim, generator=gen)
    qf = torch.randn(nq, dim, generator=gen)
    base = peak_rss_gb()
    print(
        f"[part 2] {nq} x {len(g_pids)} gallery, {dim}-d float32 ({metric}); features "
        f"{(gf.numel() + qf.numel()) * 4 / 1024**3:.2f} GB; peak RSS before evaluate {base:.2f} GB"
    )
    t0 = time.perf_counter()
    r = evaluate(qf, gf, q_pids, g_pids, q_cams, g_cams, metric=metric, max_rank=max_rank)
    wall = time.perf_counter() - t0
    print(f"  result: {r}")
    print(f"  evaluate wall time {wall:.1f} s, peak RSS {peak_rss_gb():.2f} GB (whole process)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-large", action="store_true", help="skip the 520k-gallery run")
    ap.add_argument("--skip-small", action="store_true", help="skip the reference comparison")
    ap.add_argument("--max-rank", type=int, default=50)
    ap.add_argument("--metric", default="euclidean", choices=["euclidean", "cosine"])
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, numpy {np.__version__}, threads {torch.get_num_threads()}")
    rng = np.random.default_rng(0)
    if not args.skip_small:
        part1(rng, args.max_rank)
    if not args.skip_large:
        part2(rng, args.max_rank, args.metric)


if __name__ == "__main__":
    main()
