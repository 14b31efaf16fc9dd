"""One training run from a :class:`~sureid.train.config.TrainConfig`: check, build, train, log.

:func:`prepare` checks every input and the output folder and builds the models, loaders,
objectives and optimizers without writing anything; :func:`run` trains (the teacher first when
``teacher.source = "train"``, then the student) and writes into the output folder:

============================  ===============================================================
``config.toml|json``          the config as run (paths made absolute); ``sureid train`` on it
                              repeats the run (seeded)
``model.pt``                  the student, a :func:`sureid.load` file with its DataConfig
``best.pt``                   the student at its best validation mAP (data with query/gallery)
``teacher.pt``                a teacher trained here (a :func:`sureid.load` file)
``checkpoints/*.pt``          Trainer checkpoints: running the same command again resumes
``log.csv``                   one row per epoch (and every ``log.steps`` steps): stage, loss
                              terms, keep fractions, learning rates, validation metrics
``tensorboard/``              the same as TensorBoard events, when ``tensorboard`` imports
============================  ===============================================================

The output folder must be new, empty, or hold only these files of a run with the same config
(then it resumes); anything else is refused before any work.
"""

from __future__ import annotations

import csv
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from .._atomic import temp_file
from .._checks import check_device, check_output_path
from .._optional import require
from ..ablation.recipe import MEAN, STD, file_digest, make_optimizer, train_loader, view_transforms
from ..data import DATASETS, ImageDataset, ReIDDataset, build_dataset, detect_layout
from ..engine import Trainer, evaluate_model, load_checkpoint, normalize_settings
from ..hub import FORMAT as MODEL_FORMAT
from ..hub import DataConfig, load
from ..losses import NPKDLoss, RatioLoss, SUReIDLoss
from ..losses.reid import CrossEntropyLabelSmooth, TripletLoss
from ..models import FrozenTeacher, HTSViT, ReIDModel, VisionTransformer
from ..models.pretrained import load_pretrained, shipped_weights_dir
from ..transforms import OccluderBank, make_procedural_occluders
from .config import StudentSection, TeacherSection, TrainConfig, merge, to_dict
from .files import dumps, read_config_file
from .presets import to_preset

__all__ = [
    "OUTPUT_NAMES", "Plan", "RunLog", "RunResult", "prepare", "run", "train",
]

#: what ``sureid train`` writes into its output folder (besides ``config.toml|json``)
OUTPUT_NAMES = frozenset({"model.pt", "best.pt", "teacher.pt", "log.csv", "checkpoints",
                          "tensorboard"})
_CONFIG_NAMES = ("config.toml", "config.json")
# a temporary file of an atomic write that a killed run left: ".{name}.tmp-..."
_TEMP = re.compile(r"^\.(.+)\.(tmp|old)-")


# ----------------------------------------------------------------------------- inputs
def _weights_file(key: str, value: str) -> Path | None:
    """The file ``value`` of ``student.weights``/``teacher.weights`` names (None: '' or
    'timm'): a path, or a shipped name looked up in :func:`shipped_weights_dir`."""
    if value in ("", "timm"):
        return None
    path = Path(value).expanduser()
    if path.is_file():
        return path.resolve()
    if path.suffix == "" and "/" not in value and os.sep not in value:
        candidate = shipped_weights_dir() / f"{value}.pt"
        if candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError(
        f"{key} {value!r}: no such file, and not a shipped name in "
        f"{str(shipped_weights_dir())!r} (set SUREID_WEIGHTS_DIR to the folder holding "
        "them); use '' for random weights or 'timm' for timm's")


def _absolute(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with its paths absolute (names of shipped weights stay names)."""
    def path(value: str) -> str:
        return str(Path(value).expanduser().resolve()) if value else value

    def weights(value: str) -> str:
        p = Path(value).expanduser()
        return str(p.resolve()) if value not in ("", "timm") and p.is_file() else value

    return merge(cfg, {
        "data": {"root": path(cfg.data.root), "occluders": path(cfg.data.occluders)},
        "student": {"weights": weights(cfg.student.weights)},
        "teacher": {"weights": weights(cfg.teacher.weights),
                    "checkpoint": weights(cfg.teacher.checkpoint)},
    })


def _differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key} {a!r} -> {b!r}")
    return out


def _check_out(out: Path, cfg: TrainConfig, fmt: str) -> bool:
    """Whether ``out`` is an earlier run of ``cfg`` to resume (False: new or empty);
    anything else there is refused."""
    if not out.exists() or not any(out.iterdir()):
        return False
    found = [n for n in _CONFIG_NAMES if (out / n).is_file()]
    if not found:
        raise FileExistsError(
            f"-o {str(out)!r} holds files and no config.toml/config.json of an earlier "
            "'sureid train'; refusing to write into it: choose a new or empty folder")
    if len(found) > 1 or found[0] != f"config.{fmt}":
        raise FileExistsError(
            f"-o {str(out)!r} holds {' and '.join(found)}, this run's config is config.{fmt}; "
            "choose a new or empty folder")
    try:
        old = to_dict(merge(TrainConfig(), read_config_file(out / found[0])[0]))
    except (TypeError, ValueError) as err:
        raise FileExistsError(f"-o {str(out)!r}: its {found[0]} does not read back ({err}); "
                              "choose a new or empty folder") from None
    diff = _differences(old, to_dict(cfg))
    if diff:
        raise FileExistsError(
            f"-o {str(out)!r} holds a run with another config, refusing to resume it "
            f"({'; '.join(diff)}); choose a new or empty folder")
    others = sorted(p.name for p in out.iterdir() if p.name not in (*OUTPUT_NAMES, found[0])
                    and not (_TEMP.match(p.name) and _TEMP.match(p.name).group(1)
                             in (*OUTPUT_NAMES, found[0])))
    if others:
        shown = ", ".join(repr(n) for n in others[:3]) + (" ..." if len(others) > 3 else "")
        raise FileExistsError(f"-o {str(out)!r} holds {len(others)} file(s) 'sureid train' "
                              f"did not write: {shown}; choose a new or empty folder")
    return True


# ----------------------------------------------------------------------------- models
def _vit(sec: StudentSection | TeacherSection, key: str, img_size: tuple[int, int],
         log: Callable[[str], None]) -> nn.Module:
    """The plain ViT of a student/teacher section, with its starting weights."""
    if sec.timm_name:
        timm = require("timm", purpose=f"{key}.timm_name {sec.timm_name!r}")
        if sec.timm_name not in timm.list_models(pretrained=sec.weights == "timm"):
            raise ValueError(f"{key}.timm_name {sec.timm_name!r} is not a timm model"
                             + (" with pretrained weights" if sec.weights == "timm" else ""))
        try:
            vit = timm.create_model(sec.timm_name, pretrained=sec.weights == "timm",
                                    img_size=img_size, num_classes=0)
        except Exception as err:  # a hub or download failure comes in many kinds
            raise ValueError(
                f"{key}.weights = 'timm': could not get timm's weights for {sec.timm_name!r} "
                f"({type(err).__name__}: {err}); download them where a hub is reachable and "
                f"set {key}.weights to the file") from None
    else:
        vit = VisionTransformer(img_size=img_size, patch_size=sec.patch_size,
                                embed_dim=sec.embed_dim, depth=sec.depth,
                                num_heads=sec.num_heads, stem=sec.stem)
    path = _weights_file(f"{key}.weights", sec.weights)
    if path is not None:
        log(f"{key} weights from {path}: {load_pretrained(vit, path)}")
    return vit


def _hts(vit: nn.Module, timm: bool, **kwargs: Any) -> HTSViT:
    return HTSViT.from_timm(vit, **kwargs) if timm else HTSViT(vit, **kwargs)


def _student(cfg: TrainConfig, num_classes: int, log) -> ReIDModel:
    s = cfg.student
    hts = s.keep_ratio < 1.0
    backbone = _hts(_vit(s, "student", cfg.data.img_size, log), bool(s.timm_name),
                    keep_ratio=s.keep_ratio if hts else 1.0, prune=hts,
                    prune_layers=s.prune_layers, keep_score=s.keep_score,
                    decision_init_keep=s.decision_init_keep or None)
    return ReIDModel(backbone, num_classes, reweight=hts and s.reweight)


def _teacher_net(cfg: TrainConfig, num_classes: int, log) -> ReIDModel:
    """A dense teacher whose eval forward is its BNNeck feature (docs/objectives.md)."""
    t = cfg.teacher
    vit = _vit(t, "teacher", cfg.data.img_size, log)
    depth = len(vit.blocks)
    # the examples' teachers' stages, so their checkpoints load here
    layers = tuple(i for i in (3, 6, 9) if i < depth) or (0,)
    backbone = _hts(vit, bool(t.timm_name), keep_ratio=1.0, prune=False, prune_layers=layers)
    return ReIDModel(backbone, num_classes, eval_feature="after")


def _loaded_teacher(cfg: TrainConfig, num_classes: int, log) -> FrozenTeacher:
    """The trained teacher of ``teacher.checkpoint``, frozen, emitting its BNNeck feature."""
    key = "teacher.checkpoint"
    path = _weights_file(key, cfg.teacher.checkpoint)  # a file, or a shipped name
    state = load_checkpoint(path)
    if isinstance(state, dict) and state.get("format") == MODEL_FORMAT:
        model = load(path)
        net: nn.Module = nn.Sequential(model.backbone, model.neck.bn)  # the BN feature
    elif isinstance(state, dict) and isinstance(state.get("model"), Mapping):
        model = _teacher_net(cfg, num_classes, log)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as err:
            raise ValueError(f"{key} {str(path)!r} does not fit the [teacher] architecture: "
                             f"{' '.join(str(err).split())[:400]}") from None
        net = model
    else:
        raise ValueError(f"{key} {str(path)!r} is neither a sureid model file "
                         "(ReIDModel.save) nor a Trainer checkpoint with a 'model' entry")
    if model.num_classes != num_classes:
        raise ValueError(f"{key} {str(path)!r} was trained on {model.num_classes} identities, "
                         f"the training set has {num_classes}: NPKD's KL needs the same ones")
    log(f"teacher loaded from {path}")
    return FrozenTeacher(net, model.classifier_weight.detach())


def _objective(cfg: TrainConfig, model: ReIDModel, teacher_dim: int | None) -> SUReIDLoss:
    o, s = cfg.objective, cfg.student
    hts = model.backbone.prune
    learns = hts and s.keep_score == "decision"  # the ratio loss has decisions to train
    kd = None
    if teacher_dim is not None:
        kd = NPKDLoss(kl_weight=o.kl_weight, temperature=o.temperature, align=o.align,
                      direction=o.direction, student_dim=model.embed_dim,
                      teacher_dim=teacher_dim, align_corners=o.align_corners,
                      feature_weight=o.feature_weight, feature_reduction=o.feature_reduction)
    return SUReIDLoss(
        alpha=o.alpha, beta=o.beta, ratio_weight=o.ratio_weight, kd=kd,
        id_loss=CrossEntropyLabelSmooth(epsilon=o.label_smoothing),
        triplet=TripletLoss(margin=o.margin),
        ratio=RatioLoss(model.backbone.keep_ratios) if learns else None,
        use_kd=kd is not None, use_ratio=learns, use_reweight=model.reweight is not None,
        aux_weight=o.aux_weight,
    )


# ----------------------------------------------------------------------------- logging
class RunLog:
    """``log.csv`` and, when ``tensorboard`` imports, TensorBoard events of a run.

    One row per call of :meth:`write`; the header grows when a stage brings new columns
    (the file is then rewritten once). A stage that resumes at step ``S`` first drops its
    rows after ``S`` (written after the checkpoint it resumes from).
    """

    FIRST = ("stage", "kind", "epoch", "step")

    def __init__(self, folder: Path, *, tensorboard: bool, log: Callable[[str], None]):
        self.path = folder / "log.csv"
        self.folder, self.log = folder, log
        self.tensorboard = tensorboard
        self.columns: list[str] = list(self.FIRST)
        self.rows: list[dict[str, str]] = []
        if self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or self.FIRST)
                self.rows = list(reader)
        self._writers: dict[str, Any] = {}

    def start(self, stage: str, step: int) -> None:
        """``stage`` (re)starts after ``step`` optimizer steps: later rows are dropped."""
        keep = [r for r in self.rows if r["stage"] != stage or int(r["step"]) <= step]
        if len(keep) != len(self.rows):
            self.rows = keep
            self._rewrite()
        if self.tensorboard and stage not in self._writers:
            self._writers[stage] = self._summary_writer(stage, step)

    def _summary_writer(self, stage: str, step: int):
        try:
            from torch.utils.tensorboard import SummaryWriter  # needs `pip install tensorboard`
        except ImportError:
            if not self._writers:
                self.log("tensorboard is not installed: log.csv only")
            self.tensorboard = False
            return None
        return SummaryWriter(str(self.folder / "tensorboard" / stage), purge_step=step + 1)

    def write(self, row: Mapping[str, object]) -> None:
        text = {k: _cell(v) for k, v in row.items()}
        new = [k for k in text if k not in self.columns]
        self.rows.append(text)
        if new or not self.path.is_file():
            self.columns += new
            self._rewrite()
        else:
            with open(self.path, "a", newline="", encoding="utf-8") as f:
                csv.DictWriter(f, self.columns).writerow(text)
        writer = self._writers.get(str(row["stage"]))
        if writer is not None:
            for k, v in row.items():
                if k not in self.FIRST and isinstance(v, float):
                    writer.add_scalar(f"{row['kind']}/{k}", v, int(row["step"]))
            writer.flush()

    def _rewrite(self) -> None:
        fd, tmp = temp_file(self.path)
        try:
            with open(fd, "w", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, self.columns)
                w.writeheader()
                w.writerows(self.rows)
            Path(tmp).replace(self.path)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def close(self) -> None:
        for writer in self._writers.values():
            if writer is not None:
                writer.close()
        self._writers.clear()


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _lrs(trainer: Trainer) -> dict[str, float]:
    """``lr0``, ``lr1``, ...: the learning rate of each parameter group (make_optimizer: 0 is
    the ViT's own weights, 1 the new layers)."""
    return {f"lr{i}": float(g["lr"]) for i, g in enumerate(trainer.optimizer.param_groups)}


# ----------------------------------------------------------------------------- the run
@dataclass
class _Stage:
    name: str
    build: Callable[[], Trainer]  # called when the stage starts (the teacher must be trained)
    loader: Any
    epochs: int
    settings: dict[str, Any]
    eval_every: int
    model_file: Path
    trainer: Trainer | None = None


@dataclass
class Plan:
    """What :func:`prepare` checked and built; :func:`run` trains it."""

    config: TrainConfig
    fmt: str
    out: Path
    resume: bool
    layout: str
    dataset: ReIDDataset
    device: torch.device
    stages: list[_Stage]
    evaluate: Callable[[nn.Module], dict[str, float]] | None
    log: Callable[[str], None]
    progress: bool = True


@dataclass
class RunResult:
    """Where a run wrote its files and how the student ended."""

    out: Path
    model: Path
    best: Path | None
    metrics: dict[str, float]
    epochs: int


def _default_log(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def prepare(cfg: TrainConfig, out: str | os.PathLike, *, fmt: str = "toml",
            config_path: str | os.PathLike | None = None, progress: bool = True,
            log: Callable[[str], None] | None = None) -> Plan:
    """Check every input and the output folder, and build the run; nothing is written.

    Args:
        cfg: the run (relative paths are taken from the current folder).
        out: the output folder: new, empty, or an earlier run of the same config (resumed).
        fmt: ``"toml"`` or ``"json"``, the format ``config.<fmt>`` is written in.
        config_path: the config file read, if any (an input: ``out`` may not replace it).
        progress: progress bars.
        log: called with each log line (default: print with the time).

    Raises:
        FileNotFoundError: a missing data folder, weights file, occluder folder or teacher
            checkpoint. FileExistsError: ``out`` holds something else (see the module
            docstring). ValueError/TypeError: a bad setting or input, named. ImportError:
            torchvision (or timm for ``timm_name``) is not installed.
    """
    log = log if log is not None else _default_log
    if fmt not in ("toml", "json"):
        raise ValueError(f"fmt must be 'toml' or 'json', got {fmt!r}")
    if not cfg.data.root:
        raise ValueError("data.root is not set: give --data-root DIR or set data.root in the "
                         "config")
    cfg = _absolute(cfg)
    device = check_device("device", ("cuda" if torch.cuda.is_available() else "cpu")
                          if cfg.device == "auto" else cfg.device)
    require("torchvision", purpose="the training augmentations of sureid train")
    # inputs, then the output folder, before anything is read in bulk or written
    root = Path(cfg.data.root)
    if cfg.data.occluders and not Path(cfg.data.occluders).is_dir():
        raise FileNotFoundError(f"data.occluders {cfg.data.occluders!r} is not a folder")
    inputs = [root, cfg.data.occluders or None,
              _weights_file("teacher.checkpoint", cfg.teacher.checkpoint)
              if cfg.teacher.checkpoint else None,
              _weights_file("student.weights", cfg.student.weights),
              _weights_file("teacher.weights", cfg.teacher.weights)
              if cfg.teacher.source == "train" else None]
    out = Path(out).expanduser()
    if config_path is not None:
        src = Path(config_path).expanduser().resolve()
        if src != (out / f"config.{fmt}").resolve():  # a run's own config: reruns it
            inputs.append(src)
    out = check_output_path("-o", out, folder=True, inputs=inputs)
    resume = _check_out(out, cfg, fmt)

    if not root.is_dir():
        raise FileNotFoundError(f"data.root {str(root)!r} is not a folder")
    layout = detect_layout(root) if cfg.data.layout == "auto" else cfg.data.layout
    if layout not in DATASETS:
        raise ValueError(f"data.layout must be 'auto' or one of {sorted(DATASETS)}, got "
                         f"{layout!r}")
    dataset = build_dataset(layout, root)
    if dataset.num_train_pids < 2:
        raise ValueError(f"data.root {str(root)!r} ({layout}) has {dataset.num_train_pids} "
                         "training identities; training needs at least 2")
    log(f"data: {dataset} (layout {layout})")

    preset = to_preset(cfg)
    if cfg.data.occluders:
        occluders = OccluderBank(cfg.data.occluders)
    else:
        occluders = OccluderBank(make_procedural_occluders(cfg.data.num_occluders, seed=0))
    test_tf = view_transforms(preset, occluders, color_jitter=cfg.data.color_jitter)[3]
    num_classes = dataset.num_train_pids
    workers = cfg.data.workers

    def loader(dual: bool):
        # each stage its own views: RandomPatch keeps a pool of patches from earlier images,
        # so a student must not start with the pool its teacher's training filled (or not)
        first, second, _, _ = view_transforms(preset, occluders,
                                              color_jitter=cfg.data.color_jitter)
        try:
            return train_loader(dataset.train, preset, first=first,
                                second=second if dual else None, workers=workers,
                                seed=cfg.seed)
        except ValueError as err:
            raise ValueError(f"data (P = data.ids_per_batch, K = data.instances): {err}") from None

    evaluate = None
    if dataset.query and dataset.gallery:
        def split(records):  # in order; its own generator keeps the global RNG untouched
            return DataLoader(ImageDataset(records, transform=test_tf), batch_size=64,
                              num_workers=workers, generator=torch.Generator())

        q_loader, g_loader = split(dataset.query), split(dataset.gallery)

        def evaluate(model: nn.Module) -> dict[str, float]:
            r = evaluate_model(model, q_loader, g_loader, metric=cfg.eval.metric,
                               device=device)
            ranks = {f"rank{k}": 100 * r.rank(k) for k in (1, 5, 10) if k <= len(r.cmc)}
            return {**ranks, "mAP": 100 * r.mAP, "mINP": 100 * r.mINP}

    data_record = {"layout": layout, "train_images": len(dataset.train),
                   "train_ids": num_classes}
    common = {"config": to_dict(cfg), "data": data_record,
              "weights": {k: file_digest(p) for k, p in
                          (("student", inputs[3]), ("teacher", inputs[4])) if p is not None}}
    stages: list[_Stage] = []
    amp = cfg.schedule.amp or None
    clip = cfg.schedule.grad_clip or None

    def trainer(name, model, objective, teacher, train_load, epochs):
        opt, sched = make_optimizer(preset, model, objective, len(train_load), epochs)
        return Trainer(model.to(device), objective.to(device), opt, scheduler=sched,
                       teacher=teacher, device=device, grad_clip=clip, amp=amp,
                       log=lambda line: log(f"[{name}] {line}"))

    torch.manual_seed(cfg.seed)
    teacher = None
    teacher_dim = None
    if cfg.teacher.source == "train":
        net = _teacher_net(cfg, num_classes, log)
        objective = SUReIDLoss(
            use_kd=False, use_ratio=False, use_reweight=False,
            id_loss=CrossEntropyLabelSmooth(epsilon=cfg.objective.label_smoothing),
            triplet=TripletLoss(margin=cfg.objective.margin))
        teacher_load = loader(False)
        built = trainer("teacher", net, objective, None, teacher_load, cfg.teacher.epochs)
        stages.append(_Stage(
            "teacher", lambda: built, teacher_load, cfg.teacher.epochs,
            normalize_settings({**common, "stage": "teacher"}), 0, out / "teacher.pt", built))
        teacher_dim = net.embed_dim
    elif cfg.teacher.source == "checkpoint":
        teacher = _loaded_teacher(cfg, num_classes, log).to(device)
        common["weights"]["teacher_checkpoint"] = file_digest(inputs[2])
        teacher_dim = _feature_dim(teacher, cfg.data.img_size)
    torch.manual_seed(cfg.seed)
    student = _student(cfg, num_classes, log)
    objective = _objective(cfg, student, teacher_dim)
    train_load = loader(cfg.data.noda)

    def build_student() -> Trainer:  # a teacher trained here is frozen once it is trained
        frozen = teacher
        if stages and stages[0].name == "teacher":
            net = stages[0].trainer.module
            frozen = FrozenTeacher(net, net.classifier_weight.detach()).to(device)
        return trainer("student", student, objective, frozen, train_load, cfg.schedule.epochs)

    stage = _Stage("student", build_student, train_load, cfg.schedule.epochs,
                   normalize_settings({**common, "stage": "student"}), cfg.eval.every,
                   out / "model.pt")
    if not stages:  # checked now when nothing has to be trained first
        stage.trainer = build_student()
    stages.append(stage)
    return Plan(cfg, fmt, out, resume, layout, dataset, device, stages, evaluate, log, progress)


def _feature_dim(teacher: FrozenTeacher, img_size: tuple[int, int]) -> int:
    weight = teacher.classifier_weight
    if weight is not None:
        return int(weight.shape[1])
    device = next(teacher.parameters()).device
    return int(teacher(torch.zeros(1, 3, *img_size, device=device))[0].shape[1])


def run(plan: Plan) -> RunResult:
    """Train what :func:`prepare` built and write the outputs (see the module docstring)."""
    cfg, out, log = plan.config, plan.out, plan.log
    out.mkdir(parents=True, exist_ok=True)
    config_file = out / f"config.{plan.fmt}"
    if not plan.resume or not config_file.is_file():
        _write_text(config_file, dumps(cfg, plan.fmt))
    data_config = DataConfig(cfg.data.img_size, MEAN, STD)
    runlog = RunLog(out, tensorboard=cfg.log.tensorboard, log=log)
    best: Path | None = None
    try:
        for stage in plan.stages:
            best = _fit(stage, plan, runlog, data_config) or best
    finally:
        runlog.close()
    student = plan.stages[-1]
    state = student.trainer.state
    metrics = {k: v for k, v in (state.history[-1] if state.history else {}).items()
               if k != "epoch"}
    best_path = out / "best.pt"
    log(f"wrote {out}: model.pt{', best.pt' if best_path.is_file() else ''}, log.csv, "
        f"config.{plan.fmt}")
    return RunResult(out, student.model_file, best_path if best_path.is_file() else None,
                     metrics, state.epoch)


def _fit(stage: _Stage, plan: Plan, runlog: RunLog, data_config: DataConfig) -> Path | None:
    cfg, out = plan.config, plan.out
    if stage.trainer is None:
        stage.trainer = stage.build()
    trainer, name = stage.trainer, stage.name
    every = cfg.log.steps
    started = False
    best_path = out / "best.pt"
    wrote_best = None

    def on_step(tr: Trainer, terms: dict[str, float]) -> None:
        nonlocal started
        if not started:  # rows after the checkpoint this stage resumed from are redone
            runlog.start(name, tr.state.step - 1)
            started = True
        if every and tr.state.step % every == 0:
            runlog.write({"stage": name, "kind": "step", "epoch": tr.state.epoch + 1,
                          "step": tr.state.step, **terms, **_lrs(tr)})

    def on_epoch_end(tr: Trainer, record: dict[str, float]) -> None:
        nonlocal wrote_best
        row = {"stage": name, "kind": "epoch", "epoch": int(record["epoch"]),
               "step": tr.state.step, **{k: v for k, v in record.items() if k != "epoch"},
               **_lrs(tr)}
        runlog.write(row)
        if name == "student" and "mAP" in record:
            earlier = [h["mAP"] for h in tr.state.history[:-1] if "mAP" in h]
            if not earlier or record["mAP"] > max(earlier):
                tr.module.save(best_path, data_config=data_config, metadata={
                    "identities": plan.dataset.label_map,
                    "epoch": int(record["epoch"]), "step": tr.state.step,
                    **{k: v for k, v in record.items() if k != "epoch"}})
                wrote_best = best_path
                plan.log(f"[{name}] best mAP so far {record['mAP']:.2f}: wrote {best_path}")

    trainer.on_step, trainer.on_epoch_end = on_step, on_epoch_end
    torch.manual_seed(cfg.seed)  # a fresh stage starts alike whether or not the one before resumed
    evaluate = plan.evaluate
    trainer.fit(stage.loader, epochs=stage.epochs, eval_fn=evaluate,
                eval_every=stage.eval_every, checkpoint_path=out / "checkpoints" / f"{name}.pt",
                settings=stage.settings, progress=plan.progress)
    state = trainer.state
    last = state.history[-1] if state.history else {}
    # identities: {name or raw pid: classifier label}, the map of the training folder
    trainer.module.save(stage.model_file, data_config=data_config, metadata={
        "stage": name, "identities": plan.dataset.label_map,
        "epochs": state.epoch, "step": state.step,
        "metrics": {k: v for k, v in last.items() if k != "epoch"},
        "config": to_dict(cfg)})
    return wrote_best


def _write_text(path: Path, text: str) -> None:
    fd, tmp = temp_file(path)
    try:
        with open(fd, "w", encoding="utf-8") as f:
            f.write(text)
        Path(tmp).replace(path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def train(cfg: TrainConfig, out: str | os.PathLike, *, fmt: str = "toml",
          config_path: str | os.PathLike | None = None, progress: bool = True,
          log: Callable[[str], None] | None = None) -> RunResult:
    """:func:`prepare` then :func:`run`: the whole of ``sureid train``.

    Example:
        >>> cfg = apply_sets(from_preset("smoke"), ["data.root=data/synth"])  # doctest: +SKIP
        >>> train(cfg, "runs/smoke").model  # doctest: +SKIP
        PosixPath('runs/smoke/model.pt')
    """
    return run(prepare(cfg, out, fmt=fmt, config_path=config_path, progress=progress, log=log))

