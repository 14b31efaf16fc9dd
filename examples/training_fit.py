"""Retrieval on the TRAINING identities, beside the test figures: over-fitting or not?

For each Table IV output folder (``reproduce_table4.py --output-dir``) and each saved model
(``models/*.pt``, seed 0's), every training image is a query against all the others under
the Market-1501 protocol (same identity and camera excluded, the query itself included), with
the model's inference path (HTS pruning on). Rising training Rank-1 with falling test Rank-1
is over-fitting; falling training Rank-1 while the training loss falls is a train/inference
mismatch.

Usage::

    python examples/training_fit.py 2=runs/table4-quick 5=runs/e5 10=runs/e10 20=runs/e20 \\
        --extra "20:+HTS keep 1.0=runs/e20k1/models/hts.pt" --output docs/results/trainfit
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import torch

import sureid
from sureid.metrics import evaluate

MODELS = {"vanilla": "vanilla.pt", "+HTS": "hts.pt", "+HTS+NPKD": "hts_npkd.pt",
          "+HTS+NPKD+NODA": "hts_npkd_noda.pt"}


def training_retrieval(model_file: Path, images: list[Path]) -> dict[str, float]:
    """Rank-1 and mAP (%) of all ``images`` against each other (Market protocol), and how
    often each image's nearest other image (Euclidean, any camera) has its identity or its
    camera (%)."""
    pids = np.array([int(f.name.split("_")[0]) for f in images])
    cams = np.array([int(re.match(r"-?\d+_c(\d+)", f.name).group(1)) for f in images])
    feats = sureid.FeatureExtractor(sureid.load(model_file), batch_size=64)(
        [str(f) for f in images]).features
    r = evaluate(feats, feats, pids, pids, cams, cams)
    dist = torch.cdist(feats, feats).fill_diagonal_(float("inf"))
    nearest = dist.argmin(dim=1).numpy()
    return {"train_rank1": 100 * float(r.cmc[0]), "train_mAP": 100 * float(r.mAP),
            "nn_same_id": 100 * float((pids[nearest] == pids).mean()),
            "nn_same_camera": 100 * float((cams[nearest] == cams).mean())}


def test_row(rows: list[dict], name: str, table: Path) -> dict:
    """The row called ``name`` of a table4.json, or its only row (an ``--extra`` model's run
    trained that one row, under the table's own name for it)."""
    match = [r for r in rows if r["name"] == name]
    if match or len(rows) == 1:
        return (match or rows)[0]
    raise ValueError(f"{table}: no row {name!r} among {[r['name'] for r in rows]}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="EPOCHS=DIR", help="a Table IV output folder")
    ap.add_argument("--extra", nargs="*", default=[], metavar="EPOCHS:NAME=MODEL",
                    help="another model file at a budget (its test Rank-1 from the "
                         "table4.json beside its models/ folder)")
    ap.add_argument("--output", type=Path, required=True, help="folder for the .md and .json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    jobs = []  # (epochs, name, model file, table4.json, data folder)
    for spec in args.runs:
        epochs, folder = spec.split("=", 1)
        folder = Path(folder)
        for name, file in MODELS.items():
            if (folder / "models" / file).is_file():
                jobs.append((int(epochs), name, folder / "models" / file, folder / "table4.json",
                             folder / "data"))
    for spec in args.extra:
        head, file = spec.split("=", 1)
        epochs, name = head.split(":", 1)
        data = next((folder for e, _, _, _, folder in jobs if e == int(epochs)), None)
        if data is None:  # the model's training images are those of the run at its budget
            ap.error(f"--extra {spec!r}: no EPOCHS=DIR run at {epochs} epochs to take the "
                     "training images from")
        file = Path(file)
        jobs.append((int(epochs), name, file, file.parent.parent / "table4.json", data))
    rows = []
    for epochs, name, file, table, data in jobs:
        test = test_row(json.loads(table.read_text())["rows"], name, table)["per_seed"][0]
        fit = training_retrieval(file, sorted((data / "bounding_box_train").glob("*.jpg")))
        rows.append({"epochs": epochs, "model": name, **{k: round(v, 2) for k, v in fit.items()},
                     "test_rank1": round(test["rank1"], 2), "test_mAP": round(test["mAP"], 2),
                     "seed": test["seed"]})
        print(rows[-1], flush=True)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "training_fit.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["Rank-1 / mAP (%) on the training identities (all training images against each "
             "other, Market protocol, inference path) and on the test split, seed 0's models; "
             "the nearest other training image (Euclidean, any camera): same identity, same "
             "camera (%)",
             "", "| epochs | model | train Rank-1 | train mAP | nearest: same id | same camera "
             "| test Rank-1 | test mAP |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['epochs']} | {r['model']} | {r['train_rank1']:.1f} | {r['train_mAP']:.1f} "
              f"| {r['nn_same_id']:.1f} | {r['nn_same_camera']:.1f} "
              f"| {r['test_rank1']:.1f} | {r['test_mAP']:.1f} |" for r in rows]
    (args.output / "training_fit.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
