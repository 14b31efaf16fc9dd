"""evaluate() against the bare chunked distance GEMM: cold and warm, random and clustered features.

The floor of a feature-level evaluation is the query x gallery GEMM. This script times the bare
chunked GEMM ``torch.addmm(|g|^2, q_chunk, g.T, alpha=-2)`` with the chunk size evaluate uses
(results discarded; a fresh output per chunk, as issue 17 timed it), the same GEMM writing every
chunk into one reused buffer (``out=``; no page faults on a new 256 MB output: the stricter
floor), and the full ``evaluate`` (distances, ranking, CMC/mAP/mINP), and reports the ratios.

Cold and warm (issue 28): ``--cold-runs`` fresh Python processes (default 2) each time their
*first* ``evaluate`` call, which loads or compiles the numba kernel of
``sureid/metrics/_fused_kernel.py`` (``cache=True``), then ``--repeats`` interleaved GEMM /
warm ``evaluate`` pairs in the same process; each is a ratio to that process's median GEMM.
Every run says whether numba's cache already held the kernel (a hit: loaded; a miss: compiled
and written, the first call ever with that cache folder). ``--fresh-cache`` points the runs at
a new, empty cache folder, so the first shows the first-ever call and the later ones the cached
one. The issue's target: cold <= 1.5x the GEMM once the cache exists.

Then, in this process (warm: the kernel is loaded before timing), the GEMM, the GEMM into a
buffer and ``evaluate``, interleaved, for each feature kind of ``--kinds``.

Features (768-d float32, Market-1501 labels: 3,368 queries of 750 ids, 19,732 gallery images of
751 ids over 6 cameras, the rest distractors):

* ``random``: i.i.d. normal features, the worst case for ranking (every hardest match is deep);
* ``clustered``: ReID-like, ``0.5 * centre(id) + noise`` with distractors in identity groups
  of 8 (Rank-1 about 0.98, mAP about 0.86, mINP about 0.33 at 100k).

It also checks that the numbers equal the exact stable-argsort path of ``evaluate_rank`` on
the same distance rows (a subset of queries) and reports the peak resident memory. The header
names the CPU (model, AVX2 / AVX-512 / VNNI) and the threads.

Usage::

    python benchmarks/eval_floor.py            # issue 28, idle: cold and warm, 3,368 x 100k x 768
    python benchmarks/eval_floor.py --fresh-cache --kinds random   # first-ever vs cached call
    python benchmarks/eval_floor.py --gallery 519732 --repeats 1 --cold-runs 0
    python benchmarks/eval_floor.py --compare-numpy   # also without the compiled count
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from sureid.engine import cpu_line
from sureid.metrics import _fused, _kernels, evaluate, evaluate_rank
from sureid.metrics.distance import _Kernel, _sq_norms
from sureid.metrics.evaluate import _CHUNK_ELEMS

_COLD_MARK = "COLD_RUN_RESULT "  # prefixes the JSON line a cold run prints
_COLD_TARGET = 1.5  # issue 28: a cold evaluate <= 1.5x the GEMM once numba's cache exists


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


def kernel_cache() -> dict:
    """What the first evaluate of this process did with the compiled kernel: ``state`` is
    ``"hit"`` (loaded from numba's cache), ``"miss"`` (compiled, then written to the cache),
    ``"off"`` (compiled, no writable cache folder), ``"unused"`` or ``"no numba"``."""
    if importlib.util.find_spec("numba") is None:
        return {"state": "no numba", "text": "numba not installed: numpy counts, nothing compiled"}
    if not _fused._TRIED:  # read before anything here asks for the kernel
        return {"state": "unused", "text": "the compiled kernel is not used below "
                f"{_kernels._FUSED_MIN_GALLERY} gallery items: nothing compiled"}
    stats = _fused.fused_below().stats
    path = stats.cache_path
    if path is None:
        return {"state": "off", "text": "no writable cache folder: compiled in this process"}
    if sum(stats.cache_hits.values()):
        return {"state": "hit", "path": path, "text": f"numba cache existed: loaded from {path}"}
    return {"state": "miss", "path": path,
            "text": f"no numba cache yet (first call): compiled, written to {path}"}


def cold_run(args) -> None:
    """In a fresh process: the first evaluate, then GEMM / warm evaluate pairs; prints one
    JSON line (seconds) for :func:`cold_runs`."""
    qf, gf, qp, gp, qc, gc = make(args.kinds[0], args.queries, args.gallery, args.dim)
    load = []  # the part of the cold call that imports numba and loads or compiles the kernel
    compile_kernel = _fused._compile

    def timed_compile():
        t = time.perf_counter()
        kernel = compile_kernel()
        load.append(time.perf_counter() - t)
        return kernel

    _fused._compile = timed_compile
    t = time.perf_counter()
    evaluate(qf, gf, qp, gp, qc, gc)
    cold = time.perf_counter() - t
    cache = kernel_cache() | {"load": sum(load)}
    t_gemm, t_warm = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        bare_gemm(qf, gf)
        t_gemm.append(time.perf_counter() - t)
        t = time.perf_counter()
        evaluate(qf, gf, qp, gp, qc, gc)
        t_warm.append(time.perf_counter() - t)
    print(_COLD_MARK + json.dumps({"cold": cold, "gemm": t_gemm, "warm": t_warm,
                                   "cache": cache}), flush=True)


def cold_runs(args) -> None:
    """``--cold-runs`` fresh processes of :func:`cold_run`, one after the other."""
    kind = args.kinds[0]
    print(f"[cold, {kind}] {args.queries} x {args.gallery} x {args.dim}: the first evaluate of a "
          f"fresh process, then {args.repeats} GEMM / warm evaluate pairs in it "
          f"(x: over that process's median GEMM)")
    cmd = [sys.executable, os.path.abspath(__file__), "--cold-child", "--kinds", kind,
           "--gallery", str(args.gallery), "--queries", str(args.queries),
           "--dim", str(args.dim), "--repeats", str(args.repeats)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = dict(os.environ)
    hits = []
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as fresh:
        if args.fresh_cache:
            env["NUMBA_CACHE_DIR"] = fresh
            print(f"  numba cache: a new empty folder, {fresh}")
        for i in range(args.cold_runs):
            out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True)
            line = [x for x in out.stdout.splitlines() if x.startswith(_COLD_MARK)][-1]
            r = json.loads(line[len(_COLD_MARK):])
            g, w = statistics.median(r["gemm"]), statistics.median(r["warm"])
            print(f"  run {i + 1}: cold evaluate {r['cold']:6.2f} s = {r['cold'] / g:.2f}x "
                  f"(kernel load {r['cache']['load']:.2f} s), warm {w:6.2f} s = {w / g:.2f}x, "
                  f"GEMM {g:6.2f} s; {r['cache']['text']}")
            if r["cache"]["state"] in ("hit", "unused", "no numba"):
                hits.append(r["cold"] / g)
    if hits:
        met = "met" if max(hits) <= _COLD_TARGET else "not met"
        print(f"  cold <= {_COLD_TARGET}x the GEMM with nothing to compile (issue 28): {met} "
              f"({', '.join(f'{x:.2f}x' for x in hits)})")
    elif args.cold_runs:
        print("  no run found the kernel in numba's cache: run again for the cached figure")


def warm(args) -> None:
    """This process: GEMM, GEMM into a buffer and evaluate interleaved, per feature kind."""
    fused = _kernels.fused_below()  # loaded (or compiled) before timing: warm calls only
    print(f"[warm] this process, compiled count {'on' if fused is not None else 'off (no numba)'}"
          f", {args.repeats} interleaved rounds")
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gallery", type=int, default=100_000, help="gallery items (default 100000)")
    ap.add_argument("--queries", type=int, default=3368, help="queries (default 3368)")
    ap.add_argument("--dim", type=int, default=768, help="feature dimension (default 768)")
    ap.add_argument("--kinds", nargs="+", choices=("random", "clustered"),
                    default=["random", "clustered"],
                    help="feature kinds of the warm comparison; the cold runs use the first")
    ap.add_argument("--repeats", type=int, default=2,
                    help="interleaved GEMM/evaluate pairs, per kind and per cold run")
    ap.add_argument("--cold-runs", type=int, default=2,
                    help="fresh processes timing their first evaluate (default 2: the first "
                    "may compile the kernel, the next finds it cached); 0: none")
    ap.add_argument("--fresh-cache", action="store_true",
                    help="the cold runs use a new, empty numba cache folder (NUMBA_CACHE_DIR), "
                    "so the first one is the first call ever")
    ap.add_argument("--check", type=int, default=48, help="queries checked against argsort")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--compare-numpy", action="store_true",
                    help="also time evaluate with the numpy counts only (no compiled kernel)")
    ap.add_argument("--cold-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.cold_child:
        cold_run(args)
        return
    numba = (importlib.metadata.version("numba") if importlib.util.find_spec("numba")
             else "not installed")
    print(cpu_line())
    print(f"torch {torch.__version__}, numpy {np.__version__}, numba {numba}, "
          f"threads {torch.get_num_threads()}")
    if args.cold_runs:
        cold_runs(args)
    warm(args)


if __name__ == "__main__":
    main()
