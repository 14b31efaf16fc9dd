"""evaluate() against the bare chunked distance GEMM, on random and on clustered features.

The floor of a feature-level evaluation is the query x gallery GEMM. This script times, in
one process and interleaved (GEMM, GEMM into a buffer, evaluate, ...), the bare chunked GEMM
``torch.addmm(|g|^2, q_chunk, g.T, alpha=-2)`` with the chunk size evaluate uses (results
discarded; a fresh output per chunk, as issue 17 timed it), the same GEMM writing every chunk
into one reused buffer (``out=``; no page faults on a new 256 MB output: the stricter floor),
and the full ``evaluate`` (distances, ranking, CMC/mAP/mINP), and reports both ratios.

Features (768-d float32, Market-1501 labels: 3,368 queries of 750 ids, 19,732 gallery images of
751 ids over 6 cameras, the rest distractors):

* ``random``: i.i.d. normal features, the worst case for ranking (every hardest match is deep);
* ``clustered``: ReID-like, ``0.5 * centre(id) + noise`` with distractors in identity groups
  of 8 (Rank-1 about 0.98, mAP about 0.86, mINP about 0.33 at 100k).

It also checks that the numbers equal the exact stable-argsort path of ``evaluate_rank`` on
the same distance rows (a subset of queries) and reports the peak resident memory.

Usage::

    python benchmarks/eval_floor.py --gallery 100000            # both feature kinds
    python benchmarks/eval_floor.py --gallery 519732 --repeats 1
    python benchmarks/eval_floor.py --compare-numpy   # also without the compiled count
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import torch

from sureid.metrics import _kernels, evaluate, evaluate_rank
from sureid.metrics.distance import _Kernel, _sq_norms
from sureid.metrics.evaluate import _CHUNK_ELEMS


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def labels(rng, num_ids, total, num_cams, id_offset=1):
    """Uneven images per id (gamma-distributed counts), random cameras."""
    w = rng.gamma(2.0, size=num_ids)
    counts = np.maximum(1, np.round(w / w.sum() * total)).astype(int)
    pids = np.repeat(np.arange(id_offset, id_offset + num_ids), counts)[:total]
    if len(pids) < total:
        extra = rng.integers(id_offset, id_offset + num_ids, total - len(pids))
        pids = np.concatenate([pids, extra])
    return rng.permutation(pids), rng.integers(0, num_cams, total)


def make(kind: str, num_q: int, num_g: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    num_market = min(19732, num_g)
    gp, gc = labels(rng, 751, num_market, 6)
    gp = np.concatenate([gp, np.zeros(num_g - num_market, dtype=gp.dtype)])  # distractors
    gc = np.concatenate([gc, rng.integers(0, 6, num_g - num_market)])
    q_ids = np.unique(gp[:num_market])[:750]
    qp, qc = rng.choice(q_ids, num_q), rng.integers(0, 6, num_q)
    gen = torch.Generator().manual_seed(seed)
    if kind == "random":
        gf = torch.randn(num_g, dim, generator=gen)
        qf = torch.randn(num_q, dim, generator=gen)
    else:
        centres = torch.randn(752, dim, generator=gen)
        groups = torch.randn((num_g - num_market) // 8 + 1, dim, generator=gen)
        gf = torch.randn(num_g, dim, generator=gen)
        gf[:num_market] += 0.5 * centres[torch.from_numpy(gp[:num_market])]
        for s in range(num_market, num_g, 65536):  # in slices: no second gallery-sized copy
            e = min(num_g, s + 65536)
            gf[s:e] += 0.5 * groups[torch.arange(s - num_market, e - num_market) // 8]
        qf = 0.5 * centres[torch.from_numpy(qp)] + torch.randn(num_q, dim, generator=gen)
    return qf, gf, qp, gp, qc, gc


def bare_gemm(qf: torch.Tensor, gf: torch.Tensor, reuse: bool = False) -> None:
    chunk = max(1, _CHUNK_ELEMS // gf.shape[0])
    g_sq = _sq_norms(gf)
    buf = torch.empty(min(chunk, qf.shape[0]), gf.shape[0]) if reuse else None
    for s in range(0, qf.shape[0], chunk):
        q = qf[s : s + chunk]
        out = buf[: len(q)] if reuse else None
        torch.addmm(g_sq.unsqueeze(0), q, gf.T, alpha=-2.0, out=out)


def check_exact(qf, gf, qp, gp, qc, gc, result, num: int) -> None:
    """evaluate's per-query numbers == the stable-argsort path on the same distance rows."""
    idx = np.arange(0, len(qp), max(1, len(qp) // num))[:num]
    d = _Kernel.build(qf, gf, "euclidean").rows(torch.from_numpy(idx)).numpy()
    ref = evaluate_rank(d, qp[idx], gp, qc[idx], gc, strategy="sort")
    np.testing.assert_array_equal(result.ap[idx], ref.ap)
    np.testing.assert_array_equal(result.inp[idx], ref.inp)
    np.testing.assert_array_equal(result.first_match[idx], ref.first_match)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gallery", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=3368)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--kinds", nargs="+", default=["random", "clustered"])
    ap.add_argument("--repeats", type=int, default=2, help="interleaved GEMM/evaluate pairs")
    ap.add_argument("--check", type=int, default=48, help="queries checked against argsort")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--compare-numpy", action="store_true",
                    help="also time evaluate with the numpy counts only (no compiled kernel)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, numpy {np.__version__}, threads {torch.get_num_threads()}, "
          f"compiled count {'on' if _kernels.fused_below() is not None else 'off (no numba)'}")
    for kind in args.kinds:
        qf, gf, qp, gp, qc, gc = make(kind, args.queries, args.gallery, args.dim)
        base = peak_rss_gb()
        feats = (gf.numel() + qf.numel()) * 4 / 1024**3
        print(f"[{kind}] {args.queries} x {args.gallery} x {args.dim} float32 "
              f"(features {feats:.2f} GB, peak RSS before timing {base:.2f} GB)")
        t_gemm, t_buf, t_eval, t_np = [], [], [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            bare_gemm(qf, gf)
            t_gemm.append(time.perf_counter() - t)
            t = time.perf_counter()
            bare_gemm(qf, gf, reuse=True)
            t_buf.append(time.perf_counter() - t)
            t = time.perf_counter()
            result = evaluate(qf, gf, qp, gp, qc, gc)
            t_eval.append(time.perf_counter() - t)
            if args.compare_numpy:
                t = time.perf_counter()
                plain = evaluate(qf, gf, qp, gp, qc, gc, kernel="numpy")
                t_np.append(time.perf_counter() - t)
                if not (np.array_equal(plain.ap, result.ap, equal_nan=True)
                        and np.array_equal(plain.first_match, result.first_match)):
                    raise AssertionError("the numpy and compiled counts disagree")
        print(f"  result: {result}")
        g, gb = statistics.median(t_gemm), statistics.median(t_buf)
        e = statistics.median(t_eval)
        print(f"  bare chunked GEMM {g:7.2f} s  (runs {[round(x, 2) for x in t_gemm]})")
        print(f"  GEMM into buffer  {gb:7.2f} s  (runs {[round(x, 2) for x in t_buf]})")
        print(f"  evaluate          {e:7.2f} s  (runs {[round(x, 2) for x in t_eval]})")
        print(f"  evaluate / GEMM   {e / g:7.2f}x (median), {min(t_eval) / min(t_gemm):.2f}x (min)")
        print(f"  evaluate / GEMM into buffer {e / gb:5.2f}x (median), "
              f"{min(t_eval) / min(t_buf):.2f}x (min)")
        if t_np:
            en = statistics.median(t_np)
            print(f"  evaluate, numpy counts only {en:5.2f} s (runs {[round(x, 2) for x in t_np]})"
                  f" = {en / g:.2f}x the GEMM (median); identical results")
        print(f"  peak RSS {peak_rss_gb():.2f} GB (whole process)")
        if args.check:
            check_exact(qf, gf, qp, gp, qc, gc, result, args.check)
            print(f"  {args.check} queries: AP, INP, first match identical to the argsort path")
        del qf, gf


if __name__ == "__main__":
    main()
