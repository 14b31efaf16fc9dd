"""The ``sureid`` command line: extract, evaluate, rank, export, info.

Every subcommand takes a model file written by ``ReIDModel.save`` (see ``sureid.load``).
Bad paths, files that are not sureid models and inputs that do not fit the model end with a
one-line ``sureid: error: ...`` on stderr and exit status 2.

Outputs never replace or join an input, and are checked before any work: an output file may
not be the model or an input, nor lie inside an input folder; an existing output file is
replaced only when it is that command's own kind of output (a feature file, an evaluation
JSON, an ONNX graph); ``rank``'s output folder must be new, empty or an earlier ``rank``
output (its ``sureid_rank.json`` lists every file), and is written whole or not at all.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import sys
import textwrap
from pathlib import Path

from ._checks import check_device, check_output_path, check_real

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

def _labels_of(path: str) -> tuple[int, int] | None:
    """``(pid, camid)`` from a Market/Duke name (``0002_c1s1_...``, camid zero-based) or a
    ``<pid>/<camid>_*.jpg`` path (:func:`sureid.data.labels.path_labels`, the readers'
    parser); ``None`` when neither fits."""
    from .data.labels import path_labels

    labels = path_labels(path)
    return None if labels is None else (labels.pid, labels.camid)


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
                        "partial_reid, custom); 'auto' (default): detected as "
                        "sureid.data.detect_layout does, in the folder or a subfolder with a "
                        "usual dataset name (docs/data.md)")
    p.add_argument("--max-rank", type=int, default=10, metavar="K",
                   help="print CMC up to rank K (default: %(default)s)")
    p.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    _add_rerank_options(p)
    g = p.add_argument_group("query expansion and breakdown")
    g.add_argument("--aqe", action="store_true",
                   help="alpha query expansion first (fast-reid's aqe; with --rerank, QE "
                        "comes first)")
    g.add_argument("--aqe-k", type=int, default=5, metavar="K",
                   help="features averaged per query expansion, itself included (default: "
                        "%(default)s)")
    g.add_argument("--aqe-alpha", type=float, default=3.0, metavar="A",
                   help="weight exponent of the cosine similarity (default: %(default)s)")
    g.add_argument("--camera-pairs", action="store_true",
                   help="also report Rank-1/mAP of each query camera against each gallery "
                        "camera (cameras numbered as the reader gives them, from 0)")
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
                    "backbone embedding (pre-BN). The file's metadata_props record the input "
                    "size, mean, std, embedding dimension and keep ratios "
                    "(sureid.export.read_onnx_metadata)."),
        epilog="examples:\n  sureid export runs/final.pt model.onnx --opset 17\n"
               "  sureid export runs/final.pt model-int8.onnx --quantize int8 "
               "--verify-images data/query",
    )
    p.add_argument("model", help="model file written by ReIDModel.save")
    _add_keep_ratio(p)
    p.add_argument("output", help="output .onnx file")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")
    p.add_argument("--static-batch", action="store_true", help="fix the batch size to 1")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the onnxruntime comparison with PyTorch")
    p.add_argument("--quantize", choices=("int8",),
                   help="dynamic int8 quantisation of the linear layers, written only if its "
                        "embeddings and kept tokens agree with the float32 graph "
                        "(sureid.export.quantize_onnx)")
    p.add_argument("--verify-images", metavar="DIR",
                   help="with --quantize: check the int8 graph on (up to 32 of) these images "
                        "instead of 8 random ones (real images give a meaningful kept-token "
                        "overlap)")

    p = sub.add_parser(
        "info", help="describe a model file: architecture, input, GFLOPs",
        formatter_class=fmt, description=_wrap("Print what a model file holds and its GFLOPs per "
                                         "image (torch.utils.flop_counter, 2 per multiply-add)."),
        epilog="example:\n  sureid info runs/final.pt",
    )
    p.add_argument("model", help="model file written by ReIDModel.save")
    _add_keep_ratio(p)
    _add_train_parser(sub)
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


# ----------------------------------------------------------------------------- outputs
RANK_MANIFEST = "sureid_rank.json"
_RANK_FORMAT = "sureid-rank"


def _is_feature_file(path: Path) -> bool:
    from .engine.checkpoint import load_checkpoint

    try:
        state = load_checkpoint(path)
    except Exception:  # anything unreadable as a checkpoint is not ours
        return False
    return isinstance(state, dict) and "features" in state and "paths" in state


def _is_result_json(path: Path) -> bool:
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(result, dict) and {"dataset", "mAP", "num_query"} <= set(result)


def _is_onnx_file(path: Path) -> bool:
    try:
        import onnx

        return len(onnx.load(str(path), load_external_data=False).graph.node) > 0
    except Exception:  # not installed (export would stop anyway), or not an ONNX graph
        return False


def _output_file(option: str, path: str, inputs, ours, what: str) -> Path:
    """``path`` checked as an output file of one command (see the module docstring)."""
    out = check_output_path(option, path, inputs=inputs)
    if out.exists() and not ours(out):
        raise FileExistsError(
            f"{option} {str(out)!r} exists and is not {what}; refusing to replace it: choose "
            "a new path or delete it first"
        )
    return out


def _rank_folder_problem(folder: Path) -> str | None:
    """Why ``folder`` may not be replaced by a ``rank`` output (None: it may)."""
    if not folder.exists() or not any(folder.iterdir()):
        return None
    try:
        manifest = json.loads((folder / RANK_MANIFEST).read_text(encoding="utf-8"))
        files = set(manifest["files"]) if manifest.get("format") == _RANK_FORMAT else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        files = None
    if files is None:
        return f"it holds files and no {RANK_MANIFEST} of an earlier 'sureid rank'"
    others = sorted(p.name for p in folder.iterdir()
                    if p.name != RANK_MANIFEST and (p.name not in files or not p.is_file()))
    if others:
        shown = ", ".join(repr(n) for n in others[:3]) + (" ..." if len(others) > 3 else "")
        return f"it holds {len(others)} file(s) an earlier 'sureid rank' did not write: {shown}"
    return None


def _check_common(args) -> None:
    """Numbers and the device, before any file is read."""
    bounds = {"batch_size": 1, "workers": 0, "max_rank": 1, "topk": 1, "k1": 1, "k2": 1,
              "max_pictures": 0, "aqe_k": 1}
    for name, low in bounds.items():
        value = getattr(args, name, None)
        if value is not None and value < low:
            raise ValueError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
    if getattr(args, "aqe_alpha", None) is not None:
        check_real("--aqe-alpha", args.aqe_alpha, low=0.0)
    if getattr(args, "lambda_value", None) is not None:
        check_real("--lambda", args.lambda_value, low=0.0, high=1.0)
    if getattr(args, "keep_ratio", None) is not None:
        check_real("--keep-ratio", args.keep_ratio, low=0.0, high=1.0, low_open=True)
    if getattr(args, "device", None) is not None:
        check_device("--device", args.device)


def _cmd_extract(args) -> None:
    import torch

    from .engine.checkpoint import save_checkpoint

    output = _output_file("--output", args.output, [args.model, args.images], _is_feature_file,
                          "a feature file of 'sureid extract'")
    model = _load(args.model, args.device, args.keep_ratio)
    out = _extractor(model, args, kept=args.kept)(args.images)
    state: dict = {"features": out.features, "paths": out.paths}
    labels = [_labels_of(p) for p in out.paths or []]
    if labels and all(lab is not None for lab in labels):
        state["pids"] = torch.tensor([lab[0] for lab in labels])
        state["camids"] = torch.tensor([lab[1] for lab in labels])
    if out.kept is not None:
        state["kept"] = out.kept
    save_checkpoint(state, output)
    print(f"wrote {output}: {tuple(out.features.shape)} features of {len(out.features)} "
          "images")


def _dataset(root: str, name: str):
    """The dataset at ``root`` read as the Python readers read it (``auto``:
    :func:`sureid.data.detect_layout`, also below a parent folder)."""
    from .data.datasets import build_dataset

    ds = build_dataset(name, root)
    if not ds.query or not ds.gallery:
        raise ValueError(f"--data-root {root!r} ({ds.name} layout) has no query and gallery to "
                         "evaluate (identity folders alone are training data)")
    return ds


def _cmd_evaluate(args) -> None:
    from .metrics.evaluate import evaluate

    json_path = None
    if args.json is not None:  # checked before the evaluation, not after it
        json_path = _output_file("--json", args.json, [args.model, args.data_root],
                                 _is_result_json, "an evaluation JSON of 'sureid evaluate'")
    ds = _dataset(args.data_root, args.dataset)  # names and layout, before the model loads
    if args.camera_pairs and ds.camera_per_image:
        raise ValueError(f"--camera-pairs: {args.data_root!r} has no cameras (every image is its "
                         "own camera), so there are no camera pairs to report")
    model = _load(args.model, args.device, args.keep_ratio)
    ext = _extractor(model, args)
    qf = ext([r.path for r in ds.query]).features
    gf = ext([r.path for r in ds.gallery]).features
    r = evaluate(
        qf, gf, [x.pid for x in ds.query], [x.pid for x in ds.gallery],
        [x.camid for x in ds.query], [x.camid for x in ds.gallery], metric=args.metric,
        max_rank=args.max_rank, rerank=args.rerank, k1=args.k1, k2=args.k2,
        lambda_value=args.lambda_value, aqe=args.aqe, aqe_k=args.aqe_k,
        aqe_alpha=args.aqe_alpha, camera_pairs=args.camera_pairs,
    )
    ranks = [k for k in (1, 5, 10, 20, 50) if k <= len(r.cmc)]
    result = {
        "dataset": ds.name, "layout_detected": args.dataset == "auto",
        "num_query": len(ds.query), "num_gallery": len(ds.gallery),
        "rerank": bool(args.rerank), "metric": args.metric, "mAP": r.mAP, "mINP": r.mINP,
        **{f"rank{k}": r.rank(k) for k in ranks},
        "num_valid_queries": r.num_valid_queries, "num_skipped": r.num_skipped,
    }
    if args.aqe:
        result["aqe"] = {"k": args.aqe_k, "alpha": args.aqe_alpha}
    how = [w for w, on in (("alpha-QE", args.aqe), ("re-ranked", args.rerank)) if on]
    found = " (detected)" if args.dataset == "auto" else ""
    print(f"{ds.name}{found}: {len(ds.query)} queries, {len(ds.gallery)} gallery images"
          + "".join(f", {w}" for w in how))
    print("  " + "  ".join(f"Rank-{k} {100 * r.rank(k):.1f}" for k in ranks)
          + f"  mAP {100 * r.mAP:.1f}  mINP {100 * r.mINP:.1f}")
    if r.camera_pairs is not None:
        pairs = sorted(r.camera_pairs.items())
        result["camera_pairs"] = [
            {"query_camid": qc, "gallery_camid": gc, "num_valid_queries": p.num_valid_queries,
             "rank1": p.rank1, "mAP": p.mAP, "mINP": p.mINP} for (qc, gc), p in pairs]
        print(f"  per camera pair ({len(pairs)} with a true match; camids from 0):")
        for (qc, gc), p in pairs:
            print(f"    query cam {qc} -> gallery cam {gc}: {p.num_valid_queries} queries  "
                  f"Rank-1 {100 * p.rank1:.1f}  mAP {100 * p.mAP:.1f}")
    if json_path is not None:
        from ._atomic import temp_file

        json_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = temp_file(json_path)
        try:
            with open(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(result, indent=2) + "\n")
            Path(tmp).replace(json_path)
        finally:
            Path(tmp).unlink(missing_ok=True)


def _cmd_rank(args) -> None:
    from ._atomic import replace_dir, temp_sibling
    from .metrics.retrieval import rank_gallery

    for what, folder in (("query", args.query), ("gallery", args.gallery)):
        if not Path(folder).exists():
            raise FileNotFoundError(f"{what} folder not found: {folder!r}")
    if not Path(args.gallery).is_dir():
        raise NotADirectoryError(f"gallery must be a folder: {args.gallery!r}")
    out = check_output_path("--output", args.output, folder=True,
                            inputs=[args.model, args.query, args.gallery])
    problem = _rank_folder_problem(out)
    if problem is not None:
        raise FileExistsError(
            f"--output {str(out)!r} exists and {problem}; refusing to replace it: choose a "
            "new or empty folder"
        )
    model = _load(args.model, args.device, args.keep_ratio)
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
    rows, lists = [], []
    for i in range(len(q.paths)):
        keep = [j for j in range(idx.shape[1])
                if not (labelled and g_lab[idx[i, j]] == q_lab[i])][: args.topk]
        ranked = [(int(idx[i, j]), float(dist[i, j])) for j in keep]
        matches = [g_lab[j][0] == q_lab[i][0] if labelled else None for j, _ in ranked]
        lists.append((ranked, matches))
        for r, ((j, d), m) in enumerate(zip(ranked, matches, strict=True), 1):
            rows.append([q.paths[i], r, g.paths[j], f"{d:.6g}", "" if m is None else int(m)])
    tmp = temp_sibling(out)  # the folder appears complete, or not at all
    try:
        report = _write_rank_folder(tmp, args, model, ext, q, g, q_lab, labelled, rows, lists)
        replace_dir(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(report))


def _shown(path: str) -> str | None:
    """``pid 10 c2`` for a picture: the labels as the file name numbers them (Market/Duke
    cameras from 1, ``<pid>/<camid>_`` cameras as written); ``None`` without labels."""
    from .data.labels import path_labels

    labels = path_labels(path)
    if labels is None:
        return None
    cam = labels.camera if labels.camera.startswith("c") else f"cam {labels.camera}"
    return f"pid {labels.pid} {cam}"


def _picture_name(i: int, path: str, query: str) -> str:
    """``q0001-<query file>.png``: the 1-based query number first, so no name reads as a pid
    (the query's own path follows, its folders joined by '-')."""
    p = Path(path)
    try:
        rel = p.relative_to(query) if Path(query).is_dir() else Path(p.name)
    except ValueError:
        rel = Path(p.name)
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", "-".join((*rel.parts[:-1], rel.stem)))
    return f"q{i + 1:04d}-{stem}.png"


def _write_rank_folder(tmp: Path, args, model, ext, q, g, q_lab, labelled, rows,
                       lists) -> list[str]:
    """Write the CSV, the pictures and the manifest into ``tmp``; return the report lines."""
    import numpy as np

    from .inference import _hts_of
    from .viz_rank import render_ranked_list

    out = Path(args.output)
    written = ["ranking.csv"]
    with open(tmp / "ranking.csv", "w", newline="") as f:
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
    for i in range(n_pic):
        ranked, matches = lists[i]
        kept = None
        if overlay:
            paths = [q.paths[i], *(g.paths[j] for j, _ in ranked)]
            kept = list(kept_ext(paths).kept[-1])
        name = _picture_name(i, q.paths[i], args.query)
        written.append(name)
        title = None
        if labelled:
            hits = sum(bool(m) for m in matches)
            title = f"query {_shown(q.paths[i])}: {hits}/{len(matches)} true matches"
        render_ranked_list(
            q.paths[i], [g.paths[j] for j, _ in ranked], matches=matches,
            distances=[d for _, d in ranked], kept=kept, patch_size=patch, size=size,
            labels=[_shown(g.paths[j]) for j, _ in ranked], query_label=_shown(q.paths[i]),
            title=title, path=tmp / name,
        )
    manifest = {"format": _RANK_FORMAT, "files": written}
    (tmp / RANK_MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    summary = f"wrote {out / 'ranking.csv'} ({len(q.paths)} queries x top-{args.topk})"
    report = [f"{summary} and {n_pic} pictures" + (" with kept tokens" if overlay else "")]
    if labelled:
        top1 = np.mean([bool(m[0]) for _, m in lists if m]) if lists else 0.0
        report.append(f"  top-1 same pid: {100 * top1:.1f}% of queries")
    return report


def _cmd_export(args) -> None:
    from .export import export_onnx

    if args.verify_images is not None and args.quantize is None:
        raise ValueError("--verify-images checks the int8 graph: give it with --quantize int8")
    output = _output_file("output", args.output, [args.model, args.verify_images],
                          _is_onnx_file, "an ONNX graph")
    model = _load(args.model, keep_ratio=args.keep_ratio)
    cfg = model.data_config
    size = tuple(cfg.input_size)
    images = None
    if args.verify_images is not None:
        images = _verify_images(args.verify_images, cfg)
    try:
        path = export_onnx(model.backbone, output, img_size=size,
                           dynamic_batch=not args.static_batch, opset=args.opset,
                           verify=not args.no_verify, quantize=args.quantize,
                           verify_images=images, mean=cfg.mean, std=cfg.std)
    except RuntimeError as err:  # a failed onnxruntime or int8 check: nothing was written
        raise ValueError(f"export: {err}") from None
    note = " (the BNNeck is not in the graph)" if model.eval_feature == "after" else ""
    kind = ", int8" if args.quantize else ""
    print(f"wrote {path}{kind}: images (B, 3, {size[0]}, {size[1]}) -> embedding (B, "
          f"{model.embed_dim}){note}")


def _verify_images(folder: str, cfg):
    """Up to 32 images of ``folder`` (or one image), preprocessed as the model expects."""
    import torch

    from ._image_files import list_images, open_image
    from .inference import preprocess

    src = Path(folder)
    if not src.exists():
        raise FileNotFoundError(f"--verify-images: not found: {folder!r}")
    files = list_images(src) if src.is_dir() else [src]
    if not files:
        raise ValueError(f"--verify-images: no images in {folder!r}")
    step = max(1, len(files) // 32)  # spread over the folder, not its first 32 names
    return torch.stack([preprocess(open_image(p), cfg) for p in files[::step][:32]])


def _cmd_info(args) -> None:
    from .flops import count_flops
    from .hub import describe_backbone_file
    from .inference import describe

    weights = (  # shipped backbone weights, not a model file
        describe_backbone_file(args.model) if Path(args.model).is_file() else None
    )
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


# ----------------------------------------------------------------------------- train
def _add_train_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train a model from a config file (docs/training.md)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_wrap("Train an HTS student (with NPKD from a teacher and NODA, as the "
                          "config says) and write OUT/model.pt (a sureid.load file), best.pt, "
                          "log.csv, checkpoints and the config as run; the same command again "
                          "resumes. Settings: the defaults, or --preset's, then CONFIG, then "
                          "--data-root, then each --set."),
        epilog="examples:\n  sureid train --template > my.toml\n"
               "  sureid train my.toml -o runs/my\n"
               "  sureid train --preset smoke --data-root data/synth -o runs/smoke\n"
               "  sureid train runs/my/config.toml -o runs/my-again   # the same run",
    )
    p.add_argument("config", nargs="?", help="TOML or JSON config file")
    p.add_argument("--preset", metavar="NAME", help="start from sureid.ablation.PRESETS[NAME]: "
                   "smoke, quick, long or paper")
    p.add_argument("--data-root", metavar="DIR", help="dataset folder (data.root)")
    p.add_argument("--set", dest="assignments", action="append", default=[],
                   metavar="KEY=VALUE", help="override a setting, e.g. --set "
                   "schedule.epochs=5 (repeatable)")
    p.add_argument("-o", "--output", metavar="OUT", help="output folder: new, empty, or an "
                   "earlier run of the same config (resumed)")
    p.add_argument("--template", nargs="?", const="toml", choices=("toml", "json"),
                   help="print the full default config (commented TOML, or JSON) and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _cmd_train(args) -> None:
    from .train import build_config, template, train

    if args.template is not None:
        print(template(args.template), end="")
        return
    if args.output is None:
        raise ValueError("train: -o/--output OUT is required (or --template)")
    cfg, fmt = build_config(args.config, preset=args.preset, data_root=args.data_root,
                            sets=args.assignments)
    train(cfg, args.output, fmt=fmt, config_path=args.config, progress=not args.no_progress)


_COMMANDS["train"] = _cmd_train


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sureid`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        _check_common(args)
        _COMMANDS[args.command](args)
    except (OSError, ValueError, TypeError, ImportError, IndexError) as e:
        # OSError: also a permission problem or a folder where a file goes (IsADirectoryError)
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"sureid: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sureid: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # python -m sureid.cli
    sys.exit(main())
