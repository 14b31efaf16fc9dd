"""Cost of each exact count in ``sureid.metrics._kernels``, per gallery item, and thread scaling.

The ranking picks, per query row, the cheapest of its counts from a cost model in ns per item
(``_kernels._COST_*``: sorted ``0.3 + 7.5 * share of candidates``, direct ``0.32 * matches``,
bucketed ``4.2``, compiled ``1.8``; docs/evaluation.md). This script measures them: every path
forced on the same distance rows (random and clustered features, as ``eval_floor.py`` makes
them), one thread, process CPU time; then the automatic choice with one and with two ranking
threads (wall time). Same numbers on every path (checked).

    python benchmarks/rank_kernels.py                 # 200 rows of a 100k gallery
    python benchmarks/rank_kernels.py --rows 50 --gallery 20000   # quick
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from eval_floor import make

from sureid.metrics import _kernels, rank
from sureid.metrics.distance import _Kernel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gallery", type=int, default=100_000)
    ap.add_argument("--rows", type=int, default=200, help="query rows ranked per measurement")
    args = ap.parse_args()
    have_fused = _kernels.fused_below() is not None  # compiled here, outside the timings
    paths = ["sorted", "direct", "bucketed"] + (["fused"] * have_fused) + [None]
    print(f"numpy {np.__version__}, compiled count {'on' if have_fused else 'off (no numba)'}")
    for kind in ("random", "clustered"):
        qf, gf, qp, gp, qc, gc = make(kind, max(args.rows, 64), args.gallery, 768)
        sel = np.arange(args.rows)
        d = _Kernel.build(qf, gf, "euclidean").rows(torch.from_numpy(sel)).numpy()
        pidx = _kernels._PidIndex(gp, gc)
        rows, cols, npos = pidx.matches(qp[sel], qc[sel])
        items = d.size
        ref = None
        for path in paths:
            best = float("inf")
            for _ in range(2):
                t = time.process_time()
                got = _kernels._ranks_by_count(d, qp[sel], gp, pidx, rows, cols, npos,
                                               int(npos.max()), path or "auto")
                best = min(best, time.process_time() - t)
            ref = got if ref is None else ref
            if not np.array_equal(got, ref):
                raise AssertionError(f"path {path} gave other ranks")
            ns = best / items * 1e9
            print(f"[{kind}] {path or 'auto':8s} {ns:5.2f} ns/item (one thread, CPU)")
        for threads in (1, 2, 1, 2):  # twice: the first call also warms up
            rank._THREADS = threads
            t = time.perf_counter()
            rank._run(lambda i, d=d: d[i], qp[sel], gp, qc[sel], gc, 50, len(sel), "auto", "d")
            print(f"[{kind}] auto, {threads} ranking thread(s): "
                  f"{(time.perf_counter() - t) / items * 1e9:5.2f} ns/item (wall, row copy incl.)")
        rank._THREADS = None


if __name__ == "__main__":
    main()
