"""Deployment speed: pruned vs dense HTSViT in onnxruntime, and torch.compile vs eager.

One run, same weights, same inputs. Part 1 exports the pruned model (``keep_ratio=0.7``,
stages before blocks 3, 6, 9) and the dense model (the same module with ``prune=False``) with
:func:`sureid.export_onnx` (each file verified against PyTorch at batch 1 and 32, max abs
diff printed), then times both ONNX files in onnxruntime (CPU) interleaved: one call of each
per round, min and median over rounds, ratio dense / pruned. PyTorch eager timings of the
same two models are taken in the same rounds.

With ``--int8`` (default) both graphs are also quantised with :func:`sureid.export.quantize_onnx`
(dynamic int8, decision MatMuls kept in float32); its report (embedding cosine and kept-token
overlap against the float32 graph on 16 random images) is printed, and the int8 graphs are
timed in the same rounds: dense fp32, dense int8, pruned fp32, pruned int8.

Part 2 compiles the pruned model with ``torch.compile`` (eval mode, ``dynamic=False``),
checks the embeddings against eager and times compiled vs eager interleaved. Compile time
is reported separately (inductor needs a C++ compiler on CPU).

Usage::

    python benchmarks/onnx_speed.py                      # DeiT-S 256x128, batch 1 and 32
    python benchmarks/onnx_speed.py --quick              # tiny smoke run
    python benchmarks/onnx_speed.py --skip-compile --rounds 20
    python benchmarks/onnx_speed.py --threads 1 --skip-compile --skip-eager   # int8 per core
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

import sureid
from sureid.export import quantize_onnx


def build(arch: str, img_size: tuple[int, int]) -> tuple[sureid.HTSViT, sureid.HTSViT]:
    """Pruned and dense HTSViT sharing one set of random weights."""
    if arch == "tiny-test":
        vit = sureid.VisionTransformer(img_size=img_size, patch_size=8, embed_dim=32, depth=4,
                                       num_heads=2)
        layers = (1, 3)
    else:
        make = {"deit_tiny": sureid.deit_tiny, "deit_small": sureid.deit_small}[arch]
        vit = make(img_size=img_size)
        layers = (3, 6, 9)
    pruned = sureid.HTSViT(vit, keep_ratio=0.7, prune_layers=layers).eval()
    dense = sureid.HTSViT(vit, keep_ratio=0.7, prune_layers=layers, prune=False).eval()
    dense.decision.load_state_dict(pruned.decision.state_dict())
    return pruned, dense


def interleaved(fns: dict[str, callable], rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():  # warm-up
        fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def report(times: dict[str, list[float]], batch: int, pairs: list[tuple[str, str]]) -> None:
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:<22} min {min(ts) * 1e3:9.2f} ms  median {med * 1e3:9.2f} ms  "
              f"{batch / med:9.1f} img/s")
    for slow, fast in pairs:
        r_min = min(times[slow]) / min(times[fast])
        r_med = statistics.median(times[slow]) / statistics.median(times[fast])
        print(f"  speed-up {slow} / {fast}: {r_min:.2f}x (min)  {r_med:.2f}x (median)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="deit_small", choices=["deit_small", "deit_tiny", "tiny-test"])
    p.add_argument("--img-size", type=int, nargs=2, default=(256, 128))
    p.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--compile-backend", default="inductor")
    p.add_argument("--skip-compile", action="store_true")
    p.add_argument("--skip-eager", action="store_true", help="time onnxruntime only")
    p.add_argument("--no-int8", dest="int8", action="store_false",
                   help="skip the dynamic int8 graphs")
    p.add_argument("--quick", action="store_true", help="tiny model, 32x16, 3 rounds")
    args = p.parse_args()
    if args.quick:
        args.arch, args.img_size, args.rounds = "tiny-test", (32, 16), 3
    img_size = tuple(args.img_size)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    pruned, dense = build(args.arch, img_size)
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, {args.threads} thread(s); "
          f"{args.arch} {img_size}, keep ratios {tuple(round(r, 3) for r in pruned.keep_ratios)} "
          f"before blocks {pruned.prune_layers}")

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    # idle ORT threads otherwise spin after each run and steal the CPU from the next timed call
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {}
        for name, model in (("pruned", pruned), ("dense", dense)):
            path = Path(tmp) / f"{name}.onnx"
            t = time.perf_counter()
            sureid.export_onnx(model, path, img_size, verify=False)
            print(f"exported {name}: {time.perf_counter() - t:.1f} s, "
                  f"{path.stat().st_size / 2**20:.1f} MiB")
            sessions[name] = ort.InferenceSession(
                str(path), opts, providers=["CPUExecutionProvider"]
            )
            if args.int8:
                qpath = Path(tmp) / f"{name}-int8.onnx"
                images = torch.randn(16, 3, *img_size, generator=torch.Generator().manual_seed(1))
                t = time.perf_counter()
                rep = quantize_onnx(path, qpath, images, min_cosine=-0.99, min_token_overlap=-1)
                print(f"quantised {name}: {time.perf_counter() - t:.1f} s, "
                      f"{qpath.stat().st_size / 2**20:.1f} MiB; vs fp32 on 16 random images: "
                      f"cosine min {rep.min_cosine:.4f} mean {rep.mean_cosine:.4f}, kept-token "
                      f"overlap per stage {[round(o, 3) for o in rep.token_overlap]}")
                sessions[f"{name}-int8"] = ort.InferenceSession(
                    str(qpath), opts, providers=["CPUExecutionProvider"]
                )

        for b in args.batch:
            x = torch.randn(b, 3, *img_size)
            feed = {"images": x.numpy()}
            with torch.no_grad():
                refs = {"pruned": pruned(x), "dense": dense(x)}
            for name, s in sessions.items():
                out = s.run(None, feed)[0]
                ref = refs[name.removesuffix("-int8")].numpy()
                cos = (out * ref).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(ref, axis=1)
                print(f"batch {b}: onnxruntime {name} vs PyTorch fp32: max abs diff "
                      f"{np.abs(out - ref).max():.2e}, cosine min {cos.min():.4f}")
            fns = {f"ort {name}": (lambda s=s, f=feed: s.run(None, f))
                   for name, s in sessions.items()}
            if not args.skip_eager:
                fns["torch eager pruned"] = lambda x=x: pruned(x)
                fns["torch eager dense"] = lambda x=x: dense(x)
            with torch.no_grad():
                times = interleaved(fns, args.rounds)
            print(f"batch {b}, {args.rounds} rounds:")
            pairs = [("ort dense", "ort pruned")]
            if args.int8:
                pairs += [("ort dense", "ort dense-int8"), ("ort dense", "ort pruned-int8"),
                          ("ort pruned", "ort pruned-int8")]
            if not args.skip_eager:
                pairs += [("torch eager dense", "torch eager pruned"),
                          ("torch eager pruned", "ort pruned")]
            report(times, b, pairs)

    if args.skip_compile:
        return
    torch._dynamo.reset()
    compiled = torch.compile(pruned, backend=args.compile_backend, dynamic=False)
    for b in args.batch:
        x = torch.randn(b, 3, *img_size)
        with torch.no_grad():
            t = time.perf_counter()
            out = compiled(x)
            compile_s = time.perf_counter() - t
            err = (out - pruned(x)).abs().max().item()
            print(f"batch {b}: torch.compile({args.compile_backend}) first call {compile_s:.1f} s, "
                  f"max abs diff vs eager {err:.2e}")
            times = interleaved({"compiled pruned": lambda x=x: compiled(x),
                                 "eager pruned": lambda x=x: pruned(x)}, args.rounds)
        report(times, b, [("eager pruned", "compiled pruned")])


if __name__ == "__main__":
    main()
