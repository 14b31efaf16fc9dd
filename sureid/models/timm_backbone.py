"""timm backbones that remember how they were built, and are rebuilt from that record.

A timm model is a name plus constructor arguments (timm's ``vit_small_patch16_224`` is
``model_args = dict(patch_size=16, embed_dim=384, ...)``). :func:`create_timm_model` keeps
the name and the caller's arguments on the model it builds; a model file writes that record
(:func:`timm_config`) and :func:`rebuild_timm_model` builds the same network from it. timm is
imported lazily (``pip install 'sureid[timm]'``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .._checks import check_bool, is_int, is_real
from .._optional import require

__all__ = [
    "RECORD_ATTR", "check_timm_vit", "create_timm_model", "rebuild_timm_model", "timm_config",
]

#: the attribute of a timm model holding ``{"name": ..., "kwargs": ...}``
RECORD_ATTR = "sureid_timm_args"
# create_model arguments that say where weights come from, not what the network is
_WEIGHT_SOURCES = frozenset({"pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path",
                             "cache_dir"})
# module attributes that do not change what a model computes: weight init, memory saving,
# and the attention kernel (set per process by timm from TIMM_FUSED_ATTN)
_IGNORED_ATTRS = frozenset(
    {"training", "grad_checkpointing", "weight_init_mode", "fix_init", "fused_attn"}
)


def create_timm_model(name: str, *, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """``timm.create_model(name, pretrained=pretrained, **kwargs)``, recording how it was built.

    The model keeps ``{"name": name, "kwargs": kwargs}`` (a copy, without the weight-source
    arguments ``pretrained_cfg``, ``pretrained_cfg_overlay``, ``checkpoint_path``,
    ``cache_dir``) as ``model.sureid_timm_args``. :meth:`~sureid.ReIDModel.save` writes that
    record for its backbone and :func:`sureid.load` rebuilds the network from it; a timm
    backbone built with ``timm.create_model`` directly has none and cannot be saved.

    Args:
        name: a timm model name, e.g. ``"deit_small_patch16_224"``.
        pretrained: load timm's weights for ``name`` (from its hub or cache).
        kwargs: the model's arguments (``img_size``, ``patch_size``, ``num_classes``, ...).
            A saved model records them as plain values (str, number, bool, None, lists of
            them): give layers by their timm name (``act_layer="gelu_tanh"``).

    Example:
        >>> vit = create_timm_model("deit_small_patch16_224", img_size=(256, 128),
        ...                         num_classes=0)  # doctest: +SKIP
        >>> model = sureid.HTSViT.from_timm(vit, keep_ratio=0.7)  # doctest: +SKIP
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a timm model name (str), got {type(name).__name__}")
    check_bool("pretrained", pretrained)
    timm = require("timm", purpose="create_timm_model")
    model = timm.create_model(name, pretrained=pretrained, **kwargs)
    record = {k: copy.deepcopy(v) for k, v in kwargs.items() if k not in _WEIGHT_SOURCES}
    setattr(model, RECORD_ATTR, {"name": name, "kwargs": record})
    return model


def rebuild_timm_model(config: Mapping[str, Any]) -> nn.Module:
    """The network a :func:`timm_config` record describes, with timm's initial weights."""
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in config["kwargs"].items()}
    return create_timm_model(str(config["name"]), **kwargs)


def timm_config(model: nn.Module) -> dict[str, Any]:
    """``model``'s record as plain data (tuples as lists), checked to rebuild ``model``.

    Raises:
        ValueError: ``model`` was not built by :func:`create_timm_model`, an argument is
            not plain data, or the record rebuilds another network (a module replaced or
            changed after construction); the message names the argument or the module.
    """
    record = getattr(model, RECORD_ATTR, None)
    if record is None:
        raise ValueError(
            f"cannot save the timm backbone {type(model).__name__}: it has no record of the "
            "arguments it was built with; build it with "
            "sureid.models.create_timm_model(name, ...) instead of timm.create_model(name, "
            "...) (same arguments)"
        )
    name = record["name"]
    kwargs = {k: _plain(name, k, v) for k, v in record["kwargs"].items()}
    config = {"name": name, "kwargs": kwargs}
    with torch.device("meta"):  # structure only: no memory, no weight init cost
        rebuilt = rebuild_timm_model(config)
    diff = _first_difference(model, rebuilt)
    if diff is not None:
        raise ValueError(
            f"cannot save the timm backbone {name!r}: {diff}. A model file records the "
            "name and arguments it was built with, which cannot describe a module replaced "
            "or changed after construction"
        )
    return config


def check_timm_vit(vit: object) -> None:
    """Raise ``TypeError`` unless ``vit`` is a timm ``VisionTransformer`` whose blocks are
    timm ``Block``s with ``timm.layers.Attention`` (what the HTS adapter calls into)."""
    timm_vit = require("timm.models.vision_transformer", purpose="HTSViT.from_timm")
    timm_layers = require("timm.layers", purpose="HTSViT.from_timm")
    if not isinstance(vit, timm_vit.VisionTransformer):
        raise TypeError(
            "vit must be a timm.models.vision_transformer.VisionTransformer, "
            f"got {type(vit).__module__}.{type(vit).__name__}"
        )
    for i, blk in enumerate(vit.blocks):
        attn = getattr(blk, "attn", None)
        if not isinstance(blk, timm_vit.Block) or not isinstance(attn, timm_layers.Attention):
            raise TypeError(
                f"vit.blocks[{i}] must be a timm Block with timm.layers.Attention, got "
                f"{type(blk).__name__} with {type(attn).__name__}"
            )


def _plain(model_name: str, key: str, value: Any) -> Any:
    """``value`` as data a ``weights_only`` file holds (tuples as lists), else ValueError."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if is_int(value):
        return int(value)
    if is_real(value):
        return float(value)
    if isinstance(value, (tuple, list)):
        return [_plain(model_name, key, v) for v in value]
    raise ValueError(
        f"cannot save the timm backbone {model_name!r}: its argument {key}={value!r} is not "
        "plain data (str, number, bool, None or a list of them); give a layer by its timm "
        "name (e.g. act_layer='gelu_tanh', norm_layer='rmsnorm')"
    )


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
