"""int8 against fp32 on the Table IV models: accuracy (paired interval) and per-core speed.

Takes the models a Table IV run saved (``<run>/models/*.pt``, written by ``ReIDModel.save``),
exports each backbone to ONNX (``export_onnx``), quantises it (``quantize_onnx``: dynamic int8,
decision MLPs kept in float32), extracts query and gallery features with onnxruntime for both
graphs, and reports Rank-1 / mAP of each with the paired difference int8 - fp32 and its 95 %
bootstrap interval over queries (``sureid.ablation.stats``). Then all graphs take turns one
forward at a time on the same random batch (median kept) for the per-core throughput.

    python benchmarks/int8_accuracy.py runs/table4-quick           # vanilla and full SUReID
    python benchmarks/int8_accuracy.py runs/table4-quick --batch 1 --rows vanilla

Needs ``pip install 'sureid[onnx,vision]'``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

import sureid
from sureid.ablation.stats import contrast_interval, per_query
from sureid.data import ImageDataset, read_occluded_duke
from sureid.export import export_onnx, quantize_onnx
from sureid.metrics import evaluate


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="output folder of examples/reproduce_table4.py")
    p.add_argument("--rows", nargs="+", default=["vanilla", "hts_npkd_noda"],
                   help="model files in <run>/models (default: vanilla hts_npkd_noda)")
    p.add_argument("--batch", type=int, default=32, help="batch of the throughput timing")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads when timing")
    p.add_argument("--rounds", type=int, default=50, help="timed forwards per graph")
    return p.parse_args()


def session(path: Path, threads: int):
    import onnxruntime as ort  # pip install 'sureid[onnx]'

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def features(sess, loader) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    feats, pids, cams = [], [], []
    for images, pid, cam, *_ in loader:
        feats.append(sess.run(None, {"images": images.numpy()})[0])
        pids.append(np.asarray(pid))
        cams.append(np.asarray(cam))
    return np.concatenate(feats), np.concatenate(pids), np.concatenate(cams)


def main() -> None:
    args = parse_args()
    from torchvision.transforms import v2  # pip install 'sureid[vision]'

    data = read_occluded_duke(args.run / "data")
    work = Path(tempfile.mkdtemp(prefix="int8-"))
    graphs, results = {}, {}
    for row in args.rows:
        model = sureid.load(args.run / "models" / f"{row}.pt")
        cfg = model.data_config
        tf = v2.Compose([v2.ToImage(), v2.Resize(list(cfg.input_size), antialias=True),
                         v2.ToDtype(torch.float32, scale=True), v2.Normalize(cfg.mean, cfg.std)])

        def loader(recs, tf=tf):
            return DataLoader(ImageDataset(recs, transform=tf), batch_size=256)

        calib = next(iter(loader(data.query)))[0][:64]  # real images: a meaningful overlap
        fp32, int8 = work / f"{row}_fp32.onnx", work / f"{row}_int8.onnx"
        export_onnx(model.backbone.eval(), fp32, cfg.input_size, verify_images=calib)
        report = quantize_onnx(fp32, int8, calib)
        print(f"{row}: int8 vs fp32 on 64 query images: min cosine {report.min_cosine:.4f}, "
              f"kept-token overlap per stage {[round(o, 3) for o in report.token_overlap]}",
              flush=True)
        for kind, path in (("fp32", fp32), ("int8", int8)):
            sess = session(path, threads=torch.get_num_threads())
            qf, qp, qc = features(sess, loader(data.query))
            gf, gp, gc = features(sess, loader(data.gallery))
            r = evaluate(torch.from_numpy(qf), torch.from_numpy(gf), qp, gp, qc, gc)
            results[row, kind] = per_query(r.first_match, r.ap)
            graphs[f"{row} {kind}"] = session(path, threads=args.threads)
            print(f"  {kind}: Rank-1 {100 * r.rank1:.2f}  mAP {100 * r.mAP:.2f}", flush=True)

    x = np.random.default_rng(0).standard_normal(
        (args.batch, 3, *model.data_config.input_size)).astype(np.float32)
    times = {name: [] for name in graphs}
    order = list(graphs.items())
    for s in graphs.values():  # warm-up
        s.run(None, {"images": x})
    for step in range(args.rounds):
        for name, s in order if step % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            s.run(None, {"images": x})
            times[name].append(time.perf_counter() - t0)
    tput = {name: args.batch / statistics.median(t) for name, t in times.items()}
    base = tput[f"{args.rows[0]} fp32"]
    print(f"\nbatch {args.batch}, {args.threads} onnxruntime thread(s), graphs interleaved, "
          f"median of {args.rounds} forwards; Rank-1 / mAP on {len(data.query)} queries\n")
    print("| graph | img/s | vs first fp32 | Rank-1 | mAP | int8 - fp32 Rank-1 [95 % CI] "
          "| int8 - fp32 mAP [95 % CI] |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in graphs:
        row, kind = name.rsplit(" ", 1)
        v = results[row, kind]
        diff = ["", ""]
        if kind == "int8":
            for i, m in enumerate(("rank1", "mAP")):
                est, lo, hi = contrast_interval([v[m][None], results[row, "fp32"][m][None]],
                                                [1, -1])
                diff[i] = f"{est:+.2f} [{lo:+.2f}, {hi:+.2f}]"
        print(f"| {name} | {tput[name]:.0f} | {tput[name] / base:.2f}x | {v['rank1'].mean():.2f} "
              f"| {v['mAP'].mean():.2f} | {diff[0]} | {diff[1]} |")


if __name__ == "__main__":
    main()
