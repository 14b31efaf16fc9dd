"""Peak memory of k-reciprocal re-ranking on a large gallery (``evaluate(..., rerank=True)``).

The toolkits' dense re-ranking holds several ``(Q+G, Q+G)`` matrices: at 52,000 items the
float32 distances alone are 10.8 GB, and the full argsort as int64 twice that. sureid's keeps
neighbour lists, a sparse ``V`` and one block of distance rows (``sureid.metrics.rerank``).

Features: 256-d float32, identity-structured (centre + noise) so the neighbourhoods look like a
real ReID model's. Peak resident memory is read from ``ru_maxrss`` (whole process) before and
after; the difference is what re-ranking and ranking added on top of the features.

Usage:
    python benchmarks/rerank_memory.py                        # 2,000 x 50,000, 256-d
    python benchmarks/rerank_memory.py --num-gallery 10000    # smaller, quicker
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from sureid.metrics import evaluate


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-query", type=int, default=2000)
    parser.add_argument("--num-gallery", type=int, default=50000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--num-ids", type=int, default=5000)
    parser.add_argument("--noise", type=float, default=1.5, help="noise std around the id centre")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    nq, ng, dim = args.num_query, args.num_gallery, args.dim
    g_pids = rng.integers(0, args.num_ids, ng)
    q_pids = rng.choice(np.unique(g_pids), nq)
    q_cams, g_cams = np.zeros(nq, dtype=np.int64), rng.integers(1, 6, ng)
    centres = rng.standard_normal((args.num_ids, dim)).astype(np.float32)
    noise = lambda n: args.noise * rng.standard_normal((n, dim), dtype=np.float32)  # noqa: E731
    qf = torch.from_numpy(centres[q_pids] + noise(nq))
    gf = torch.from_numpy(centres[g_pids] + noise(ng))
    print(f"torch {torch.__version__}, numpy {np.__version__}, threads {torch.get_num_threads()}")
    print(f"{nq} queries x {ng} gallery, {dim}-d float32 (N = {nq + ng} items)")
    before = peak_rss_gb()
    print(f"peak RSS before evaluate: {before:.2f} GB")
    t = time.perf_counter()
    plain = evaluate(qf, gf, q_pids, g_pids, q_cams, g_cams)
    print(f"  plain     : {plain}")
    r = evaluate(qf, gf, q_pids, g_pids, q_cams, g_cams, rerank=True)
    after = peak_rss_gb()
    print(f"  re-ranked : {r}")
    print(f"peak RSS after: {after:.2f} GB (+{after - before:.2f} GB); dense (N, N) float32 "
          f"distances alone would be {(nq + ng) ** 2 * 4 / 1024**3:.1f} GB")
    print(f"wall time {time.perf_counter() - t:.0f} s (both evaluations; not a speed benchmark)")


if __name__ == "__main__":
    main()
