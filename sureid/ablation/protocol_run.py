"""One paper protocol (Tables I-III), end to end: the teacher fine-tuned once on the
protocol's training set (or loaded), the full SUReID student trained (HTS p=0.7 + NPKD + NODA
dual batch, Eq. 14 with the protocol's alpha and beta), evaluated on every test set, and
``model.pt``, ``protocol.json`` and ``protocol.md`` written. ``examples/train_protocol.py`` is
its command line."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

from ..data import ReIDDataset
from ..engine import evaluate_model, normalize_settings
from ..hub import DataConfig
from ..models import FrozenTeacher
from .build import build_row
from .presets import Preset, Row
from .protocols import Protocol
from .recipe import MEAN, STD, Weights, view_transforms

__all__ = ["ProtocolRun", "protocol_markdown", "rank_metrics", "run_protocol"]

# the full model of Table IV, the one every protocol trains
FULL_MODEL = Row("SUReID", hts=True, npkd=True, noda=True)


@dataclass
class ProtocolRun:
    """What one protocol run trains and tests.

    Attributes:
        protocol: the protocol; ``preset`` its recipe (``protocol.preset()`` with overrides).
        train: the training dataset; ``tests`` every test set by name.
        roots: ``{"train": folder, "test": folder}``, recorded in the settings.
        student_weights, teacher_weights: where the backbones start (checked by the caller).
        occluders: a folder of occluder crops for NODA; None writes procedural ones.
        teacher_checkpoint: a trained teacher checkpoint to use instead of fine-tuning one.
        smoke: a plumbing run (16 procedural occluders; the report says the numbers mean
            nothing).
        seed: the training seed.
    """

    protocol: Protocol
    preset: Preset
    train: ReIDDataset
    tests: dict[str, ReIDDataset]
    roots: dict[str, str]
    student_weights: Weights
    teacher_weights: Weights
    occluders: Path | None = None
    teacher_checkpoint: Path | None = None
    smoke: bool = False
    seed: int = 0


def rank_metrics(result) -> dict[str, float]:
    """Rank-1/3/5 and mAP in % (a gallery shorter than k reads its last CMC value)."""
    cmc = result.cmc
    out = {f"rank{k}": round(100 * float(cmc[min(k, len(cmc)) - 1]), 2) for k in (1, 3, 5)}
    return out | {"mAP": round(100 * result.mAP, 2)}


def run_protocol(run: ProtocolRun, ws) -> dict:
    """Train and test ``run`` into ``ws.out`` (a :class:`~sureid.ablation.workspace.Workspace`);
    returns the report written to ``protocol.json``."""
    protocol, preset, out, device, log = run.protocol, run.preset, ws.out, ws.device, ws.log
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    log(f"protocol {protocol.name} (Table {protocol.table}): train {run.train}; "
        f"test {', '.join(map(repr, run.tests.values()))}")
    occluders, occ_dir = ws.occluders(run.occluders, count=16 if run.smoke else 200)
    first, second, _, test_tf = view_transforms(preset, occluders,
                                                color_jitter=protocol.color_jitter)
    test_batches = {name: (ws.test_loader(ds.query, test_tf), ws.test_loader(ds.gallery, test_tf))
                    for name, ds in run.tests.items()}
    num_classes = run.train.num_train_pids
    common = {"protocol": protocol.name, "color_jitter": protocol.color_jitter,
              "preset": dataclasses.asdict(preset), "smoke": run.smoke, "data": run.roots,
              "occluders": str(Path(occ_dir).resolve()), "device": device.type}

    def evaluate(model) -> dict[str, dict]:
        return {name: rank_metrics(evaluate_model(model, q, g, metric=preset.metric,
                                                  device=device))
                for name, (q, g) in test_batches.items()}

    # teacher: dense ViT-B fine-tuned on the training set once
    teacher_net, teacher_cfg = ws.teacher(
        run.teacher_weights, records=run.train.train, preset=preset, first=first,
        num_classes=num_classes, common=common, seed=run.seed, checkpoint=run.teacher_checkpoint)
    teacher_results = evaluate(teacher_net)
    log(f"teacher: {teacher_results}")
    teacher = FrozenTeacher(teacher_net, teacher_net.classifier_weight.detach()).to(device)

    # student: the full SUReID model (HTS + NPKD + NODA dual batch), Eq. 14 with alpha/beta
    model, objective, _ = build_row(FULL_MODEL, preset, run.student_weights, num_classes,
                                    teacher_dim=teacher_net.embed_dim, seed=run.seed,
                                    device=device)
    settings = normalize_settings({**common, "role": "student", "seed": run.seed,
                                   "weights": run.student_weights.describe(),
                                   "teacher": teacher_cfg if run.teacher_checkpoint is None
                                   else f"checkpoint:{run.teacher_checkpoint.resolve()}"})
    log(f"student: HTS p={preset.keep_ratio} + NPKD + NODA, alpha={preset.alpha} "
        f"beta={preset.beta}, colour jitter {'on' if protocol.color_jitter else 'off'}")
    ws.fit("student", model, objective, teacher, records=run.train.train, preset=preset,
           first=first, second=second, epochs=preset.epochs, seed=run.seed, settings=settings)
    results = evaluate(model)
    for name, r in results.items():
        log(f"[{name}] Rank-1 {r['rank1']:.1f} Rank-3 {r['rank3']:.1f} mAP {r['mAP']:.1f}")
    model.save(out / "model.pt", data_config=DataConfig(preset.img_size, MEAN, STD),
               metadata={"protocol": protocol.name, "seed": run.seed, "smoke": run.smoke,
                         "results": results})

    # outputs -----------------------------------------------------------------------------
    paper = {r.test: r._asdict() for r in protocol.paper}
    rows = [{"test": name, **results[name],
             "num_queries": len(run.tests[name].query),
             "num_gallery": len(run.tests[name].gallery),
             "paper": {k: v for k, v in paper[name].items() if k != "test"}}
            for name in protocol.test]
    report = {
        "protocol": protocol.name, "table": protocol.table, "train": protocol.train,
        "results": rows, "teacher": teacher_results,
        "settings": {"student": preset.student.timm_name or dataclasses.asdict(preset.student),
                     "teacher": preset.teacher.timm_name or dataclasses.asdict(preset.teacher),
                     "alpha": preset.alpha, "beta": preset.beta, "keep_ratio": preset.keep_ratio,
                     "color_jitter": protocol.color_jitter, "epochs": preset.epochs,
                     "teacher_epochs": preset.teacher_epochs},
        "not_in_paper": list(preset.not_in_paper),
        "meta": {"device": str(device), "smoke": run.smoke, "seed": run.seed,
                 "pretrained": {"student": run.student_weights.describe(),
                                "teacher": run.teacher_weights.describe()},
                 "teacher_checkpoint": (str(run.teacher_checkpoint)
                                        if run.teacher_checkpoint else None),
                 "seconds": round(time.perf_counter() - t_start, 1)},
    }
    (out / "protocol.json").write_text(json.dumps(report, indent=2) + "\n")
    md = protocol_markdown(report)
    (out / "protocol.md").write_text(md)
    print(md)
    log(f"wrote {out}/model.pt, protocol.json, protocol.md in {report['meta']['seconds']:.0f}s")
    return report


def protocol_markdown(report: dict) -> str:
    """Our Rank-1/3/5 and mAP per test set beside the paper's ("-": not reported)."""
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    meta, s = report["meta"], report["settings"]
    lines = [
        f"Protocol {report['protocol']} (paper Table {report['table']}): train on "
        f"{report['train']}, student {s['student']}, alpha {s['alpha']:g}, beta {s['beta']:g}, "
        f"p {s['keep_ratio']:g}, colour jitter {'on' if s['color_jitter'] else 'off'}, "
        f"{s['epochs']} epochs, {meta['device']}"
        + (" (smoke run: the numbers mean nothing)" if meta["smoke"] else "") + ".",
        "",
        "| test set | queries | gallery | Rank-1 | Rank-3 | Rank-5 | mAP | paper Rank-1 "
        "| paper Rank-3 | paper mAP |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        p = r["paper"]
        lines.append(f"| {r['test']} | {r['num_queries']} | {r['num_gallery']} | "
                     f"{r['rank1']:.1f} | {r['rank3']:.1f} | {r['rank5']:.1f} | {r['mAP']:.1f} | "
                     f"{fmt(p['rank1'])} | {fmt(p['rank3'])} | {fmt(p['mAP'])} |")
    t = ", ".join(f"{k} Rank-1 {v['rank1']:.1f} mAP {v['mAP']:.1f}"
                  for k, v in report["teacher"].items())
    lines += ["", f"Teacher (dense): {t}. Total time {meta['seconds']:.0f} s.", "",
              "Settings not stated in the paper:", ""]
    lines += [f"- {n}" for n in report["not_in_paper"]] + [""]
    return "\n".join(lines)
