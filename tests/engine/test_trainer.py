import pytest
import torch

import sureid
from sureid.engine import Trainer, cosine_with_warmup, evaluate_model, load_checkpoint
from sureid.models import ReIDModel


def tiny_hts(keep_ratio=0.7, dim=32, prune=True):
    vit = sureid.VisionTransformer(
        img_size=(32, 16), patch_size=8, embed_dim=dim, depth=4, num_heads=2
    )
    return sureid.HTSViT(vit, keep_ratio=keep_ratio, prune_layers=(1, 3), prune=prune)


def make_batches(n=3, b=8, num_classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_classes).repeat_interleave(b // num_classes)
    camids = torch.zeros(b, dtype=torch.long)
    return [(torch.randn(b, 3, 32, 16, generator=g), labels, camids) for _ in range(n)]


def build(use_kd=True, reweight=True, seed=0, **trainer_kwargs):
    torch.manual_seed(seed)
    model = ReIDModel(tiny_hts(), num_classes=4, reweight=reweight)
    # the recommended teacher: its BN feature and the classifier trained on it (docs/objectives)
    teacher_net = ReIDModel(tiny_hts(dim=48, prune=False), num_classes=4, eval_feature="after")
    teacher = sureid.FrozenTeacher(teacher_net, teacher_net.classifier_weight.detach())
    objective = sureid.SUReIDLoss(
        kd=sureid.NPKDLoss() if use_kd else None,
        ratio=sureid.RatioLoss(model.backbone.keep_ratios),
    )
    opt = torch.optim.SGD([*model.parameters(), *objective.parameters()], lr=0.01, momentum=0.9)
    sched = cosine_with_warmup(opt, total_steps=6, warmup_steps=1)
    return Trainer(
        model, objective, opt, scheduler=sched, teacher=teacher if use_kd else None,
        **{"log": lambda s: None, **trainer_kwargs},
    )


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=1e-6, msg=k)


def test_train_step_updates_student_not_teacher():
    trainer = build()
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    t_before = {k: v.clone() for k, v in trainer.teacher.state_dict().items()}
    images, labels, _ = make_batches(1)[0]
    terms = trainer.train_step(images, labels)
    assert {"total", "cls", "tri", "kd", "ratio", "aux_cls"} <= set(terms)
    assert all(torch.isfinite(torch.tensor(v)) for v in terms.values())
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("backbone.decision") for k in changed)
    assert any(k.startswith("backbone.backbone.blocks") for k in changed)
    for k, v in trainer.teacher.state_dict().items():
        assert torch.equal(v, t_before[k]), k


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    batches = make_batches()
    straight = build()
    straight.fit(batches, epochs=2, progress=False)

    ckpt = tmp_path / "last.pt"
    first = build()
    first.fit(batches, epochs=1, checkpoint_path=ckpt, progress=False)
    torch.manual_seed(123)  # a resumed process starts from another RNG state
    resumed = build()
    resumed.fit(batches, epochs=2, checkpoint_path=ckpt, progress=False)

    assert resumed.state.epoch == 2 and resumed.state.step == straight.state.step == 6
    assert_same_weights(straight.model, resumed.model)
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 2 and len(state["history"]) == 2


def test_eval_fn_and_evaluate_model():
    trainer = build(use_kd=False, reweight=False)
    batches = make_batches(2)
    query = [(b[0][:4], b[1][:4], torch.zeros(4, dtype=torch.long)) for b in batches]
    gallery = [(b[0], b[1], torch.ones(8, dtype=torch.long)) for b in batches]

    def eval_fn(model):
        r = evaluate_model(model, query, gallery, max_rank=5)
        return {"rank1": r.rank1, "mAP": r.mAP}

    state = trainer.fit(batches, epochs=1, eval_fn=eval_fn, progress=False)
    # the recorded numbers are evaluate_model's own (fractions in [0, 1]), not a rescaled copy
    trainer.module.eval()
    ref = evaluate_model(trainer.module, query, gallery, max_rank=5)
    trainer.module.train()
    assert 0 < ref.mAP <= 1 and 0 < ref.rank1 <= 1
    assert state.history[-1]["mAP"] == pytest.approx(ref.mAP, abs=1e-12)
    assert state.history[-1]["rank1"] == pytest.approx(ref.rank1, abs=1e-12)
    assert state.best_score == state.history[-1]["mAP"]
    assert trainer.model.training  # evaluation restored the mode


SETTINGS = {"keep_ratio": 0.7, "data": "/data/market", "flags": {"kd": True, "ratio": True}}


def test_checkpoints_carry_settings_and_same_settings_resume(tmp_path):
    batches = make_batches()
    straight = build()
    straight.fit(batches, epochs=2, progress=False)

    ckpt = tmp_path / "last.pt"
    build().fit(batches, epochs=1, checkpoint_path=ckpt, progress=False, settings=SETTINGS)
    assert load_checkpoint(ckpt)["settings"] == SETTINGS
    torch.manual_seed(123)
    resumed = build()
    lines = []
    resumed.log = lines.append
    same = {**SETTINGS, "flags": {"ratio": True, "kd": True}}  # key order is not a setting
    resumed.fit(batches, epochs=2, checkpoint_path=ckpt, progress=False, settings=same)
    assert any("resumed" in line for line in lines)
    assert_same_weights(straight.model, resumed.model)
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 2 and state["settings"] == SETTINGS

    # a finished checkpoint with the same settings returns its state without training
    done = build()
    before = {k: v.clone() for k, v in done.model.state_dict().items()}
    out = done.fit(batches, epochs=2, checkpoint_path=ckpt, progress=False, settings=SETTINGS)
    assert out.epoch == 2 and out.step == 6 and out.settings == SETTINGS
    assert any(not torch.equal(v, before[k]) for k, v in done.model.state_dict().items())


@pytest.mark.parametrize(
    "change, named",
    [
        ({"keep_ratio": 0.5}, "keep_ratio: checkpoint 0.7, now 0.5"),
        ({"data": "data/market"}, "data: checkpoint '/data/market', now 'data/market'"),
        ({"flags": {"kd": False, "ratio": True}}, "flags.kd: checkpoint True, now False"),
        ({"pretrained": True}, "pretrained: checkpoint <missing>, now True"),
    ],
)
def test_resume_with_other_settings_is_refused(tmp_path, change, named):
    """Issue 16: a checkpoint of another keep ratio "resumed" at its last epoch and returned."""
    batches = make_batches(1)
    ckpt = tmp_path / "last.pt"
    build().fit(batches, epochs=1, checkpoint_path=ckpt, progress=False, settings=SETTINGS)
    written = ckpt.read_bytes()
    other = build(seed=1)
    before = {k: v.clone() for k, v in other.model.state_dict().items()}
    with pytest.raises(ValueError, match="trained with other settings") as info:
        other.fit(batches, epochs=1, checkpoint_path=ckpt, progress=False,
                  settings={**SETTINGS, **change})
    assert named in str(info.value) and "last.pt" in str(info.value)
    assert ckpt.read_bytes() == written  # nothing was overwritten
    assert other.state.epoch == 0  # and nothing was loaded
    for k, v in other.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    # resume=False trains from scratch under the new settings
    other.fit(batches, epochs=1, checkpoint_path=ckpt, progress=False, resume=False,
              settings={**SETTINGS, **change})
    assert load_checkpoint(ckpt)["settings"] == {**SETTINGS, **change}


def test_checkpoint_without_settings_is_refused_when_settings_are_given(tmp_path):
    batches = make_batches(1)
    ckpt = tmp_path / "last.pt"
    build().fit(batches, epochs=1, checkpoint_path=ckpt, progress=False)  # no settings
    assert load_checkpoint(ckpt)["settings"] is None
    with pytest.raises(ValueError, match=r"last.pt' stores no settings.*keep_ratio"):
        build().fit(batches, epochs=2, checkpoint_path=ckpt, progress=False, settings=SETTINGS)
    # without settings nothing is checked, as before
    assert build().fit(batches, epochs=2, checkpoint_path=ckpt, progress=False).epoch == 2


def test_settings_must_be_json_values(tmp_path):
    with pytest.raises(TypeError, match=r"settings\['data'\] must be a JSON value"):
        build().fit(make_batches(1), epochs=1, progress=False, settings={"data": tmp_path})


def test_eval_fn_returning_nan_raises():
    """Issue 16: an eval_fn returning NaN was ignored."""
    trainer = build(use_kd=False, reweight=False)
    with pytest.raises(FloatingPointError, match=r"eval_fn returned 'mAP' = nan at epoch 1"):
        trainer.fit(make_batches(1), epochs=1, eval_fn=lambda m: {"mAP": float("nan")},
                    progress=False)
    with pytest.raises(FloatingPointError, match=r"'rank1' = inf"):
        build(use_kd=False).fit(make_batches(1), epochs=1, progress=False,
                                eval_fn=lambda m: {"mAP": 0.5, "rank1": float("inf")})
    with pytest.raises(TypeError, match=r"eval_fn returned 'mAP' = 'high'.*expected a number"):
        build(use_kd=False).fit(make_batches(1), epochs=1, progress=False,
                                eval_fn=lambda m: {"mAP": "high"})
    with pytest.raises(TypeError, match="eval_fn must return a mapping"):
        build(use_kd=False).fit(make_batches(1), epochs=1, progress=False, eval_fn=lambda m: 0.5)


def test_empty_loader_raises_instead_of_recording_an_empty_epoch(tmp_path):
    """Issue 16: an empty loader recorded an empty epoch silently."""
    trainer = build(use_kd=False)
    with pytest.raises(ValueError, match="loader yielded no batch in epoch 1"):
        trainer.fit([], epochs=1, checkpoint_path=tmp_path / "last.pt", progress=False)
    assert trainer.state.history == [] and not (tmp_path / "last.pt").exists()


def test_dual_view_items_with_the_default_collate_hint_at_dual_collate():
    """Issue 16: DualViewDataset + default collate gave a shape error with no hint."""
    items = [(torch.randn(3, 32, 16), i % 4, 0) for i in range(8)]
    dual = sureid.DualViewDataset(items, first=lambda x: x, second=lambda x: x + 1)
    loader = torch.utils.data.DataLoader(dual, batch_size=8)
    with pytest.raises(TypeError, match="collate_fn=sureid.dual_collate"):
        build(use_kd=False).fit(loader, epochs=1, progress=False)
    good = torch.utils.data.DataLoader(dual, batch_size=8, collate_fn=sureid.dual_collate)
    assert build(use_kd=False).fit(good, epochs=1, progress=False).step == 1


def test_bad_arguments():
    trainer = build(use_kd=False)
    with pytest.raises(ValueError, match="teacher is None"):
        Trainer(trainer.model, sureid.SUReIDLoss(), trainer.optimizer)
    with pytest.raises(TypeError, match="objective must be"):
        Trainer(trainer.model, torch.nn.MSELoss(), trainer.optimizer)
    with pytest.raises(ValueError, match="epochs"):
        trainer.fit([], epochs=0)
    with pytest.raises(TypeError, match="DualBatch"):
        trainer.fit([torch.zeros(2)], epochs=1, progress=False)
    with pytest.raises(TypeError, match=r"pids of shape \(8, 2\)"):
        trainer.fit([(torch.zeros(8, 3, 32, 16), torch.zeros(8, 2))], epochs=1, progress=False)
    with pytest.raises(ValueError, match="eval_every"):
        trainer.fit([], epochs=1, eval_every=-1)
    with pytest.raises(TypeError, match="epochs must be an int, got float 1.5"):
        trainer.fit([], epochs=1.5)
    with pytest.raises(TypeError, match="eval_every must be an int, got str '2'"):
        trainer.fit([], epochs=1, eval_every="2")
    with pytest.raises(ValueError, match="num_classes"):
        ReIDModel(tiny_hts(), num_classes=1)


def test_non_finite_loss_stops_training_before_the_step(tmp_path):
    trainer = build(use_kd=False)
    with torch.no_grad():
        trainer.module.neck.classifier.weight[0, 0] = float("nan")
    before = {k: v.clone() for k, v in trainer.model.named_parameters()}
    with pytest.raises(FloatingPointError, match="non-finite loss at step 0"):
        trainer.fit(make_batches(1), epochs=1, checkpoint_path=tmp_path / "last.pt",
                    progress=False)
    assert trainer.state.step == 0 and not (tmp_path / "last.pt").exists()
    for k, v in trainer.model.named_parameters():  # no optimizer step was taken
        torch.testing.assert_close(v, before[k], rtol=0, atol=0, equal_nan=True, msg=k)


# ---------------------------------------------------------------- keep fractions, mixed precision


def test_keep_fractions_are_logged_beside_their_targets():
    lines = []
    trainer = build(log=lines.append)
    images, labels, _ = make_batches(1)[0]
    terms = trainer.train_step(images, labels)
    assert {"keep1", "keep2"} <= set(terms) and "keep3" not in terms  # two stages
    assert all(0.0 <= terms[k] <= 1.0 for k in ("keep1", "keep2"))
    assert terms["keep2"] <= terms["keep1"]  # cumulative masks
    trainer.fit(make_batches(2), epochs=1, progress=False)
    targets = trainer.module.backbone.keep_ratios
    assert f"(target {targets[0]:.4g})" in lines[-1] and f"(target {targets[1]:.4g})" in lines[-1]
    assert "keep1" in trainer.state.history[-1]
    # HTS off: no keep fractions
    off = build(use_kd=False)
    off.module.backbone.prune = False
    off.objective.ratio = None  # a term is on while the objective holds its loss
    assert not {"keep1", "keep2"} & set(off.train_step(images, labels))


def _grads(trainer):
    return torch.cat([p.grad.flatten() for p in trainer.model.parameters() if p.grad is not None])


def test_bf16_step_is_finite_and_its_gradients_match_float32():
    images, labels, _ = make_batches(1)[0]
    ref = build(grad_clip=None)
    torch.manual_seed(1)
    ref_terms = ref.train_step(images, labels)
    low = build(amp="bf16")
    assert low.amp_dtype == torch.bfloat16 and low.scaler is None
    torch.manual_seed(1)  # the same Gumbel noise
    terms = low.train_step(images, labels)
    assert all(torch.isfinite(torch.tensor(v)) for v in terms.values())
    g_ref, g_low = _grads(ref), _grads(low)
    assert g_low.dtype == torch.float32 and torch.isfinite(g_low).all()
    assert torch.nn.functional.cosine_similarity(g_ref, g_low, dim=0) > 0.99
    assert terms["total"] == pytest.approx(ref_terms["total"], rel=0.05)


def test_fp16_step_uses_a_grad_scaler_that_is_checkpointed(tmp_path):
    trainer = build(amp="fp16")
    assert isinstance(trainer.scaler, torch.amp.GradScaler)
    state = trainer.fit(make_batches(3), epochs=1, checkpoint_path=tmp_path / "last.pt",
                        progress=False)
    assert all(torch.isfinite(torch.tensor(v)) for v in state.history[-1].values())
    saved = load_checkpoint(tmp_path / "last.pt")
    assert saved["scaler"]["scale"] == trainer.scaler.get_scale()
    resumed = build(amp="fp16")
    resumed.fit(make_batches(3), epochs=1, checkpoint_path=tmp_path / "last.pt", progress=False)
    assert resumed.scaler.get_scale() == trainer.scaler.get_scale()


def test_bad_amp_is_refused():
    with pytest.raises(ValueError, match="amp must be None, 'bf16' or 'fp16'"):
        build(amp="float16")
    with pytest.raises(TypeError, match="amp must be None, 'bf16' or 'fp16', got bool True"):
        build(amp=True)


def test_fit_writes_the_final_model_in_the_self_describing_format(tmp_path):
    batches = make_batches()
    trainer = build(use_kd=False)
    trainer.fit(batches, epochs=2, progress=False, model_path=tmp_path / "final.pt")
    loaded = sureid.load(tmp_path / "final.pt")
    assert loaded.metadata["epochs"] == 2 and loaded.metadata["step"] == 6
    x = batches[0][0]
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x), trainer.module.eval()(x))
    with pytest.raises(TypeError, match="model_path needs a model with a save"):
        bare = Trainer(torch.nn.Module(), sureid.SUReIDLoss(kd=None, ratio=None),
                       torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))
        bare.fit([], epochs=1, model_path=tmp_path / "x.pt")


@pytest.mark.parametrize("direct, match", [
    (False, r"blocks\.1\.mlp\.act"),  # swapped after construction: not rebuildable
    (True, "create_timm_model"),  # timm.create_model keeps no record of its arguments
])
def test_a_model_save_cannot_describe_is_refused_before_training(tmp_path, direct, match):
    timm = pytest.importorskip("timm")
    create = timm.create_model if direct else sureid.models.create_timm_model
    vit = create("deit_tiny_patch16_224", pretrained=False, img_size=(64, 32), patch_size=8,
                 depth=2, num_classes=0)
    if not direct:
        vit.blocks[1].mlp.act = torch.nn.ReLU()
    model = ReIDModel(sureid.HTSViT.from_timm(vit, keep_ratio=0.7, prune_layers=(1,)), 4)
    trainer = Trainer(model, sureid.SUReIDLoss(kd=None),
                      torch.optim.SGD(model.parameters(), lr=0.1))

    def no_batches():
        raise AssertionError("training started")
        yield

    with pytest.raises(ValueError, match=match):
        trainer.fit(no_batches(), epochs=1, progress=False, model_path=tmp_path / "m.pt")
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- issue 26
class CountingBatches(list):
    """Batches that count how often training started an epoch."""

    epochs = 0

    def __iter__(self):
        type(self).epochs += 1
        return super().__iter__()


@pytest.mark.parametrize("which", ["model_path", "checkpoint_path"])
@pytest.mark.parametrize("target", ["folder", "below_a_file", "same_file"])
def test_output_paths_are_checked_before_training(tmp_path, which, target):
    (tmp_path / "f").write_text("x")
    paths = {"model_path": tmp_path / "m.pt", "checkpoint_path": tmp_path / "c.pt"}
    if target == "folder":
        (tmp_path / "d").mkdir()
        paths[which] = tmp_path / "d"
    elif target == "below_a_file":
        paths[which] = tmp_path / "f" / "x.pt"
    else:
        paths = {"model_path": tmp_path / "same.pt", "checkpoint_path": tmp_path / "same.pt"}
    batches = CountingBatches(make_batches(1))
    CountingBatches.epochs = 0
    with pytest.raises(ValueError, match="model_path|checkpoint_path"):
        build(use_kd=False).fit(batches, epochs=2, progress=False, **paths)
    assert CountingBatches.epochs == 0  # it trained every epoch and failed at the save
    assert {p.name for p in tmp_path.iterdir()} <= {"d", "f"}  # nothing written


@pytest.mark.parametrize("new_opt", [
    lambda p: torch.optim.Adam(p, lr=1e-3),
    lambda p: torch.optim.AdamW(p, lr=1e-3),
    lambda p: torch.optim.RMSprop(p, lr=1e-3),
])
def test_resuming_with_another_optimizer_class_is_named(tmp_path, new_opt):
    batches = make_batches(1)
    ckpt = tmp_path / "last.pt"
    build(use_kd=False).fit(batches, epochs=1, checkpoint_path=ckpt, progress=False)
    trainer = build(use_kd=False)
    before = {k: v.clone() for k, v in trainer.module.state_dict().items()}
    trainer.optimizer = new_opt([*trainer.module.parameters(), *trainer.objective.parameters()])
    with pytest.raises(ValueError, match=r"last.pt' was trained with the optimizer "
                                         r"torch.optim.sgd.SGD"):
        trainer.fit(batches, epochs=2, checkpoint_path=ckpt, progress=False)
    for k, v in trainer.module.state_dict().items():  # refused before anything was loaded
        assert torch.equal(v, before[k]), k
    # a checkpoint of an older sureid (no optimizer_class): the missing betas are named
    state = load_checkpoint(ckpt)
    del state["optimizer_class"]
    from sureid.engine import save_checkpoint

    save_checkpoint(state, ckpt)
    with pytest.raises(ValueError, match=r"lacks \[.*'(betas|alpha)'.*another optimizer class"):
        trainer.fit(batches, epochs=2, checkpoint_path=ckpt, progress=False)


def test_resuming_with_other_parameter_groups_is_named(tmp_path):
    batches = make_batches(1)
    ckpt = tmp_path / "last.pt"
    build(use_kd=False).fit(batches, epochs=1, checkpoint_path=ckpt, progress=False)
    trainer = build(use_kd=False)
    trainer.optimizer = torch.optim.SGD(list(trainer.module.parameters())[:5], lr=0.01,
                                        momentum=0.9)
    with pytest.raises(ValueError, match=r"parameter groups of sizes \[\d+\], this optimizer "
                                         r"\[5\]"):
        trainer.fit(batches, epochs=2, checkpoint_path=ckpt, progress=False)


@pytest.mark.parametrize("first", [SETTINGS, {"keep_ratio": 0.5}])
def test_resume_without_settings_drops_the_old_record(tmp_path, first):
    batches = make_batches(1)
    ckpt = tmp_path / "last.pt"
    build().fit(batches, epochs=1, checkpoint_path=ckpt, progress=False, settings=first)
    lines = []
    trainer = build(log=lines.append)
    state = trainer.fit(batches, epochs=2, checkpoint_path=ckpt, progress=False)
    # it trained with settings nobody recorded: the file must not claim the old ones
    assert state.settings is None and load_checkpoint(ckpt)["settings"] is None
    assert any("store no settings" in line for line in lines)


@pytest.mark.parametrize("grad_clip, err", [(True, TypeError), ("no", TypeError),
                                             ([1.0], TypeError)])
def test_grad_clip_must_be_a_positive_number(grad_clip, err):
    with pytest.raises(err, match="grad_clip"):
        build(use_kd=False, grad_clip=grad_clip)
