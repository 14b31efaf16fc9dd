"""The ``sureid`` command line: extract, evaluate, rank, export, info.

Every subcommand takes a model file written by ``ReIDModel.save`` (see ``sureid.load``).
Bad paths, files that are not sureid models and inputs that do not fit the model end with a
one-line ``sureid: error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import textwrap
from pathlib import Path

__all__ = ["main"]

_EPILOG_MAIN = """\
examples:
  sureid info runs/final.pt
  sureid extract runs/final.pt data/query/ -o query_feats.pt --flip
  sureid evaluate runs/final.pt --data-root data/Occluded_Duke --rerank
  sureid rank runs/final.pt data/query/ data/bounding_box_test/ --topk 10 -o ranks/
  sureid export runs/final.pt model.onnx

Model files come from ReIDModel.save(path); see docs/inference.md.
"""

_MARKET = re.compile(r"^(-?\d+)_c(\d+)")
_CAMID = re.compile(r"^(\d+)_")


def _labels_of(path: str) -> tuple[int, int] | None:
    """``(pid, camid)`` from a Market/Duke name (``0002_c1s1_...``, camid zero-based) or a
    ``<pid>/<camid>_*.jpg`` path; ``None`` when neither fits."""
    p = Path(path)
    m = _MARKET.match(p.name)
    if m is not None:
        return int(m.group(1)), int(m.group(2)) - 1
    c = _CAMID.match(p.name)
    if c is not None and p.parent.name.isdigit():
        return int(p.parent.name), int(c.group(1))
    return None


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=79)


def _add_model_options(p: argparse.ArgumentParser, *, batch: bool = True) -> None:
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 "
                   "(default: %(default)s)")
    if batch:
        p.add_argument("--batch-size", type=int, default=64, metavar="N",
                       help="images per forward (default: %(default)s)")
        p.add_argument("--workers", type=int, default=0, metavar="N",
                       help="DataLoader workers reading images (default: %(default)s)")
        p.add_argument("--flip", action="store_true",
                       help="flip test-time augmentation: average with the mirrored image")
        p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")


def _add_keep_ratio(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep-ratio", type=float, metavar="P",
                   help="HTS models: keep ratio p at inference (stages keep p, p^2, p^3 of the "
                        "patch tokens) instead of the one the model was trained with")


def _add_rerank_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("distance and re-ranking")
    g.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean",
                   help="feature distance (default: %(default)s; euclidean is squared)")
    g.add_argument("--rerank", action="store_true",
                   help="k-reciprocal re-ranking (Zhong et al. 2017), bounded memory")
    g.add_argument("--k1", type=int, default=20, help="re-ranking k1 (default: %(default)s)")
    g.add_argument("--k2", type=int, default=6, help="re-ranking k2 (default: %(default)s)")
    g.add_argument("--lambda", dest="lambda_value", type=float, default=0.3, metavar="L",
                   help="weight of the original distance (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sureid",
        description=_wrap("Person re-identification with a trained sureid model: extract features, "
                    "evaluate, rank a gallery, export to ONNX."),
        epilog=_EPILOG_MAIN, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from .version import __version__

    parser.add_argument("--version", action="version", version=f"sureid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser(
        "extract", help="embed images into a feature file", formatter_class=fmt,
        description=_wrap("Embed images with MODEL (its own preprocessing) and write a .pt file "
                    "holding 'features' (N, C) float32, 'paths', and 'pids'/'camids' when every "
                    "file name carries them (Market/Duke names or <pid>/<camid>_*.jpg)."),
        epilog="example:\n  sureid extract runs/final.pt data/query/ -o query_feats.pt",
    )
    p.add_argument("model", help="model file written by ReIDModel.save")
    _add_keep_ratio(p)
    p.add_argument("images", help="an image folder (searched recursively) or one image")
    p.add_argument("-o", "--output", required=True, help="output .pt file")
    p.add_argument("--kept", action="store_true",
                   help="also store the kept patch indices of HTS models ('kept')")
    _add_model_options(p)

    p = sub.add_parser(
        "evaluate", help="Rank-1/mAP/mINP on a dataset's query and gallery", formatter_class=fmt,
        description=_wrap("Evaluate MODEL on the query/gallery split of a dataset folder with the "
                    "Market-1501 protocol (see docs/evaluation.md)."),
        epilog="examples:\n  sureid evaluate runs/final.pt --data-root data/Occluded_Duke\n"
               "  sureid evaluate runs/final.pt --data-root my_data/ --dataset custom --rerank",
    )
    p.add_argument("model", help="model file written by ReIDModel.save")
    _add_keep_ratio(p)
    p.add_argument("--data-root", required=True, help="dataset folder")
    p.add_argument("--dataset", default="auto",
                   help="reader name (market1501, dukemtmc, occluded_duke, occluded_reid, "
                        "partial_reid, custom); 'auto' (default): Market-style folders if "
                        "bounding_box_test/ exists, else custom query/ and gallery/")
    p.add_argument("--max-rank", type=int, default=10, metavar="K",
                   help="print CMC up to rank K (default: %(default)s)")
    p.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    _add_rerank_options(p)
    _add_model_options(p)

    p = sub.add_parser(
        "rank", help="ranked-list pictures and a CSV of the top-k gallery images",
        formatter_class=fmt,
        description=_wrap("For every query image, find the TOPK closest gallery images and write "
                    "OUTPUT/ranking.csv (query,rank,gallery,distance,match) and one PNG per "
                    "query: the query and its top-k, framed green (same pid) or red (other "
                    "pid) when file names carry labels, with the kept tokens of HTS models "
                    "below. Gallery images with the query's pid and camera are left out, as "
                    "in evaluation."),
        epilog="example:\n  sureid rank runs/final.pt data/query/ data/bounding_box_test/ "
               "--topk 10 -o ranks/",
    )
    p.add_argument("model", help="model file written by ReIDModel.save")
    _add_keep_ratio(p)
    p.add_argument("query", help="query image folder (or one image)")
    p.add_argument("gallery", help="gallery image folder")
    p.add_argument("--topk", type=int, default=10, help="gallery images per query "
                   "(default: %(default)s)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--max-pictures", type=int, default=None, metavar="N",
                   help="write pictures for the first N queries only (the CSV has all)")
    p.add_argument("--no-kept", action="store_true", help="no kept-token row in the pictures")
    _add_rerank_options(p)
    _add_model_options(p)

    p = sub.add_parser(
        "export", help="export the backbone to ONNX", formatter_class=fmt,
        description=_wrap("Export MODEL's backbone (an HTSViT, token pruning in the graph) to ONNX "
                    "with sureid.export_onnx at the model's input size; the output is the "
                    "backbone embedding (pre-BN)."),
        epilog="example:\n  sureid export runs/final.pt model.onnx --opset 17",
    )
    p.add_argument("model", help="model file written by ReIDModel.save")
    _add_keep_ratio(p)
    p.add_argument("output", help="output .onnx file")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")
    p.add_argument("--static-batch", action="store_true", help="fix the batch size to 1")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the onnxruntime comparison with PyTorch")

    p = sub.add_parser(
        "info", help="describe a model file: architecture, input, GFLOPs",
        formatter_class=fmt, description=_wrap("Print what a model file holds and its GFLOPs per "
                                         "image (torch.utils.flop_counter, 2 per multiply-add)."),
        epilog="example:\n  sureid info runs/final.pt",
    )
    p.add_argument("model", help="model file written by ReIDModel.save")
    _add_keep_ratio(p)
    return parser


# ----------------------------------------------------------------------------- commands
def _load(path: str, device: str = "cpu", keep_ratio: float | None = None):
    from .hub import load

    model = load(path, map_location=device)
    if keep_ratio is not None:
        if not 0.0 < keep_ratio <= 1.0:
            raise ValueError(f"--keep-ratio must be in (0, 1], got {keep_ratio}")
        if not getattr(model.backbone, "prune", False):
            raise ValueError(f"--keep-ratio needs an HTS model (pruning on); {path} keeps every "
                             "token")
        model.backbone.keep_ratios = [keep_ratio ** (s + 1)
                                      for s in range(len(model.backbone.keep_ratios))]
    return model


def _extractor(model, args, *, kept: bool = False):
    from .inference import FeatureExtractor

    return FeatureExtractor(
        model, device=args.device, batch_size=args.batch_size, flip=args.flip,
        kept_indices=kept, progress=not args.no_progress, num_workers=args.workers,
    )


def _cmd_extract(args) -> None:
    import torch

    from .engine.checkpoint import save_checkpoint

    model = _load(args.model, args.device, args.keep_ratio)
    out = _extractor(model, args, kept=args.kept)(args.images)
    state: dict = {"features": out.features, "paths": out.paths}
    labels = [_labels_of(p) for p in out.paths or []]
    if labels and all(lab is not None for lab in labels):
        state["pids"] = torch.tensor([lab[0] for lab in labels])
        state["camids"] = torch.tensor([lab[1] for lab in labels])
    if out.kept is not None:
        state["kept"] = out.kept
    save_checkpoint(state, args.output)
    print(f"wrote {args.output}: {tuple(out.features.shape)} features of {len(out.features)} "
          "images")


def _dataset(root: str, name: str):
    from .data.datasets import build_dataset

    if name != "auto":
        return build_dataset(name, root)
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"dataset root not found: {root!r}")
    if (base / "bounding_box_test").is_dir():
        return build_dataset("occluded_duke", root)  # Market/Duke/Occluded-Duke layout
    if any((base / f"{s}{ext}").exists() for s in ("query", "gallery") for ext in ("", ".csv")):
        return build_dataset("custom", root)
    raise FileNotFoundError(
        f"{root!r} holds neither bounding_box_test/ (Market-style) nor query/ and gallery/ "
        "(custom); pass --dataset"
    )


def _cmd_evaluate(args) -> None:
    import json

    from .metrics.evaluate import evaluate

    model = _load(args.model, args.device, args.keep_ratio)
    ds = _dataset(args.data_root, args.dataset)
    ext = _extractor(model, args)
    qf = ext([r.path for r in ds.query]).features
    gf = ext([r.path for r in ds.gallery]).features
    r = evaluate(
        qf, gf, [x.pid for x in ds.query], [x.pid for x in ds.gallery],
        [x.camid for x in ds.query], [x.camid for x in ds.gallery], metric=args.metric,
        max_rank=max(1, args.max_rank), rerank=args.rerank, k1=args.k1, k2=args.k2,
        lambda_value=args.lambda_value,
    )
    ranks = [k for k in (1, 5, 10, 20, 50) if k <= len(r.cmc)]
    result = {
        "dataset": ds.name, "num_query": len(ds.query), "num_gallery": len(ds.gallery),
        "rerank": bool(args.rerank), "metric": args.metric, "mAP": r.mAP, "mINP": r.mINP,
        **{f"rank{k}": r.rank(k) for k in ranks},
        "num_valid_queries": r.num_valid_queries, "num_skipped": r.num_skipped,
    }
    print(f"{ds.name}: {len(ds.query)} queries, {len(ds.gallery)} gallery images"
          f"{', re-ranked' if args.rerank else ''}")
    print("  " + "  ".join(f"Rank-{k} {100 * r.rank(k):.1f}" for k in ranks)
          + f"  mAP {100 * r.mAP:.1f}  mINP {100 * r.mINP:.1f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


def _cmd_rank(args) -> None:
    import numpy as np

    from .inference import _hts_of
    from .metrics.rerank import rank_gallery
    from .viz_rank import render_ranked_list

    if args.topk < 1:
        raise ValueError(f"--topk must be >= 1, got {args.topk}")
    model = _load(args.model, args.device, args.keep_ratio)
    for what, folder in (("query", args.query), ("gallery", args.gallery)):
        if not Path(folder).exists():
            raise FileNotFoundError(f"{what} folder not found: {folder!r}")
    if not Path(args.gallery).is_dir():
        raise NotADirectoryError(f"gallery must be a folder: {args.gallery!r}")
    ext = _extractor(model, args)
    q, g = ext(args.query), ext(args.gallery)
    q_lab = [_labels_of(p) for p in q.paths]
    g_lab = [_labels_of(p) for p in g.paths]
    labelled = all(x is not None for x in q_lab + g_lab)
    # room for the gallery items that share the query's pid and camera (left out below)
    extra = 0
    if labelled:
        counts: dict = {}
        for lab in g_lab:
            counts[lab] = counts.get(lab, 0) + 1
        extra = max((counts.get(lab, 0) for lab in q_lab), default=0)
    idx, dist = rank_gallery(
        q.features, g.features, topk=args.topk + extra, metric=args.metric, rerank=args.rerank,
        k1=args.k1, k2=args.k2, lambda_value=args.lambda_value,
    )
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    rows, lists = [], []
    for i in range(len(q.paths)):
        keep = [j for j in range(idx.shape[1])
                if not (labelled and g_lab[idx[i, j]] == q_lab[i])][: args.topk]
        ranked = [(int(idx[i, j]), float(dist[i, j])) for j in keep]
        matches = [g_lab[j][0] == q_lab[i][0] if labelled else None for j, _ in ranked]
        lists.append((ranked, matches))
        for r, ((j, d), m) in enumerate(zip(ranked, matches, strict=True), 1):
            rows.append([q.paths[i], r, g.paths[j], f"{d:.6g}", "" if m is None else int(m)])
    with open(out / "ranking.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["query", "rank", "gallery", "distance", "match"])
        w.writerows(rows)
    n_pic = len(q.paths) if args.max_pictures is None else min(args.max_pictures, len(q.paths))
    hts = _hts_of(model)
    overlay = not args.no_kept and hts is not None and hts.prune and hts.keep_ratios[-1] < 1
    size = tuple(ext.data_config.input_size)
    patch = None
    if overlay:
        ps = hts.backbone.patch_embed.patch_size
        patch = (ps, ps) if isinstance(ps, int) else tuple(ps)
        kept_ext = _extractor(model, args, kept=True)
        kept_ext.progress = False
    names: set[str] = set()
    for i in range(n_pic):
        ranked, matches = lists[i]
        kept = None
        if overlay:
            paths = [q.paths[i], *(g.paths[j] for j, _ in ranked)]
            kept = list(kept_ext(paths).kept[-1])
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(q.paths[i]).stem)
        name = f"{i:04d}_{stem}.png" if stem in names or not stem else f"{stem}.png"
        names.add(stem)
        title = None
        if labelled:
            hits = sum(bool(m) for m in matches)
            title = f"pid {q_lab[i][0]} cam {q_lab[i][1]}: {hits}/{len(matches)} true"
        render_ranked_list(
            q.paths[i], [g.paths[j] for j, _ in ranked], matches=matches,
            distances=[d for _, d in ranked], kept=kept, patch_size=patch, size=size,
            title=title, path=out / name,
        )
    summary = f"wrote {out / 'ranking.csv'} ({len(q.paths)} queries x top-{args.topk})"
    print(f"{summary} and {n_pic} pictures" + (" with kept tokens" if overlay else ""))
    if labelled:
        top1 = np.mean([bool(m[0]) for _, m in lists if m]) if lists else 0.0
        print(f"  top-1 same pid: {100 * top1:.1f}% of queries")


def _cmd_export(args) -> None:
    from .export import export_onnx

    model = _load(args.model, keep_ratio=args.keep_ratio)
    size = tuple(model.data_config.input_size)
    path = export_onnx(model.backbone, args.output, img_size=size,
                       dynamic_batch=not args.static_batch, opset=args.opset,
                       verify=not args.no_verify)
    note = " (the BNNeck is not in the graph)" if model.eval_feature == "after" else ""
    print(f"wrote {path}: images (B, 3, {size[0]}, {size[1]}) -> embedding (B, "
          f"{model.embed_dim}){note}")


def _cmd_info(args) -> None:
    from .flops import count_flops
    from .hub import describe_backbone_file
    from .inference import describe

    weights = describe_backbone_file(args.model)  # shipped backbone weights, not a model file
    if weights is not None and args.keep_ratio is None:
        print(weights)
        return
    model = _load(args.model, keep_ratio=args.keep_ratio)
    cfg = model.data_config
    print(f"{args.model}: {describe(model)}")
    print(f"  preprocessing: resize to {cfg.input_size[0]}x{cfg.input_size[1]}, mean "
          f"{list(cfg.mean)}, std {list(cfg.std)}")
    params = sum(p.numel() for p in model.backbone.parameters())
    print(f"  backbone parameters: {params / 1e6:.2f} M, {count_flops(model):.3f} GFLOPs/image")
    if model.metadata:
        print(f"  metadata: {model.metadata}")


_COMMANDS = {
    "extract": _cmd_extract, "evaluate": _cmd_evaluate, "rank": _cmd_rank,
    "export": _cmd_export, "info": _cmd_info,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sureid`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    for name in ("batch_size", "workers"):
        value = getattr(args, name, None)
        if value is not None and value < (1 if name == "batch_size" else 0):
            print(f"sureid: error: --{name.replace('_', '-')} must be "
                  f"{'>= 1' if name == 'batch_size' else '>= 0'}, got {value}", file=sys.stderr)
            return 2
    try:
        _COMMANDS[args.command](args)
    except (FileNotFoundError, NotADirectoryError, ValueError, TypeError, ImportError,
            IndexError) as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"sureid: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sureid: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # python -m sureid.cli
    sys.exit(main())
