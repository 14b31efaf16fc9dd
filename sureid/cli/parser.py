"""The ``sureid`` argument parser: every command, its options and their checks.

Numbers are checked here, by the options' ``type=`` (:mod:`sureid.cli.argtypes`), so a bad
one stops argparse with the option's name and status 2 before any file is read.
"""

from __future__ import annotations

import argparse
import textwrap

from .argtypes import int_at_least, real_in

__all__ = ["build_parser"]

_EPILOG_MAIN = """\
examples:
  sureid info runs/final.pt
  sureid extract runs/final.pt data/query/ -o query_feats.pt --flip
  sureid evaluate runs/final.pt --data-root data/Occluded_Duke --rerank
  sureid rank runs/final.pt data/query/ data/bounding_box_test/ --topk 10 -o ranks/
  sureid export runs/final.pt model.onnx

Model files come from ReIDModel.save(path); see docs/inference.md.
"""


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=79)


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 "
                   "(default: %(default)s)")
    p.add_argument("--batch-size", type=int_at_least(1), default=64, metavar="N",
                   help="images per forward (default: %(default)s)")
    p.add_argument("--workers", type=int_at_least(0), default=0, metavar="N",
                   help="DataLoader workers reading images (default: %(default)s)")
    p.add_argument("--flip", action="store_true",
                   help="flip test-time augmentation: average with the mirrored image")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    p.add_argument("--fused-decision", action="store_true",
                   help="HTS models with decision modules: run each stage's decision, top-k and "
                        "gather as one compiled CPU call (float32 on the CPU; compiled on first "
                        "use, needs a C++ compiler; scores agree to a few 1e-6, see docs/hts.md)")


def _add_keep_ratio(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep-ratio", type=real_in(0, 1, low_open=True), metavar="P",
                   help="HTS models: keep ratio p at inference (stages keep p, p^2, p^3 of the "
                        "patch tokens) instead of the one the model was trained with")


def _add_rerank_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("distance and re-ranking")
    g.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean",
                   help="feature distance (default: %(default)s; euclidean is squared)")
    g.add_argument("--rerank", action="store_true",
                   help="k-reciprocal re-ranking (Zhong et al. 2017), bounded memory")
    g.add_argument("--k1", type=int_at_least(1), default=20,
                   help="re-ranking k1 (default: %(default)s)")
    g.add_argument("--k2", type=int_at_least(1), default=6,
                   help="re-ranking k2 (default: %(default)s)")
    g.add_argument("--lambda", dest="lambda_value", type=real_in(0, 1), default=0.3,
                   metavar="L",
                   help="weight of the original distance (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sureid",
        description=_wrap("Person re-identification with a trained sureid model: extract features, "
                    "evaluate, rank a gallery, export to ONNX."),
        epilog=_EPILOG_MAIN, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from ..version import __version__

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
    p.add_argument("--max-rank", type=int_at_least(1), default=10, metavar="K",
                   help="print CMC up to rank K (default: %(default)s)")
    p.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    _add_rerank_options(p)
    g = p.add_argument_group("query expansion and breakdown")
    g.add_argument("--aqe", action="store_true",
                   help="alpha query expansion first (fast-reid's aqe; with --rerank, QE "
                        "comes first)")
    g.add_argument("--aqe-k", type=int_at_least(1), default=5, metavar="K",
                   help="features averaged per query expansion, itself included (default: "
                        "%(default)s)")
    g.add_argument("--aqe-alpha", type=real_in(0), default=3.0, metavar="A",
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
    p.add_argument("--topk", type=int_at_least(1), default=10, help="gallery images per query "
                   "(default: %(default)s)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--max-pictures", type=int_at_least(0), default=None, metavar="N",
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

