"""The model file format: ``ReIDModel.save(path)`` and ``sureid.load(path)``.

One ``torch.save`` file holds the weights and everything needed to rebuild the network
without the code that trained it: the backbone (sureid's ``VisionTransformer`` constructor
arguments, or a timm model name and the arguments read off the model), the HTS stages
(keep ratios, prune layers, ``prune``), the ReID head (number of classes, reweight head,
eval feature) and the preprocessing (input size, normalisation mean and std). It is written
atomically and read with ``torch.load(weights_only=True)``: only tensors and plain Python
values, nothing is unpickled as code. It lives with the models because
:meth:`~sureid.ReIDModel.save` writes it; :mod:`sureid.hub` is the public front.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._checkpoint import load_checkpoint, save_checkpoint
from .._checks import check_device, is_int
from .._optional import require
from ..version import __version__
from .hts_vit import HTSViT
from .pretrained import BACKBONE_FORMAT
from .vit import VisionTransformer

__all__ = [
    "FORMAT", "FORMAT_VERSION", "IMAGENET_MEAN", "IMAGENET_STD", "DataConfig", "ModelFileError",
    "load_model", "model_config", "save_model",
]

FORMAT = "sureid.model"
# Bump when the layout of the config changes; load() reads every version up to this one.
FORMAT_VERSION = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelFileError(ValueError):
    """A file that is not a sureid model, or whose weights do not fit its recorded architecture."""


@dataclass(frozen=True)
class DataConfig:
    """How images are prepared for a model (timm's ``data_config``, reduced to what ReID uses).

    An image is converted to RGB, resized to ``input_size`` ``(H, W)`` with antialiased
    bilinear interpolation (torchvision's ``v2.Resize(antialias=True)``), scaled to [0, 1]
    and normalised with ``mean`` / ``std``.
    """

    input_size: tuple[int, int]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        size = tuple(self.input_size)
        if len(size) != 2 or not all(is_int(v) and v > 0 for v in size):
            raise ValueError(f"input_size must be (H, W) positive ints, got {self.input_size!r}")
        for name in ("mean", "std"):
            v = tuple(float(x) for x in getattr(self, name))
            if len(v) != 3 or not all(math.isfinite(x) for x in v):
                raise ValueError(
                    f"{name} must be 3 finite values (RGB), got {getattr(self, name)!r}"
                )
            object.__setattr__(self, name, v)
        if min(self.std) <= 0:
            raise ValueError(f"std must be positive, got {self.std}")
        object.__setattr__(self, "input_size", tuple(int(v) for v in size))


def _input_size(backbone: nn.Module) -> tuple[int, int]:
    vit = getattr(backbone, "backbone", backbone)
    size = getattr(getattr(vit, "patch_embed", None), "img_size", None)
    if size is None:
        raise TypeError(f"cannot read the input size of {type(vit).__name__} (no patch_embed)")
    return int(size[0]), int(size[1])


def _data_config_of(model: nn.Module) -> DataConfig:
    """A ReID model's :class:`DataConfig` (see :func:`sureid.hub.resolve_data_config`)."""
    cfg = getattr(model, "data_config", None)
    if isinstance(cfg, DataConfig):
        return cfg
    return DataConfig(_input_size(model.backbone))


# ----------------------------------------------------------------------------- describe
# Names tried (through timm's get_act_layer / get_norm_layer) to record a layer that is not
# the one a timm model's name builds; anything else cannot be written as plain data.
_ACT_NAMES = (
    "gelu", "gelu_tanh", "quick_gelu", "relu", "relu6", "leaky_relu", "elu", "celu", "selu",
    "prelu", "silu", "mish", "sigmoid", "tanh", "hard_sigmoid", "hard_swish", "hard_mish",
    "identity",
)
_NORM_NAMES = ("layernorm", "layernormfp32", "rmsnorm", "rmsnormfp32", "simplenorm",
               "simplenormfp32")
# VisionTransformer argument -> (the submodule it builds, timm resolver, names to try)
_TIMM_LAYER_ARGS = {
    "act_layer": ("blocks.0.mlp.act", "get_act_layer", _ACT_NAMES),
    "norm_layer": ("blocks.0.norm1", "get_norm_layer", _NORM_NAMES),
    "embed_norm_layer": ("patch_embed.norm", "get_norm_layer", _NORM_NAMES),
}
# Module attributes that do not change what a loaded model computes: weight init, memory
# saving, and the attention kernel (set per process by timm from TIMM_FUSED_ATTN).
_IGNORED_ATTRS = frozenset(
    {"training", "grad_checkpointing", "weight_init_mode", "fix_init", "fused_attn"}
)


def _present(module: nn.Module | None) -> bool:
    return module is not None and not isinstance(module, nn.Identity)


def _timm_args(vit: nn.Module) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read timm ``VisionTransformer`` arguments off a built model.

    Returns the arguments every file records (the format-1 set) and the others, which are
    recorded only where they differ from what the name builds, so files keep loading on the
    timm versions that predate them.
    """
    blk, last = vit.blocks[0], vit.blocks[-1]
    pe = vit.patch_embed
    base = dict(
        img_size=[int(v) for v in pe.img_size],
        patch_size=int(pe.patch_size[0]) if pe.patch_size[0] == pe.patch_size[1]
        else [int(v) for v in pe.patch_size],
        embed_dim=int(vit.embed_dim),
        depth=len(vit.blocks),
        num_heads=int(blk.attn.num_heads),
        mlp_ratio=blk.mlp.fc1.out_features / vit.embed_dim,
        qkv_bias=blk.attn.qkv.bias is not None,
        qk_norm=_present(getattr(blk.attn, "q_norm", None)),
        init_values=float(getattr(blk.ls1, "init_values", 1e-5))
        if _present(getattr(blk, "ls1", None)) else None,
        class_token=vit.cls_token is not None,
        reg_tokens=int(getattr(vit, "num_reg_tokens", 0)),
        no_embed_class=bool(getattr(vit, "no_embed_class", False)),
        pre_norm=_present(getattr(vit, "norm_pre", None)),
        global_pool=str(getattr(vit, "global_pool", "token")),
        fc_norm=_present(getattr(vit, "fc_norm", None)),
        dynamic_img_size=bool(getattr(vit, "dynamic_img_size", False)),
        num_classes=int(getattr(vit, "num_classes", 0)),
    )
    extra = dict(
        in_chans=int(getattr(vit, "in_chans", 3)),
        proj_bias=getattr(blk.attn.proj, "bias", None) is not None,
        scale_attn_norm=_present(getattr(blk.attn, "norm", None)),
        scale_mlp_norm=_present(getattr(blk.mlp, "norm", None)),
        pos_embed="learn" if getattr(vit, "pos_embed", None) is not None else "none",
        final_norm=_present(vit.norm) or _present(getattr(vit, "fc_norm", None)),
        pool_include_prefix=bool(getattr(vit, "pool_include_prefix", False)),
        dynamic_img_pad=bool(getattr(pe, "dynamic_img_pad", False)),
        # training-only, recorded so a loaded model fine-tunes like the saved one
        drop_rate=float(getattr(getattr(vit, "head_drop", None), "p", 0.0)),
        pos_drop_rate=float(getattr(getattr(vit, "pos_drop", None), "p", 0.0)),
        patch_drop_rate=float(getattr(getattr(vit, "patch_drop", None), "prob", 0.0)),
        proj_drop_rate=float(getattr(getattr(blk.attn, "proj_drop", None), "p", 0.0)),
        attn_drop_rate=float(getattr(getattr(blk.attn, "attn_drop", None), "p", 0.0)),
        drop_path_rate=float(getattr(getattr(last, "drop_path1", None), "drop_prob", 0.0)),
    )
    return base, extra


def _module_state(module: nn.Module) -> dict[str, Any]:
    """What a module computes with, apart from its weights: type and plain attributes."""
    attrs = {
        k: v for k, v in vars(module).items()
        if not k.startswith("_") and k not in _IGNORED_ATTRS
        and isinstance(v, (bool, int, float, str, tuple, type(None)))
    }
    return {"type": f"{type(module).__module__}.{type(module).__qualname__}", **attrs}


def _first_difference(have: nn.Module, rebuilt: nn.Module) -> str | None:
    """Where ``rebuilt`` would compute differently from ``have`` (None: nowhere)."""
    a, b = dict(have.named_modules()), dict(rebuilt.named_modules())
    for name in [*a, *(n for n in b if n not in a)]:
        where = name or "the model"
        if name not in b:
            return f"{where} ({type(a[name]).__name__}) is not rebuilt"
        if name not in a:
            return f"the rebuilt model has {where} ({type(b[name]).__name__}), the saved one not"
        sa, sb = _module_state(a[name]), _module_state(b[name])
        if sa["type"] != sb["type"]:
            return f"{where} is a {sa['type']} but rebuilds as a {sb['type']}"
        for k in sorted(sa.keys() | sb.keys()):
            if sa.get(k, "<absent>") != sb.get(k, "<absent>"):
                return (f"{where}.{k} is {sa.get(k, '<absent>')!r} but rebuilds as "
                        f"{sb.get(k, '<absent>')!r}")
    wa = {k: tuple(v.shape) for k, v in have.state_dict().items()}
    wb = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    for k in sorted(wa.keys() | wb.keys()):
        if wa.get(k) != wb.get(k):
            return f"weight {k} has shape {wa.get(k)} but rebuilds as {wb.get(k)}"
    return None


def _layer_name(timm: Any, arg: str, module: nn.Module, arch: str) -> str:
    """The timm name that builds ``module``'s layer type for ``arg``, else a ValueError."""
    _, resolver, names = _TIMM_LAYER_ARGS[arg]
    resolve = getattr(timm.layers, resolver)
    for name in names:
        try:
            if resolve(name) is type(module):
                return name
        except (KeyError, AssertionError):  # a name this timm version does not know
            continue
    raise ValueError(
        f"cannot save the timm backbone {arch!r}: its {arg} builds {module!r} "
        f"({type(module).__module__}.{type(module).__qualname__}), which is not the layer "
        f"{arch!r} builds by default nor one of timm's named layers sureid records "
        f"({', '.join(names)}); build the backbone with {arg} set to one of these names"
    )


def _create_timm(timm: Any, name: str, kwargs: dict[str, Any]) -> nn.Module:
    kwargs = dict(kwargs)
    for key in ("img_size", "patch_size"):
        if isinstance(kwargs.get(key), list):
            kwargs[key] = tuple(kwargs[key])
    return timm.create_model(name, pretrained=False, **kwargs)


def _timm_config(vit: nn.Module) -> dict[str, Any]:
    """timm model name and the constructor arguments that rebuild the same computation.

    Raises:
        ValueError: ``vit`` differs from what those arguments rebuild (a layer type or
            option sureid cannot record); the message names the attribute.
    """
    cfg = getattr(vit, "pretrained_cfg", None) or {}
    name = cfg.get("architecture") if isinstance(cfg, dict) else getattr(cfg, "architecture", None)
    if not name:
        raise TypeError("cannot describe a timm model without pretrained_cfg['architecture']")
    name = str(name)
    timm = require("timm", purpose="saving a model with a timm backbone")
    kwargs, extra = _timm_args(vit)

    def rebuild() -> nn.Module:
        with torch.device("meta"):  # structure only: no memory, no weight init cost
            return _create_timm(timm, name, kwargs)

    # what the name builds by default: record only the arguments and layers that differ
    default = rebuild()
    _, default_extra = _timm_args(default)
    modules, default_modules = dict(vit.named_modules()), dict(default.named_modules())
    for arg, (path, _, _) in _TIMM_LAYER_ARGS.items():
        have, want = modules.get(path), default_modules.get(path)
        if have is not None and (want is None or _module_state(have) != _module_state(want)):
            kwargs[arg] = _layer_name(timm, arg, have, name)
    kwargs.update({k: v for k, v in extra.items() if default_extra.get(k) != v})
    diff = _first_difference(vit, rebuild())  # the record must rebuild this very model
    if diff is not None:
        recorded = ", ".join(sorted({*kwargs, *extra, *_TIMM_LAYER_ARGS}))
        raise ValueError(
            f"cannot save the timm backbone {name!r}: {diff}. sureid rebuilds it from the "
            f"model name and the VisionTransformer arguments {recorded} (layers by timm "
            "name), which cannot describe another block, attention or MLP class, a layer "
            "with non-default arguments or a module replaced after construction"
        )
    return {"kind": "timm", "name": name, "kwargs": kwargs}


def _vit_config(vit: nn.Module) -> dict[str, Any]:
    if isinstance(vit, VisionTransformer):
        return {"kind": "sureid", "kwargs": vit.config}
    if type(vit).__module__.startswith("timm."):
        return _timm_config(vit)
    raise TypeError(
        f"cannot describe a backbone of type {type(vit).__module__}.{type(vit).__name__}; "
        "sureid.VisionTransformer and timm VisionTransformer models can be saved"
    )


def model_config(model: nn.Module, data_config: DataConfig | None = None) -> dict[str, Any]:
    """The architecture and preprocessing of a :class:`~sureid.ReIDModel` as plain Python
    values (no weights); :func:`sureid.hub.model_config` checks the model's type first."""
    hts = model.backbone
    if not isinstance(hts, HTSViT):
        raise TypeError(f"model.backbone must be a sureid.HTSViT, got {type(hts).__name__}")
    if data_config is not None and not isinstance(data_config, DataConfig):
        raise TypeError(f"data_config must be a DataConfig or None, got "
                        f"{type(data_config).__name__}")
    data = data_config if data_config is not None else _data_config_of(model)
    vit = hts.backbone
    fixed = tuple(getattr(getattr(vit, "patch_embed", None), "img_size", None) or ())
    if fixed and not getattr(vit, "dynamic_img_size", False) and tuple(data.input_size) != fixed:
        # every FeatureExtractor call on the loaded model would fail at the model's size check
        raise ValueError(
            f"data_config.input_size {tuple(data.input_size)} does not fit the model, which "
            f"takes images of {fixed} (H, W) only (built without dynamic_img_size); save it "
            f"with DataConfig({fixed}, ...)"
        )
    return {
        "model": {
            "num_classes": int(model.num_classes),
            "reweight": model.reweight is not None,
            "eval_feature": str(model.eval_feature),
        },
        "hts": {
            "keep_ratio": [float(r) for r in hts.keep_ratios],
            "prune_layers": [int(i) for i in hts.prune_layers],
            "tau": float(hts.tau),
            "decision_hidden_dim": hts.decision_hidden_dim,
            "keep_score": hts.keep_score,
            "prune": bool(hts.prune),
            "compute_cls_attn": bool(hts.compute_cls_attn),
        },
        "vit": _vit_config(hts.backbone),
        "data": {
            "input_size": list(data.input_size),
            "mean": list(data.mean),
            "std": list(data.std),
        },
    }


def save_model(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    data_config: DataConfig | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (weights and architecture) to ``path``; see :meth:`ReIDModel.save`."""
    config = model_config(model, data_config)
    state = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "sureid_version": __version__,
        "config": config,
        "metadata": dict(metadata) if metadata else {},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    return save_checkpoint(state, path)


# ----------------------------------------------------------------------------- rebuild
def _build_vit(cfg: dict[str, Any]) -> nn.Module:
    kind = cfg.get("kind")
    if kind == "sureid":
        return VisionTransformer(**cfg["kwargs"])
    if kind == "timm":
        timm = require("timm", purpose="loading a model with a timm backbone")
        return _create_timm(timm, cfg["name"], cfg["kwargs"])
    raise ModelFileError(f"unknown backbone kind {kind!r}")


def _build(config: dict[str, Any], model_cls: type[nn.Module]) -> tuple[nn.Module, DataConfig]:
    vit = _build_vit(config["vit"])
    h = config["hts"]
    hts = HTSViT(
        vit, keep_ratio=list(h["keep_ratio"]), prune_layers=list(h["prune_layers"]),
        tau=h["tau"], decision_hidden_dim=h["decision_hidden_dim"],
        keep_score=h.get("keep_score", "decision"), prune=h["prune"],
        compute_cls_attn=h["compute_cls_attn"],
    )
    m = config["model"]
    model = model_cls(
        hts, m["num_classes"], reweight=m["reweight"], eval_feature=m["eval_feature"]
    )
    d = config["data"]
    return model, DataConfig(tuple(d["input_size"]), tuple(d["mean"]), tuple(d["std"]))


def load_model(
    path: str | os.PathLike,
    *,
    map_location: str | torch.device = "cpu",
    model_cls: type[nn.Module],
) -> nn.Module:
    """Rebuild a model file as a ``model_cls`` (:class:`~sureid.ReIDModel`), in eval mode; what
    :func:`sureid.load` does (see there for what it raises)."""
    device = check_device("map_location", map_location)
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{str(path)!r} is a folder, not a sureid model file")
    try:  # read on the CPU: a device problem is never reported as a bad file
        state = load_checkpoint(path, map_location="cpu")
    except FileNotFoundError:
        raise FileNotFoundError(f"model file not found: {str(path)!r}") from None
    except Exception as e:  # not a torch file, truncated, or objects refused by weights_only
        raise ModelFileError(f"{str(path)!r} is not a sureid model file: {e}") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        if isinstance(state, dict) and state.get("format") == BACKBONE_FORMAT:
            raise ModelFileError(
                f"{str(path)!r} holds backbone weights ({BACKBONE_FORMAT}), not a ReID model: "
                f"sureid.pretrained({str(path)!r}) builds the ViT they were made for, "
                "sureid.load_pretrained(model, path) loads them into a model"
            )
        if isinstance(state, dict) and "model" in state and "optimizer" in state:
            raise ModelFileError(
                f"{str(path)!r} is a training checkpoint (weights without the architecture); "
                "rebuild the model, load_state_dict(ckpt['model']) and write it with "
                "model.save(path)"
            )
        raise ModelFileError(
            f"{str(path)!r} is not a sureid model file (no {FORMAT!r} header); "
            "write one with ReIDModel.save(path)"
        )
    version = state.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ModelFileError(
            f"{str(path)!r} has model format version {version!r} (written by sureid "
            f"{state.get('sureid_version', '?')}); this sureid {__version__} reads versions "
            f"1 to {FORMAT_VERSION}: upgrade sureid"
        )
    try:
        model, data = _build(state["config"], model_cls)
    except ImportError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{str(path)!r}: invalid architecture config ({e})") from e
    weights = state.get("state_dict")
    if not isinstance(weights, dict):
        raise ModelFileError(f"{str(path)!r} holds no state_dict")
    missing, unexpected = _key_mismatch(model, weights)
    if missing or unexpected:
        raise ModelFileError(
            f"the weights in {str(path)!r} do not fit the architecture recorded with them: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:  # shape mismatches
        msg = str(e).splitlines()
        raise ModelFileError(
            f"the weights in {str(path)!r} do not fit the architecture recorded with them: "
            f"{' '.join(line.strip() for line in msg[1:3]) or msg[0]}"
        ) from e
    model.data_config = data
    model.metadata = dict(state.get("metadata") or {})
    return model.to(device).eval()


def _key_mismatch(model: nn.Module, weights: dict) -> tuple[list[str], list[str]]:
    own = set(model.state_dict())
    given = set(weights)
    return sorted(own - given), sorted(given - own)
