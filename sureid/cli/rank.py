"""``sureid rank``: each query's top-k gallery images as ``ranking.csv`` and ranked-list
pictures, in an output folder written whole or not at all.

The ranking itself is :func:`sureid.metrics.retrieval.ranked_lists`; this module reads
labels from file names, names the files and draws.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

from .._checks import check_output_path
from .model import extractor, load_model
from .outputs import RANK_FORMAT, RANK_MANIFEST, rank_folder_problem

__all__ = ["cmd_rank"]


def cmd_rank(args) -> None:
    from .._atomic import replace_dir, temp_sibling

    for what, folder in (("query", args.query), ("gallery", args.gallery)):
        if not Path(folder).exists():
            raise FileNotFoundError(f"{what} folder not found: {folder!r}")
    if not Path(args.gallery).is_dir():
        raise NotADirectoryError(f"gallery must be a folder: {args.gallery!r}")
    out = check_output_path("--output", args.output, folder=True,
                            inputs=[args.model, args.query, args.gallery])
    problem = rank_folder_problem(out)
    if problem is not None:
        raise FileExistsError(
            f"--output {str(out)!r} exists and {problem}; refusing to replace it: choose a "
            "new or empty folder"
        )
    model = load_model(args.model, args.device, args.keep_ratio, args.fused_decision)
    ext = extractor(model, args)
    q, g = ext(args.query), ext(args.gallery)
    labelled, lists = _ranked(q, g, args)
    rows = [[q.paths[i], r, g.paths[j], f"{d:.6g}", "" if m is None else int(m)]
            for i, (ranked, matches) in enumerate(lists)
            for r, ((j, d), m) in enumerate(zip(ranked, matches, strict=True), 1)]
    tmp = temp_sibling(out)  # the folder appears complete, or not at all
    try:
        report = _write_rank_folder(tmp, args, model, ext, q, g, labelled, rows, lists)
        replace_dir(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(report))


def _ranked(q, g, args) -> tuple[bool, list]:
    """Whether every file name carries labels, and per query ``(ranked, matches)``:
    ``[(gallery index, distance), ...]`` closest first and, per item, whether it has the
    query's pid (``None`` without labels)."""
    from ..data.labels import path_labels
    from ..metrics.retrieval import ranked_lists

    q_lab = [path_labels(p) for p in q.paths]
    g_lab = [path_labels(p) for p in g.paths]
    labels = {}
    if all(x is not None for x in q_lab + g_lab):
        labels = {"q_pids": [x.pid for x in q_lab], "g_pids": [x.pid for x in g_lab],
                  "q_camids": [x.camid for x in q_lab], "g_camids": [x.camid for x in g_lab]}
    found = ranked_lists(
        q.features, g.features, topk=args.topk, metric=args.metric, rerank=args.rerank,
        k1=args.k1, k2=args.k2, lambda_value=args.lambda_value, **labels,
    )
    lists = []
    for i in range(len(q.paths)):
        kept = found.indices[i] >= 0
        ranked = [(int(j), float(d))
                  for j, d in zip(found.indices[i][kept], found.distances[i][kept], strict=True)]
        matches = ([None] * len(ranked) if found.matches is None
                   else [bool(m) for m in found.matches[i][kept]])
        lists.append((ranked, matches))
    return bool(labels), lists


def _shown(path: str) -> str | None:
    """``pid 10 c2`` for a picture: the labels as the file name numbers them (Market/Duke
    cameras from 1, ``<pid>/<camid>_`` cameras as written); ``None`` without labels."""
    from ..data.labels import path_labels

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


def _write_rank_folder(tmp: Path, args, model, ext, q, g, labelled, rows, lists) -> list[str]:
    """Write the CSV, the pictures and the manifest into ``tmp``; return the report lines."""
    import numpy as np

    from ..inference import _hts_of
    from ..viz_rank import render_ranked_list

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
        kept_ext = extractor(model, args, kept=True)
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
    manifest = {"format": RANK_FORMAT, "files": written}
    (tmp / RANK_MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    summary = f"wrote {out / 'ranking.csv'} ({len(q.paths)} queries x top-{args.topk})"
    report = [f"{summary} and {n_pic} pictures" + (" with kept tokens" if overlay else "")]
    if labelled:
        top1 = np.mean([bool(m[0]) for _, m in lists if m]) if lists else 0.0
        report.append(f"  top-1 same pid: {100 * top1:.1f}% of queries")
    return report
