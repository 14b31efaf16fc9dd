"""One reproduction of a paper table (IV-VII, or the NPKD diagnostic), end to end.

The teacher is loaded (a shipped or given model file) or fine-tuned once; every row is trained
once per seed (resumable), evaluated per query, and with pruning off for HTS rows; every row's
throughput is measured interleaved; the claims are judged from paired intervals; and
``tableN.json``, ``tableN_per_query.json``, ``tableN.md`` and Fig. 6 are written.
``examples/reproduce_table4.py`` is its command line.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data import make_synthetic_reid, read_occluded_duke
from ..engine import SlicingBound, describe_cpu, evaluate_model, measure_throughput
from ..flops import count_flops
from ..hub import DataConfig
from ..models import FrozenTeacher, ReIDModel
from .build import build_row, load_teacher_model
from .presets import Preset, Row
from .recipe import MEAN, STD, Weights, file_digest, view_transforms
from .report import BOUND, markdown_table, render_fig6, summarize
from .workspace import DATA_SEED, Workspace, slug

__all__ = ["TableRun", "run_table"]


@dataclass
class TableRun:
    """What one table reproduction runs.

    Attributes:
        preset: the recipe, overrides applied; ``preset_name`` names it in files.
        table: 4-7 or ``"npkd"``; ``rows`` the rows to train (the first is the speed baseline).
        student_weights, teacher_weights: where the backbones start (checked by the caller).
        data_root: a real Occluded-DukeMTMC folder; None generates the preset's synthetic
            benchmark under the output folder.
        occluders: a folder of occluder crops for NODA; None writes procedural ones.
        teacher_file: a ``sureid.load`` model file or a training checkpoint of the teacher;
            None uses ``shipped_dir / <preset.trained_teacher>.pt`` if the preset ships one,
            else fine-tunes the teacher (cached in ``out / "teacher.pt"``).
        teacher_only: stop after writing the teacher as ``out / "models" / "teacher.pt"``.
        keep_score: ``"decision"`` (the paper) or ``"attention"``.
        seed: the first training seed (``preset.seeds`` seeds from it).
        throughput_threads: CPU threads of the table's throughput (None: all).
        command: the command line, recorded in the teacher's provenance.
    """

    preset: Preset
    preset_name: str
    table: int | str
    rows: list[Row]
    student_weights: Weights
    teacher_weights: Weights
    data_root: Path | None = None
    occluders: Path | None = None
    teacher_file: Path | None = None
    shipped_dir: Path | None = None
    teacher_only: bool = False
    keep_score: str = "decision"
    seed: int = 0
    throughput_threads: int | None = 1
    command: str = ""


def npkd_teachers(teacher_net: ReIDModel, device: torch.device) -> dict[str, FrozenTeacher]:
    """The frozen teacher of each ``Row.teacher_feature``: Eq. 13's ``f^t`` after the
    teacher's BNNeck (``"after"``, what its classifier reads) or before it (``"before"``, the
    raw feature, like the student's ``f^s``); the logits are the BN feature's either way."""
    classifier = teacher_net.classifier_weight.detach()
    return {
        "after": FrozenTeacher(teacher_net, classifier).to(device),
        "before": FrozenTeacher(teacher_net.backbone, classifier,
                                head=teacher_net.neck.bn).to(device),
    }


def run_table(run: TableRun, ws: Workspace) -> list[dict]:
    """Reproduce ``run.table`` into ``ws.out``; returns the table's rows (``[]`` with
    ``teacher_only``)."""
    preset, out, device, log = run.preset, ws.out, ws.device, ws.log
    out.mkdir(parents=True, exist_ok=True)
    stem = f"table{run.table}"
    seeds = list(range(run.seed, run.seed + preset.seeds))
    t_start = time.perf_counter()

    # data -------------------------------------------------------------------------------
    if run.data_root is not None:
        root = run.data_root
    else:
        root = out / "data"
        summary = make_synthetic_reid(root, preset=preset.synthetic, seed=DATA_SEED,
                                      progress=ws.progress, **dict(preset.synthetic_overrides))
        log(f"synthetic {preset.synthetic!r} benchmark at {root}: {summary.num_images} images")
    data = read_occluded_duke(root)
    log(f"dataset: {data}")
    occluders, occ_dir = ws.occluders(run.occluders)
    first, second_noda, second_plain, test_tf = view_transforms(preset, occluders)
    query_loader = ws.decoded(data.query, test_tf)
    gallery_loader = ws.decoded(data.gallery, test_tf)
    num_classes = data.num_train_pids
    common = {"preset": dataclasses.asdict(preset) | {"seeds": None},
              "data": str(Path(root).resolve()), "occluders": str(Path(occ_dir).resolve()),
              "device": device.type}

    def evaluate(model):
        return evaluate_model(model, query_loader, gallery_loader, metric=preset.metric,
                              device=device)

    def fit(name, model, objective, teacher, *, second, epochs, seed, settings):
        ws.fit(name, model, objective, teacher, records=data.train, preset=preset, first=first,
               second=second, epochs=epochs, seed=seed, settings=settings)

    # teacher: dense, larger, fine-tuned on the target data once ------------------------
    teacher_file = run.teacher_file
    if (teacher_file is None and preset.trained_teacher is not None and not run.teacher_only
            and run.shipped_dir is not None):
        teacher_file = Path(run.shipped_dir) / f"{preset.trained_teacher}.pt"  # shipped
    teacher_net = load_teacher_model(teacher_file, num_classes) if teacher_file else None
    if teacher_net is not None:  # a sureid model file: its own architecture and weights
        teacher_net = teacher_net.to(device)
        teacher_cfg = {"role": "teacher",
                       "file": f"{teacher_file.name}:{file_digest(teacher_file)}"}
        log(f"teacher loaded from {teacher_file}")
    else:
        teacher_net, teacher_cfg = ws.teacher(
            run.teacher_weights, records=data.train, preset=preset, first=first,
            num_classes=num_classes, common=common, seed=run.seed, checkpoint=run.teacher_file)
    teacher_result = evaluate(teacher_net)
    teacher_metrics = {"rank1": 100 * teacher_result.rank1, "mAP": 100 * teacher_result.mAP,
                       "file": teacher_file.name if teacher_cfg.get("file") else None}
    log(f"teacher: Rank-1 {teacher_metrics['rank1']:.1f} mAP {teacher_metrics['mAP']:.1f}")
    if run.teacher_only:
        _write_teacher(teacher_net, out / "models" / "teacher.pt", run, teacher_cfg,
                       teacher_metrics, seconds=time.perf_counter() - t_start, log=log)
        return []
    teachers = npkd_teachers(teacher_net, device)

    # table rows, once per seed ----------------------------------------------------------------
    models: dict[int, dict[str, torch.nn.Module]] = {}
    per_seed: dict[str, list[dict]] = {row.name: [] for row in run.rows}
    for seed in seeds:
        models[seed] = {}
        for row in run.rows:
            model, objective, p = build_row(row, preset, run.student_weights, num_classes,
                                            teacher_dim=teacher_net.embed_dim,
                                            keep_score=run.keep_score, seed=seed, device=device)
            second = second_noda if row.noda else second_plain if row.dual_plain else None
            key = row.key(p)  # rows two tables share are trained once per output dir
            settings = {**common, "row": key, "keep_ratio": p, "seed": seed,
                        "weights": run.student_weights.describe(),
                        "teacher": teacher_cfg if row.npkd else None}
            if run.keep_score != "decision":  # settings of default runs stay as they were
                settings["keep_score"] = run.keep_score
            name = f"{row.name} seed {seed}"
            log(f"== {name}: HTS={row.hts} (p={p if row.hts else 1.0}) NPKD={row.npkd} "
                f"NODA={row.noda} dual={second is not None}")
            fit(f"{key} seed {seed}", model, objective,
                teachers[row.teacher_feature] if row.npkd else None,
                second=second, epochs=preset.epochs, seed=seed, settings=settings)
            per_seed[row.name].append(_evaluate_row(model, row, name, seed, evaluate, log))
            models[seed][row.name] = model.backbone
            if seed == seeds[0]:  # the deployable model, self-describing (sureid.load)
                result = per_seed[row.name][-1]
                model.save(out / "models" / f"{slug(row.name)}.pt",
                           data_config=DataConfig(preset.img_size, MEAN, STD),
                           metadata={"row": row.name, "seed": seed, "preset": run.preset_name,
                                     "rank1": result["rank1"], "mAP": result["mAP"]})

    # throughput: every seed's rows interleaved in one call, one call per seed ---------------
    cpu = device.type == "cpu"
    threads = run.throughput_threads if cpu else None
    log(f"measuring throughput (batch 32, interleaved{f', {threads} thread(s)' if cpu else ''})...")
    shape = (3, *preset.img_size)
    # the HTS rows' slicing bound (their blocks on the kept token counts, tokens dropped for
    # free) is timed beside them: the speed claim is read against it where it is below 1.4x
    hts_row = next((row.name for row in run.rows if row.hts), None)
    timed = [models[s] if hts_row is None
             else {**models[s], BOUND: SlicingBound(models[s][hts_row])} for s in seeds]
    tputs = [measure_throughput(m, shape, batch_size=32, rounds=preset.throughput_rounds,
                                device=device, num_threads=threads) for m in timed]
    all_cores = None
    if cpu and threads != torch.get_num_threads():  # the all-core figure too, for the record
        allc = measure_throughput(models[seeds[0]], shape, batch_size=32,
                                  rounds=preset.throughput_rounds, device=device)
        all_cores = {"threads": torch.get_num_threads(),
                     **{k: round(v, 1) for k, v in allc.items()}}

    # statistics and outputs ---------------------------------------------------------------
    gflops = {row.name: count_flops(models[seeds[0]][row.name], preset.img_size)
              for row in run.rows}
    table, verdicts, values = summarize(run.table, run.rows, per_seed, tputs, gflops,
                                        n_resamples=preset.bootstrap_resamples)
    meta = {"preset": run.preset_name, "table": run.table,
            "data": "real" if run.data_root else "synthetic", "device": str(device),
            "seeds": seeds, "num_queries": int(values[run.rows[0].name]["rank1"].shape[1]),
            "num_gallery": len(data.gallery), "throughput_threads": threads,
            "throughput_all_cores": all_cores, "teacher": teacher_metrics,
            "keep_score": run.keep_score, "epochs": preset.epochs,
            "cpu": describe_cpu() if cpu else None,
            "pretrained": {"student": run.student_weights.describe(),
                           "teacher": run.teacher_weights.describe()},
            "seconds": round(time.perf_counter() - t_start, 1)}
    (out / f"{stem}.json").write_text(json.dumps(
        {"rows": table, "claims": verdicts, "meta": meta}, indent=2) + "\n")
    (out / f"{stem}_per_query.json").write_text(json.dumps(per_seed) + "\n")
    md = markdown_table(run.table, table, verdicts, meta)
    (out / f"{stem}.md").write_text(md)
    print(md)
    if run.table == 4:
        render_fig6(models[seeds[0]][run.rows[-1].name], query_loader,
                    out / "fig6_kept_tokens.png", preset)
    log(f"wrote {out}/{stem}.json, {stem}.md"
        f"{', fig6_kept_tokens.png' if run.table == 4 else ''} in {meta['seconds']:.0f}s")
    return table


def _evaluate_row(model, row: Row, name: str, seed: int, evaluate, log) -> dict:
    """One row's per-seed record: Rank-1/mAP in %, per-query first matches and APs (NaN as
    -1), and for HTS rows the same weights evaluated with every token kept."""
    result = evaluate(model)
    log(f"[{name}] Rank-1 {100 * result.rank1:.1f} mAP {100 * result.mAP:.1f}")
    all_tokens = {}
    if row.hts:  # the same weights with every token kept: training damage vs pruning
        model.backbone.prune = False
        full = evaluate(model)
        model.backbone.prune = True
        log(f"[{name}] every token kept: Rank-1 {100 * full.rank1:.1f} "
            f"mAP {100 * full.mAP:.1f}")
        all_tokens = {"rank1_all_tokens": 100 * full.rank1, "mAP_all_tokens": 100 * full.mAP}
    return {"seed": seed, "rank1": 100 * result.rank1, "mAP": 100 * result.mAP, **all_tokens,
            "first_match": result.first_match.tolist(),
            "ap": np.nan_to_num(result.ap, nan=-1.0).tolist()}


def _write_teacher(net, path: Path, run: TableRun, settings: dict, metrics: dict, *,
                   seconds: float, log) -> None:
    """The teacher as a ``sureid.load`` model file with its provenance JSON beside it."""
    net.save(path, data_config=DataConfig(run.preset.img_size, MEAN, STD),
             metadata={"role": "teacher", "preset": run.preset_name, "settings": settings,
                       **metrics})
    provenance = {"command": run.command, "settings": settings, "test_split": metrics,
                  "seconds": round(seconds, 1), "torch": torch.__version__,
                  "cpu": describe_cpu()}
    path.with_suffix(".json").write_text(json.dumps(provenance, indent=2) + "\n")
    log(f"wrote {path} and its provenance {path.with_suffix('.json').name}")
