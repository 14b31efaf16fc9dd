"""The Table I-III protocols pinned against Sec. IV-B/IV-C of the paper, and the recipe's
building blocks (transforms, loader, optimizer, starting weights)."""

import dataclasses

import pytest
import torch
from PIL import Image

from sureid.ablation import (
    COLOR_JITTER,
    PRESETS,
    PROTOCOLS,
    Arch,
    LimitedLoader,
    PaperResult,
    Protocol,
    Weights,
    WeightsUnavailable,
    make_optimizer,
    train_loader,
    view_transforms,
)
from sureid.data import ImageRecord
from sureid.models import ReIDModel

DEIT_S = "deit_small_distilled_patch16_224"
VIT = "vit_base_patch16_224"

# (table, train, test sets, student, alpha, beta, colour jitter, paper numbers per test set)
PAPER = {
    # Table I: "SUReID 256x128 1585 65.8 54.9"; DeiT-S, alpha = beta = 1 (Sec. IV-B)
    "occluded_duke": ("I", "occluded_duke", ("occluded_duke",), DEIT_S, 1.0, 1.0, False,
                      {"occluded_duke": (65.8, 54.9, None)}),
    # Table III: Market-1501 94.5 / 87.2, DukeMTMC-reID 89.1 / 79.7
    "market1501": ("III", "market1501", ("market1501",), DEIT_S, 1.0, 1.0, False,
                   {"market1501": (94.5, 87.2, None)}),
    "dukemtmc": ("III", "dukemtmc", ("dukemtmc",), DEIT_S, 1.0, 1.0, False,
                 {"dukemtmc": (89.1, 79.7, None)}),
    # Table II: trained on Market-1501; ViT (IN-21k) student, alpha 2, beta 1, colour jitter;
    # Occluded-REID Rank-1 86.8 mAP 80.7, Partial-REID Rank-1 85.3 Rank-3 90.7
    "market_to_occluded_reid": ("II", "market1501", ("occluded_reid",), VIT, 2.0, 1.0, True,
                                {"occluded_reid": (86.8, 80.7, None)}),
    "market_to_partial_reid": ("II", "market1501", ("partial_reid",), VIT, 2.0, 1.0, True,
                               {"partial_reid": (85.3, None, 90.7)}),
    "market_to_occluded_partial": ("II", "market1501", ("occluded_reid", "partial_reid"), VIT,
                                   2.0, 1.0, True, {"occluded_reid": (86.8, 80.7, None),
                                                    "partial_reid": (85.3, None, 90.7)}),
}


def test_every_protocol_is_pinned():
    assert set(PROTOCOLS) == set(PAPER)


@pytest.mark.parametrize("name", sorted(PAPER))
def test_protocol_follows_the_paper(name):
    table, train, test, student, alpha, beta, jitter, numbers = PAPER[name]
    p = PROTOCOLS[name]
    assert (p.name, p.table, p.train, p.test) == (name, table, train, test)
    assert (p.student, p.alpha, p.beta, p.color_jitter) == (student, alpha, beta, jitter)
    assert {r.test: (r.rank1, r.mAP, r.rank3) for r in p.paper} == numbers
    preset = p.preset()
    assert preset.student == Arch(timm_name=student)
    assert (preset.alpha, preset.beta) == (alpha, beta)


@pytest.mark.parametrize("name", sorted(PAPER))
def test_preset_is_the_paper_preset_with_the_overrides(name):
    p, base = PROTOCOLS[name], PRESETS["paper"]
    preset = p.preset()
    changed = {f.name for f in dataclasses.fields(preset)
               if getattr(preset, f.name) != getattr(base, f.name)}
    assert changed <= {"student", "alpha", "beta", "not_in_paper"}
    assert preset.keep_ratio == 0.7 and preset.teacher == Arch(timm_name=VIT)  # Sec. IV-C
    assert preset.not_in_paper[: len(base.not_in_paper)] == base.not_in_paper
    assert preset.not_in_paper[len(base.not_in_paper):] == p.not_in_paper


def test_additions_are_listed():
    for p in PROTOCOLS.values():
        notes = " ".join(p.not_in_paper)
        if p.color_jitter:
            assert "color jitter" in notes and "fast-reid" in notes
        if p.student == VIT:
            assert "vit_base_patch16_224" in notes
    assert PROTOCOLS["occluded_duke"].preset() == dataclasses.replace(PRESETS["paper"])


def test_protocol_checks_its_arguments():
    ok = dict(name="x", table="I", train="market1501", test=("market1501",), student=DEIT_S,
              alpha=1.0, beta=1.0, color_jitter=False,
              paper=(PaperResult("market1501", 1.0),))
    Protocol(**ok)
    with pytest.raises(ValueError, match="train must be one of"):
        Protocol(**ok | {"train": "occluded_reid"})
    with pytest.raises(ValueError, match="test must be"):
        Protocol(**ok | {"test": ("nope",)})
    with pytest.raises(ValueError, match="alpha must be > 0, got 0"):
        Protocol(**ok | {"alpha": 0})
    with pytest.raises(ValueError, match="one result per test set"):
        Protocol(**ok | {"paper": ()})
    with pytest.raises(dataclasses.FrozenInstanceError):
        PROTOCOLS["market1501"].alpha = 3.0


# ----------------------------------------------------------------------------- recipe

SMOKE = PRESETS["smoke"]


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    out = []
    g = torch.Generator().manual_seed(0)
    for pid in range(8):
        for i in range(4):
            px = torch.randint(0, 256, (64, 32, 3), generator=g, dtype=torch.uint8).numpy()
            path = root / f"{pid + 1:04d}_c{i % 2 + 1}_{i}.png"
            Image.fromarray(px).save(path)
            out.append(ImageRecord(str(path), pid, i % 2))
    return out


@pytest.fixture(scope="module")
def occluders():
    import sureid

    return sureid.make_procedural_occluders(4, seed=0)


def _batches(loader):
    return [(b[0].clone(), b[1].clone()) for b in loader]


def test_train_loader_repeats_for_a_seed(records, occluders):
    preset = dataclasses.replace(SMOKE, ids_per_batch=4, instances=2, max_steps_per_epoch=None)
    first, *_ = view_transforms(preset, occluders)

    def batches(seed):
        # the sampler draws from its seed; with workers=0 the augmentations draw from torch's
        # global RNG (with workers, from the loader's seeded generator)
        torch.manual_seed(0)
        loader = train_loader(records, preset, first=first, second=None, workers=0, seed=seed)
        return _batches(loader)

    a, b, c = batches(3), batches(3), batches(4)
    assert len(a) == len(b) >= 2 and a[0][0].shape == (8, 3, 64, 32)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert any(not torch.equal(ya, yc) for (_, ya), (_, yc) in zip(a, c, strict=False))


def test_dual_batch_and_limit(records, occluders):
    preset = dataclasses.replace(SMOKE, ids_per_batch=4, instances=2, max_steps_per_epoch=1)
    first, second, _, _ = view_transforms(preset, occluders)
    loader = train_loader(records, preset, first=first, second=second, workers=0, seed=0)
    assert isinstance(loader, LimitedLoader) and len(loader) == 1
    assert hasattr(loader.sampler, "set_epoch")
    (batch,) = list(loader)
    assert batch.first.shape == batch.second.shape == (8, 3, 64, 32)  # two views of 8 images
    assert batch.targets[0].shape == (8,)


def test_limited_loader_is_islice():
    loader = LimitedLoader([[i] for i in range(5)], 3)
    assert len(loader) == 3 and list(loader) == [[0], [1], [2]] and list(loader) == [[0], [1], [2]]
    assert len(LimitedLoader([1, 2], 5)) == 2 and loader.sampler is None
    for bad in (0, -1):
        with pytest.raises(ValueError, match=f"n must be >= 1, got {bad}"):
            LimitedLoader([1], bad)
    for bad in (1.5, True):
        with pytest.raises(TypeError, match=f"n must be an int, got {type(bad).__name__} {bad}"):
            LimitedLoader([1], bad)


def test_color_jitter_only_when_asked(occluders):
    from torchvision.transforms import v2

    img = Image.new("RGB", (32, 64), (120, 90, 60))
    preset = dataclasses.replace(SMOKE, erasing_p=0.0, patch_p=0.0, noda_p=0.0, padding=0)
    for jitter in (False, True):
        views = view_transforms(preset, occluders, color_jitter=jitter)
        for t in views[:3]:
            found = [m for m in _walk(t) if isinstance(m, v2.ColorJitter)]
            assert len(found) == int(jitter)
            if jitter:
                assert found[0].brightness == (0.85, 1.15) and found[0].hue == (-0.1, 0.1)
        assert not any(isinstance(m, v2.ColorJitter) for m in _walk(views[3]))
    # on a flat image without other randomness, only the jitter changes the colours
    plain = view_transforms(preset, occluders)[0]
    jittered = view_transforms(preset, occluders, color_jitter=True)[0]
    torch.manual_seed(0)
    ref = plain(img)
    outs = [jittered(img) for _ in range(8)]
    assert all(torch.allclose(ref, plain(img)) for _ in range(2))
    assert any(not torch.allclose(ref, o, atol=1e-3) for o in outs)
    assert COLOR_JITTER["p"] == 0.5


def _walk(t):
    yield t
    for child in getattr(t, "transforms", []):
        yield from _walk(child)


def _model(arch=SMOKE.student):
    from sureid.ablation import build_backbone

    return ReIDModel(build_backbone(arch, SMOKE.img_size, keep_ratio=0.7, prune=True), 5,
                     reweight=True)


def test_optimizer_groups_and_schedule():
    import sureid

    model = _model()
    objective = sureid.SUReIDLoss(kd=None, ratio=None)
    preset = dataclasses.replace(SMOKE, backbone_lr_mult=0.1, lr=1e-3, warmup_epochs=1)
    opt, sched = make_optimizer(preset, model, objective, steps_per_epoch=4, epochs=3)
    assert isinstance(opt, torch.optim.AdamW)
    vit = {id(p) for p in model.backbone.backbone.parameters()}
    g_vit, g_new = opt.param_groups
    assert {id(p) for p in g_vit["params"]} == vit
    assert not vit & {id(p) for p in g_new["params"]}
    n = sum(1 for p in [*model.parameters(), *objective.parameters()] if p.requires_grad)
    assert len(g_vit["params"]) + len(g_new["params"]) == n
    assert g_vit["lr"] < 1e-5 and g_new["lr"] < 1e-4  # warm-up
    for _ in range(4):
        opt.step()
        sched.step()
    assert g_vit["lr"] == pytest.approx(1e-4) and g_new["lr"] == pytest.approx(1e-3)
    sgd, _ = make_optimizer(dataclasses.replace(preset, optimizer="sgd"), model, objective, 4, 3)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9


def test_weights_start(tmp_path):
    arch = SMOKE.student
    w = Weights("student", arch, SMOKE)
    assert w.describe() is None and repr(w) == "Weights('student', None)"
    with pytest.raises(WeightsUnavailable, match="--student-weights .*does not exist"):
        Weights("student", arch, SMOKE, local=tmp_path / "none.pth")
    with pytest.raises(WeightsUnavailable, match="--pretrained loads timm weights"):
        Weights("teacher", arch, SMOKE, pretrained=True)
    quick = PRESETS["quick"]
    with pytest.raises(WeightsUnavailable, match="pretrain_backbones.py --model teacher"):
        Weights("teacher", quick.teacher, quick, shipped_dir=tmp_path)
    # a trained teacher checkpoint: nothing to check or load
    assert Weights("teacher", arch, SMOKE, local=tmp_path / "none.pth", trained=True).local is None
    # a local file: loaded into the backbone, recorded by digest
    src = _model().backbone
    path = tmp_path / "student.pth"
    torch.save(src.backbone.state_dict(), path)
    w = Weights("student", arch, SMOKE, local=path, log=lambda s: None)
    assert w.describe().startswith("student.pth:")
    built = w.build(SMOKE.img_size, keep_ratio=0.7, prune=True)
    for k, v in src.backbone.state_dict().items():
        assert torch.equal(built.backbone.state_dict()[k], v), k


def test_predictor_warmup_holds_the_vit_of_learned_hts_only():
    import sureid

    objective = sureid.SUReIDLoss(kd=None, ratio=None)
    preset = dataclasses.replace(SMOKE, lr=1e-3, backbone_lr_mult=0.1, warmup_epochs=0,
                                 predictor_warmup_epochs=1.5)
    opt, sched = make_optimizer(preset, _model(), objective, steps_per_epoch=4, epochs=3)
    vit_lrs = []
    for _ in range(8):
        vit_lrs.append(opt.param_groups[0]["lr"])
        assert opt.param_groups[1]["lr"] > 0  # the decision modules and heads learn
        opt.step()
        sched.step()
    assert vit_lrs[:6] == [0.0] * 6 and vit_lrs[6] > 0  # 1.5 epochs of 4 steps
    from sureid.ablation import build_backbone

    dense = ReIDModel(build_backbone(SMOKE.student, SMOKE.img_size), 5)
    attention = ReIDModel(build_backbone(SMOKE.student, SMOKE.img_size, keep_ratio=0.7,
                                         prune=True, keep_score="attention"), 5)
    for model in (dense, attention):  # nothing to warm up: never held
        opt, _ = make_optimizer(preset, model, objective, steps_per_epoch=4, epochs=3)
        assert opt.param_groups[0]["lr"] > 0
