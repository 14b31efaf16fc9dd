"""``sureid extract``, ``evaluate``, ``export`` and ``info``: each takes the parsed options,
prints its report and writes its one output."""

from __future__ import annotations

import json
from pathlib import Path

from .model import extractor, load_model
from .outputs import is_feature_file, is_onnx_file, is_result_json, output_file

__all__ = ["cmd_evaluate", "cmd_export", "cmd_extract", "cmd_info"]


def cmd_extract(args) -> None:
    import torch

    from .._checkpoint import save_checkpoint
    from ..data.labels import path_labels

    output = output_file("--output", args.output, [args.model, args.images], is_feature_file,
                         "a feature file of 'sureid extract'")
    model = load_model(args.model, args.device, args.keep_ratio, args.fused_decision)
    out = extractor(model, args, kept=args.kept)(args.images)
    state: dict = {"features": out.features, "paths": out.paths}
    labels = [path_labels(p) for p in out.paths or []]
    if labels and all(lab is not None for lab in labels):
        state["pids"] = torch.tensor([lab.pid for lab in labels])
        state["camids"] = torch.tensor([lab.camid for lab in labels])
    if out.kept is not None:
        state["kept"] = out.kept
    save_checkpoint(state, output)
    print(f"wrote {output}: {tuple(out.features.shape)} features of {len(out.features)} "
          "images")


def _dataset(root: str, name: str):
    """The dataset at ``root`` read as the Python readers read it (``auto``:
    :func:`sureid.data.detect_layout`, also below a parent folder)."""
    from ..data.datasets import build_dataset

    ds = build_dataset(name, root)
    if not ds.query or not ds.gallery:
        raise ValueError(f"--data-root {root!r} ({ds.name} layout) has no query and gallery to "
                         "evaluate (identity folders alone are training data)")
    return ds


def cmd_evaluate(args) -> None:
    from ..metrics.evaluate import evaluate

    json_path = None
    if args.json is not None:  # checked before the evaluation, not after it
        json_path = output_file("--json", args.json, [args.model, args.data_root],
                                is_result_json, "an evaluation JSON of 'sureid evaluate'")
    ds = _dataset(args.data_root, args.dataset)  # names and layout, before the model loads
    if args.camera_pairs and ds.camera_per_image:
        raise ValueError(f"--camera-pairs: {args.data_root!r} has no cameras (every image is its "
                         "own camera), so there are no camera pairs to report")
    model = load_model(args.model, args.device, args.keep_ratio, args.fused_decision)
    ext = extractor(model, args)
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
        _write_json(json_path, result)


def _write_json(path: Path, result: dict) -> None:
    """``result`` as indented JSON at ``path``, replacing it atomically."""
    from .._atomic import temp_file

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file(path)
    try:
        with open(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(result, indent=2) + "\n")
        Path(tmp).replace(path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def cmd_export(args) -> None:
    from ..export import export_onnx

    if args.verify_images is not None and args.quantize is None:
        raise ValueError("--verify-images checks the int8 graph: give it with --quantize int8")
    output = output_file("output", args.output, [args.model, args.verify_images],
                         is_onnx_file, "an ONNX graph")
    model = load_model(args.model, keep_ratio=args.keep_ratio)
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

    from .._image_files import list_images, open_image
    from ..inference import preprocess

    src = Path(folder)
    if not src.exists():
        raise FileNotFoundError(f"--verify-images: not found: {folder!r}")
    files = list_images(src) if src.is_dir() else [src]
    if not files:
        raise ValueError(f"--verify-images: no images in {folder!r}")
    step = max(1, len(files) // 32)  # spread over the folder, not its first 32 names
    return torch.stack([preprocess(open_image(p), cfg) for p in files[::step][:32]])


def cmd_info(args) -> None:
    from ..flops import count_flops
    from ..hub import describe_backbone_file
    from ..inference import describe

    weights = (  # shipped backbone weights, not a model file
        describe_backbone_file(args.model) if Path(args.model).is_file() else None
    )
    if weights is not None and args.keep_ratio is None:
        print(weights)
        return
    model = load_model(args.model, keep_ratio=args.keep_ratio)
    cfg = model.data_config
    print(f"{args.model}: {describe(model)}")
    print(f"  preprocessing: resize to {cfg.input_size[0]}x{cfg.input_size[1]}, mean "
          f"{list(cfg.mean)}, std {list(cfg.std)}")
    params = sum(p.numel() for p in model.backbone.parameters())
    print(f"  backbone parameters: {params / 1e6:.2f} M, {count_flops(model):.3f} GFLOPs/image")
    if model.metadata:
        print(f"  metadata: {model.metadata}")
