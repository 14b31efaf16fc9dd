"""The training building blocks of the reproduction scripts: augmentations, the P x K loader,
the optimizer and where a backbone's weights start from.

``examples/reproduce_table4.py`` and ``examples/train_protocol.py`` are built on these (the
second adds the optional colour jitter on the training views that Table II's protocol uses).
torchvision is needed for the transforms (``pip install 'sureid[vision]'``), timm for timm
backbones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from .._checks import check_int
from ..data import ImageDataset, RandomIdentitySampler
from ..engine import cosine_with_warmup
from ..models.hts_vit import HTSViT
from ..models.pretrained import load_pretrained
from ..transforms.dual import DualViewDataset, dual_collate, paper_dual_views
from ..transforms.noda import NODA
from ..transforms.random_patch import RandomPatch
from .presets import Arch, Preset, build_backbone
from .pretrained import load_backbone_weights

__all__ = [
    "COLOR_JITTER",
    "MEAN",
    "STD",
    "LimitedLoader",
    "Weights",
    "WeightsUnavailable",
    "learns_selection",
    "make_optimizer",
    "train_loader",
    "view_transforms",
]

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# Not in the paper ("extra color jitter", no strengths): fast-reid's INPUT.CJ defaults, applied
# with probability p to the whole image before each view's own augmentations.
COLOR_JITTER: dict[str, float] = {
    "p": 0.5, "brightness": 0.15, "contrast": 0.15, "saturation": 0.1, "hue": 0.1,
}


def view_transforms(preset: Preset, occluders, *, color_jitter: bool = False):
    """``(view 1, view 2 with NODA, view 2 without occluders (the control), test)``.

    Views 1/2 are :func:`sureid.paper_dual_views` with the preset's size, padding, RandomPatch
    and erasing probabilities and ``NODA(occluders, p=preset.noda_p)``; the test transform is
    ToImage, Resize, float, Normalize. With ``color_jitter`` the three training views first
    apply ``RandomApply([ColorJitter(...)], p)`` (:data:`COLOR_JITTER`) to the PIL image, each
    view drawing its own jitter; the test transform never jitters.
    """
    from torchvision.transforms import v2  # pip install 'sureid[vision]'

    views = {}
    for name, noda in (("noda", NODA(occluders, p=preset.noda_p)), ("plain", v2.Identity())):
        views[name] = paper_dual_views(
            noda, size=preset.img_size, padding=preset.padding, mean=MEAN, std=STD,
            random_patch=RandomPatch(p=preset.patch_p), erasing_p=preset.erasing_p,
        )
    test = v2.Compose([
        v2.ToImage(), v2.Resize(list(preset.img_size), antialias=True),
        v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(MEAN), list(STD)),
    ])
    train = [views["noda"][0], views["noda"][1], views["plain"][1]]
    if color_jitter:
        cj = {k: v for k, v in COLOR_JITTER.items() if k != "p"}
        train = [v2.Compose([v2.RandomApply([v2.ColorJitter(**cj)], p=COLOR_JITTER["p"]), t])
                 for t in train]
    return (*train, test)


class LimitedLoader:
    """The first ``n`` batches of ``loader`` per pass (``itertools.islice``), for smoke runs.

    Keeps what :class:`sureid.engine.Trainer` reads: ``len()`` (``min(len(loader), n)``) and
    ``.sampler`` (for ``set_epoch``).

    Raises:
        TypeError: ``n`` is not an int.
        ValueError: ``n < 1``.
    """

    def __init__(self, loader, n: int):
        self.loader, self.n = loader, check_int("n", n, low=1)

    @property
    def sampler(self):
        return getattr(self.loader, "sampler", None)

    def __len__(self) -> int:
        return min(len(self.loader), self.n)

    def __iter__(self) -> Iterator:
        return itertools.islice(iter(self.loader), self.n)


def train_loader(records, preset: Preset, *, first, second, workers: int, seed: int):
    """P x K batches of ``records`` through ``first``; with a view-2 ``second``, the dual batch.

    P = ``preset.ids_per_batch``, K = ``preset.instances``; the sampler and the loader's
    generator are seeded with ``seed``, so a seed gives the same batches. With
    ``preset.max_steps_per_epoch`` the loader is a :class:`LimitedLoader`.
    """
    dual = second is not None
    base = ImageDataset(records, transform=None if dual else first)
    sampler = RandomIdentitySampler(
        base.pids, batch_size=preset.ids_per_batch * preset.instances,
        num_instances=preset.instances, seed=seed,
    )
    loader = DataLoader(
        DualViewDataset(base, first, second) if dual else base, batch_size=sampler.batch_size,
        sampler=sampler, num_workers=workers, collate_fn=dual_collate if dual else None,
        drop_last=True, persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )
    steps = preset.max_steps_per_epoch
    return LimitedLoader(loader, steps) if steps else loader


def make_optimizer(preset: Preset, model, objective, steps_per_epoch: int, epochs: int):
    """SGD (momentum 0.9) or AdamW over the model and the objective, with
    :func:`sureid.engine.cosine_with_warmup` over ``steps_per_epoch * epochs`` steps.

    The ViT's own weights (``model.backbone.backbone``) get ``lr * backbone_lr_mult``, the new
    layers (BNNeck, decision MLPs, reweight head, objective) ``lr``. Every group warms up
    linearly over ``preset.warmup_epochs``. When the model learns its token selection (an
    :class:`~sureid.HTSViT` with active decision modules), the ViT's weights are also held at
    lr 0 for the first ``preset.predictor_warmup_epochs`` (the predictor warm-up); dense models
    and the attention score have nothing to warm up and are not held.

    Returns:
        ``(optimizer, scheduler)``.
    """
    vit = {id(p) for p in model.backbone.backbone.parameters()}
    params = [p for p in [*model.parameters(), *objective.parameters()] if p.requires_grad]
    total = max(1, steps_per_epoch * epochs)
    hold = min(total - 1, round(steps_per_epoch * preset.predictor_warmup_epochs))
    groups, holds = [], []  # the ViT's group is held only while decision modules learn
    for params_, lr, held in (
        ([p for p in params if id(p) in vit], preset.lr * preset.backbone_lr_mult,
         learns_selection(model)),
        ([p for p in params if id(p) not in vit], preset.lr, False),
    ):
        if params_:
            groups.append({"params": params_, "lr": lr})
            holds.append(hold if held else 0)
    if preset.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=preset.lr, momentum=0.9, weight_decay=preset.weight_decay)
    else:
        opt = torch.optim.AdamW(groups, lr=preset.lr, weight_decay=preset.weight_decay)
    warmup = min(total - 1, round(steps_per_epoch * preset.warmup_epochs))
    return opt, cosine_with_warmup(opt, total_steps=total, warmup_steps=warmup, hold_steps=holds)


def learns_selection(model) -> bool:
    """Whether ``model`` (a :class:`~sureid.ReIDModel`) has decision modules that train."""
    hts = getattr(model, "backbone", None)
    return (isinstance(hts, HTSViT) and hts.keep_score == "decision" and hts.prune
            and any(r < 1.0 for r in hts.keep_ratios))


def file_digest(path: Path) -> str:
    """The first 16 hex digits of the file's SHA-256."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


class WeightsUnavailable(ValueError):
    """A requested pretrained start that cannot be had (missing file, no hub, ...)."""


class Weights:
    """Where ``role``'s backbone starts from: a local file, timm's weights, the shipped ones, or
    random. Checked at construction, before any data is read: a requested pretrained start
    that cannot be had is an error naming how to supply it, never a silent random start.

    Args:
        role: ``"student"`` or ``"teacher"``; error messages name ``--{role}-weights``.
        arch: the backbone's shape or timm name.
        preset: ``timm_pretrained`` (timm names start from timm's weights), ``pretrained``
            (the shipped weights' name) and ``img_size`` are read.
        local: a weights file (timm/DeiT/TransReID ``.pth``, safetensors), loaded with
            :func:`sureid.load_pretrained`.
        pretrained: start a timm name from timm's weights even if the preset does not.
        trained: a trained checkpoint will be loaded over the backbone (the teacher's
            ``--teacher-checkpoint``): nothing is checked or loaded here.
        shipped_dir: folder of the shipped ``<preset.pretrained>_<role>.pt`` files.
        log: called with one line when local weights are loaded.

    Raises:
        WeightsUnavailable: ``local`` or the shipped file does not exist, timm's weights cannot
            be downloaded, or ``pretrained`` with a sureid ViT shape.
    """

    def __init__(self, role: str, arch: Arch, preset: Preset, *, local: Path | None = None,
                 pretrained: bool = False, trained: bool = False,
                 shipped_dir: Path | None = None,
                 log: Callable[[str], None] | None = None):
        self.role, self.arch, self.log = role, arch, log
        self.local = Path(local) if local is not None else None
        self.shipped: Path | None = None
        self.timm = False
        flag = f"--{role}-weights"
        if trained:
            self.local = None
            return  # a trained model is loaded over whatever the backbone starts from
        if self.local is not None:
            if not self.local.is_file():
                raise WeightsUnavailable(f"{flag} {str(self.local)!r} does not exist")
        elif arch.timm_name is not None:
            self.timm = preset.timm_pretrained or pretrained
            if self.timm:
                try:  # fetches and caches the weights, or fails here rather than after training
                    build_backbone(arch, preset.img_size, pretrained=True)
                except Exception as err:  # timm raises hub/HTTP/OS errors of many kinds
                    raise WeightsUnavailable(
                        f"could not get timm's pretrained weights for {arch.timm_name!r} "
                        f"({type(err).__name__}: {err}); download them where a hub is reachable "
                        f"and pass {flag} PATH") from None
        elif pretrained:
            raise WeightsUnavailable(
                f"--pretrained loads timm weights, but the {role} is a sureid ViT shape; name a "
                f"timm model with --{role} or pass {flag} PATH")
        elif preset.pretrained is not None:
            if shipped_dir is None:
                raise WeightsUnavailable(f"the preset starts from the shipped "
                                         f"{preset.pretrained!r} weights: pass shipped_dir")
            self.shipped = Path(shipped_dir) / f"{preset.pretrained}_{role}.pt"
            if not self.shipped.is_file():
                raise WeightsUnavailable(
                    f"the preset starts from {str(self.shipped)!r}; make it with python "
                    f"examples/pretrain_backbones.py --model {role}")

    @classmethod
    def from_args(cls, role: str, arch: Arch, preset: Preset, args, *,
                  shipped_dir: Path | None = None, log: Callable[[str], None] | None = None):
        """From a command line's ``--{role}-weights``, ``--pretrained`` (if it has one) and
        ``--teacher-checkpoint`` (teacher only)."""
        trained = role == "teacher" and getattr(args, "teacher_checkpoint", None) is not None
        return cls(role, arch, preset, local=getattr(args, f"{role}_weights", None),
                   pretrained=getattr(args, "pretrained", False), trained=trained,
                   shipped_dir=shipped_dir, log=log)

    def build(self, img_size, *, keep_ratio: float = 1.0, prune: bool = False,
              keep_score: str = "decision", decision_init_keep: float | None = None
              ) -> nn.Module:
        """The :class:`sureid.HTSViT` backbone, with its starting weights loaded."""
        backbone = build_backbone(self.arch, img_size, pretrained=self.timm,
                                  keep_ratio=keep_ratio, prune=prune, keep_score=keep_score,
                                  decision_init_keep=decision_init_keep)
        if self.local is not None:
            report = load_pretrained(backbone, self.local)
            if self.log is not None:
                self.log(f"{self.role} weights from {self.local}: {report}")
        elif self.shipped is not None:
            load_backbone_weights(backbone.backbone, self.shipped,
                                  arch=dataclasses.asdict(self.arch))
        return backbone

    def describe(self) -> str | None:
        """What the settings record: the file's digest, timm's weights, or None (random)."""
        path = self.local or self.shipped
        if path is not None:
            return f"{path.name}:{file_digest(path)}"
        return f"timm:{self.arch.timm_name}" if self.timm else None

    def __repr__(self) -> str:
        return f"Weights({self.role!r}, {self.describe()!r})"
