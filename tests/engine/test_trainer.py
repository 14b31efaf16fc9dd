import pytest
import torch

import sureid
from sureid.engine import ReIDModel, Trainer, cosine_with_warmup, evaluate_model, load_checkpoint


def tiny_hts(keep_ratio=0.7, dim=32, prune=True):
    vit = sureid.VisionTransformer(img_size=(32, 16), patch_size=8, embed_dim=dim, depth=4, num_heads=2)
    return sureid.HTSViT(vit, keep_ratio=keep_ratio, prune_layers=(1, 3), prune=prune)


def make_batches(n=3, b=8, num_classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_classes).repeat_interleave(b // num_classes)
    return [(torch.randn(b, 3, 32, 16, generator=g), labels, torch.zeros(b, dtype=torch.long)) for _ in range(n)]


def build(use_kd=True, reweight=True, seed=0):
    torch.manual_seed(seed)
    model = ReIDModel(tiny_hts(), num_classes=4, reweight=reweight)
    teacher_net = ReIDModel(tiny_hts(dim=48, prune=False), num_classes=4)
    teacher = sureid.FrozenTeacher(teacher_net.backbone, teacher_net.classifier_weight.detach())
    objective = sureid.SUReIDLoss(
        kd=sureid.NPKDLoss(), ratio=sureid.RatioLoss(model.backbone.keep_ratios), use_kd=use_kd,
    )
    opt = torch.optim.SGD([*model.parameters(), *objective.parameters()], lr=0.01, momentum=0.9)
    sched = cosine_with_warmup(opt, total_steps=6, warmup_steps=1)
    return Trainer(model, objective, opt, scheduler=sched, teacher=teacher if use_kd else None, log=lambda s: None)


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
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=k)
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
    assert 0 <= state.history[-1]["mAP"] <= 100 and state.best_score == state.history[-1]["mAP"]
    assert trainer.model.training  # evaluation restored the mode


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
    with pytest.raises(ValueError, match="num_classes"):
        ReIDModel(tiny_hts(), num_classes=1)
