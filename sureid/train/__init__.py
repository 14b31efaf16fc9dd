"""``sureid train``: one config file describes a whole training run (``docs/training.md``).

The settings: :mod:`~sureid.train.config` (:class:`TrainConfig` and its sections: data,
student, teacher, objective, schedule, eval, log), :mod:`~sureid.train.fields` (each setting's
default, comment and checks), :mod:`~sureid.train.presets` (from and to
:class:`sureid.ablation.Preset`) and :mod:`~sureid.train.files` (TOML/JSON files, ``--set``,
:func:`build_config`). The run: :mod:`~sureid.train.plan` (:func:`prepare` checks the inputs
and the output folder, :mod:`~sureid.train.folders`, and builds the data,
:mod:`~sureid.train.loaders`, and the models and objectives, :mod:`~sureid.train.build`) and
:mod:`~sureid.train.run` (:func:`run` trains each stage with :class:`sureid.engine.Trainer`,
writing ``model.pt``, ``best.pt``, checkpoints and ``log.csv``,
:mod:`~sureid.train.runlog`). The command line (``sureid train``) is a thin layer over
:func:`build_config` and :func:`train`. torchvision is needed (``pip install
'sureid[vision]'``), timm for timm backbones.

Example:
    >>> from sureid.train import build_config, train
    >>> cfg, fmt = build_config(preset="smoke", data_root="data/synth")  # doctest: +SKIP
    >>> train(cfg, "runs/smoke").model  # doctest: +SKIP
    PosixPath('runs/smoke/model.pt')
"""

from ..data import detect_layout
from .config import (
    DataSection,
    EvalSection,
    LogSection,
    ObjectiveSection,
    ScheduleSection,
    StudentSection,
    TeacherSection,
    TrainConfig,
    merge,
    to_dict,
)
from .files import (
    apply_sets,
    build_config,
    default_format,
    dumps,
    load_config,
    read_config_file,
    template,
)
from .folders import OUTPUT_NAMES
from .plan import Plan, prepare
from .presets import from_preset, to_preset
from .run import RunResult, run, train
from .runlog import RunLog

__all__ = [
    "OUTPUT_NAMES",
    "DataSection",
    "EvalSection",
    "LogSection",
    "ObjectiveSection",
    "Plan",
    "RunLog",
    "RunResult",
    "ScheduleSection",
    "StudentSection",
    "TeacherSection",
    "TrainConfig",
    "apply_sets",
    "build_config",
    "default_format",
    "detect_layout",
    "dumps",
    "from_preset",
    "load_config",
    "merge",
    "prepare",
    "read_config_file",
    "run",
    "template",
    "to_dict",
    "to_preset",
    "train",
]
