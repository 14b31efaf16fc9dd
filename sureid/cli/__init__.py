"""The ``sureid`` command line: extract, evaluate, rank, export, info, train.

Every subcommand but ``train`` takes a model file written by ``ReIDModel.save`` (see
``sureid.load``). Bad paths, files that are not sureid models and inputs that do not fit
the model end with a one-line ``sureid: error: ...`` on stderr and exit status 2; so does a
bad option, from argparse, with its usage line.

Outputs never replace or join an input, and are checked before any work: an output file may
not be the model or an input, nor lie inside an input folder; an existing output file is
replaced only when it is that command's own kind of output (a feature file, an evaluation
JSON, an ONNX graph); ``rank``'s output folder must be new, empty or an earlier ``rank``
output (its ``sureid_rank.json`` lists every file), and is written whole or not at all.

Modules: :mod:`~sureid.cli.parser` (the options), :mod:`~sureid.cli.argtypes` (their
checks), :mod:`~sureid.cli.commands` (extract, evaluate, export, info),
:mod:`~sureid.cli.rank`, :mod:`~sureid.cli.outputs` (what an output may replace),
:mod:`~sureid.cli.model` (the model the options name); ``train`` is
:mod:`sureid.train`'s front, here.
"""

from __future__ import annotations

import sys

from .._checks import check_device
from .commands import cmd_evaluate, cmd_export, cmd_extract, cmd_info
from .parser import build_parser
from .rank import cmd_rank

__all__ = ["build_parser", "main"]


def _cmd_train(args) -> None:
    from ..train import build_config, template, train

    if args.template is not None:
        print(template(args.template), end="")
        return
    if args.output is None:
        raise ValueError("train: -o/--output OUT is required (or --template)")
    cfg, fmt = build_config(args.config, preset=args.preset, data_root=args.data_root,
                            sets=args.assignments)
    train(cfg, args.output, fmt=fmt, config_path=args.config, progress=not args.no_progress)


_COMMANDS = {
    "extract": cmd_extract, "evaluate": cmd_evaluate, "rank": cmd_rank,
    "export": cmd_export, "info": cmd_info, "train": _cmd_train,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sureid`` console script; returns the exit status.

    A bad option exits from argparse (``SystemExit`` with status 2) before anything runs.
    """
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "device", None) is not None:  # before any file is read
            check_device("--device", args.device)
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
