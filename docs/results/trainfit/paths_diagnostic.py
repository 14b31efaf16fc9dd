"""Training path (Gumbel masks) vs inference path (top-k) vs every token kept, for the same
saved model, on the training images: ID loss and accuracy of the BNNeck classifier (labels:
the sorted training ids) and Rank-1/mAP on the training identities (Market protocol).

Ran on the Table IV quick folders of 2026-12-06 (2, 5, 10, 20 epochs, seed 0's models);
``torch.manual_seed(0)`` before each path. Usage: ``python paths_diagnostic.py 2=DIR 5=DIR ...``
"""

import json
import re
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import sureid
from sureid.metrics import evaluate


def path_metrics(model, x, labels, pids, cams, run) -> dict:
    torch.manual_seed(0)
    feats = torch.cat([run(x[i:i + 128]) for i in range(0, len(x), 128)])
    logits = model.neck.classifier(model.neck.bn(feats))
    r = evaluate(feats, feats, pids, pids, cams, cams)
    return {"id_loss": round(F.cross_entropy(logits, labels).item(), 3),
            "train_acc": round(100 * (logits.argmax(1) == labels).float().mean().item(), 1),
            "train_rank1": round(100 * float(r.cmc[0]), 1),
            "train_mAP": round(100 * float(r.mAP), 1)}


def main() -> None:
    torch.set_num_threads(2)
    out = []
    for spec in sys.argv[1:]:
        epochs, folder = spec.split("=", 1)
        folder = Path(folder)
        files = sorted((folder / "data" / "bounding_box_train").glob("*.jpg"))
        pids = np.array([int(f.name[:4]) for f in files])
        cams = np.array([int(re.match(r"\d+_c(\d+)", f.name).group(1)) for f in files])
        labels = torch.as_tensor(np.searchsorted(np.unique(pids), pids))
        for name, file in (("vanilla", "vanilla.pt"), ("+HTS", "hts.pt")):
            model = sureid.load(folder / "models" / file).eval()
            extractor = sureid.FeatureExtractor(model)
            x = torch.stack([extractor.transform(Image.open(f).convert("RGB")) for f in files])
            hts = model.backbone
            res = {"epochs": int(epochs), "model": name}
            with torch.no_grad():
                res["inference (top-k)"] = path_metrics(model, x, labels, pids, cams, hts)
                if name == "+HTS":
                    res["training (Gumbel masks)"] = path_metrics(
                        model, x, labels, pids, cams, lambda b, m=hts: m.forward_train(b).features)
                    hts.prune = False
                    res["every token kept"] = path_metrics(model, x, labels, pids, cams, hts)
                    hts.prune = True
            print(json.dumps(res), flush=True)
            out.append(res)
    Path("paths.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
