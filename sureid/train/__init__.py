"""``sureid train``: one config file describes a whole training run (``docs/training.md``).

:mod:`sureid.train.config` holds the settings (:class:`TrainConfig`: data, student, teacher,
objective, schedule, eval, log), their checks and the TOML/JSON files; :mod:`sureid.train.run`
checks the inputs and the output folder, builds the models from a config and trains them
with :class:`sureid.engine.Trainer`, writing ``model.pt``, ``best.pt``, checkpoints and
``log.csv``. The command line (``sureid train``) is a thin layer over :func:`build_config`
and :func:`train`. torchvision is needed (``pip install 'sureid[vision]'``), timm for timm
backbones.

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
from .presets import from_preset, to_preset
from .run import OUTPUT_NAMES, Plan, RunLog, RunResult, prepare, run, train

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
