import itertools
import math

import pytest
import torch

from sureid.losses.reid import (
    CrossEntropyLabelSmooth,
    TripletLoss,
    batch_hard_triplet_loss,
    label_smoothing_cross_entropy,
    pairwise_distance,
)

# ----------------------------------------------------------------------------- label smoothing


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5])
def test_label_smoothing_against_hand_built_target(eps):
    b, k = 6, 5
    logits = torch.randn(b, k, dtype=torch.float64)
    labels = torch.tensor([0, 4, 2, 2, 1, 3])
    expected = 0.0
    for i in range(b):
        log_p = torch.log_softmax(logits[i], 0).tolist()
        target = [eps / k + (1 - eps if j == int(labels[i]) else 0.0) for j in range(k)]
        expected += -sum(q * lp for q, lp in zip(target, log_p, strict=True))
    expected /= b
    assert CrossEntropyLabelSmooth(k, eps)(logits, labels).item() == pytest.approx(expected)


def test_label_smoothing_zero_eps_is_cross_entropy():
    logits, labels = torch.randn(4, 7), torch.tensor([1, 6, 0, 3])
    torch.testing.assert_close(
        label_smoothing_cross_entropy(logits, labels, 0.0),
        torch.nn.functional.cross_entropy(logits, labels),
    )


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_label_smoothing_is_torch_cross_entropy_with_label_smoothing(eps):
    logits = torch.randn(8, 11, requires_grad=True)
    labels = torch.randint(0, 11, (8,))
    ours = CrossEntropyLabelSmooth(11, eps)(logits, labels)
    theirs = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=eps)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(label_smoothing_cross_entropy(logits, labels, eps), theirs)
    (g_ours,) = torch.autograd.grad(ours, logits)
    (g_theirs,) = torch.autograd.grad(theirs, logits)
    torch.testing.assert_close(g_ours, g_theirs)


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_label_smoothing_explicit_formula(eps):
    # (1 - ε)·(-log p_y) + ε·mean_k(-log p_k), averaged over the batch
    logits = torch.randn(5, 7, dtype=torch.float64)
    labels = torch.tensor([6, 0, 3, 3, 1])
    nll = -torch.log_softmax(logits, dim=1)
    expected = ((1 - eps) * nll[torch.arange(5), labels] + eps * nll.mean(dim=1)).mean()
    torch.testing.assert_close(CrossEntropyLabelSmooth(7, eps)(logits, labels), expected)


@pytest.mark.parametrize(
    "logits_shape, labels, match",
    [
        ((4, 5), [0, 1, 2], r"labels must have shape \(4,\).*\(3,\)"),
        ((4, 5), [0, 1, 2, 5], r"labels must lie in \[0, 5\).*\[0, 5\]"),
        ((4, 5, 1), [0, 1, 2, 3], r"logits must be 2-D.*\(4, 5, 1\)"),
        ((4, 6), [0, 1, 2, 3], r"must have 5 classes.*\(4, 6\)"),
    ],
)
def test_cross_entropy_bad_input(logits_shape, labels, match):
    with pytest.raises(ValueError, match=match):
        CrossEntropyLabelSmooth(5)(torch.randn(logits_shape), torch.tensor(labels))


@pytest.mark.parametrize("kwargs", [{"epsilon": 1.0}, {"epsilon": -0.1}, {"num_classes": 0},
                                    {"epsilon": float("nan")}])
def test_cross_entropy_bad_constructor(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        CrossEntropyLabelSmooth(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_classes": 5.0}, "num_classes must be an int, got float 5.0"),
        ({"num_classes": True}, "num_classes must be an int, got bool True"),
        ({"epsilon": "0.1"}, "epsilon must be a real number, got str '0.1'"),
        ({"epsilon": False}, "epsilon must be a real number, got bool False"),
    ],
)
def test_cross_entropy_constructor_types(kwargs, match):
    with pytest.raises(TypeError, match=match):
        CrossEntropyLabelSmooth(**kwargs)


# ----------------------------------------------------------------------------- triplet


def _dist(a, b, metric):
    if metric == "euclidean":
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return 1.0 - dot / (na * nb)


def _brute_force(feats, labels, margin, metric):
    """Loop over every (a, p, n); per anchor the worst triplet; mean over anchors that have one."""
    f, y = feats.tolist(), labels.tolist()
    per_anchor = []
    for a in range(len(f)):
        worst = None
        for p, n in itertools.product(range(len(f)), repeat=2):
            if p == a or y[p] != y[a] or y[n] == y[a]:
                continue
            gap = _dist(f[a], f[p], metric) - _dist(f[a], f[n], metric)
            val = math.log1p(math.exp(gap)) if margin is None else max(0.0, gap + margin)
            worst = val if worst is None else max(worst, val)
        if worst is not None:
            per_anchor.append(worst)
    return sum(per_anchor) / len(per_anchor) if per_anchor else 0.0


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("margin", [0.3, 1.5, None])
@pytest.mark.parametrize(
    "labels",
    [
        [0, 0, 1, 1, 2, 2, 3, 3],
        [0, 0, 0, 1, 1, 2, 3, 3],  # identity 2 has no positive: excluded
        [5, 1, 5, 1, 5, 9],
    ],
)
def test_triplet_against_brute_force(metric, margin, labels):
    feats = torch.randn(len(labels), 5, dtype=torch.float64)
    labels = torch.tensor(labels)
    got = TripletLoss(margin, metric)(feats, labels)
    assert got.item() == pytest.approx(_brute_force(feats, labels, margin, metric), abs=1e-9)


@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [7, 7, 7, 7], [3]])
@pytest.mark.parametrize("margin", [0.3, None])
def test_no_valid_anchor_gives_zero_on_graph(labels, margin):
    feats = torch.randn(len(labels), 4, requires_grad=True)
    loss = TripletLoss(margin)(feats, torch.tensor(labels))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert feats.grad is not None and torch.isfinite(feats.grad).all()


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_identical_features_give_finite_gradient(metric):
    # zero distances everywhere: sqrt at 0 must not produce NaN gradients
    feats = torch.ones(4, 3, requires_grad=True)
    loss = TripletLoss(0.3, metric)(feats, torch.tensor([0, 0, 1, 1]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(feats.grad).all()


def test_pairwise_euclidean_matches_cdist():
    x = torch.randn(6, 4, dtype=torch.float64)
    d = pairwise_distance(x)
    torch.testing.assert_close(d - torch.diag(torch.diag(d)), torch.cdist(x, x))


def test_triplet_does_not_modify_input():
    feats = torch.randn(6, 3)
    before = feats.clone()
    batch_hard_triplet_loss(feats, torch.tensor([0, 0, 1, 1, 2, 2]))
    assert torch.equal(feats, before)


@pytest.mark.parametrize(
    "feat_shape, labels, match",
    [
        ((4, 3), [0, 0, 1], r"labels must have shape \(4,\).*\(3,\)"),
        ((4,), [0, 0, 1, 1], r"features must be 2-D.*\(4,\)"),
    ],
)
def test_triplet_bad_input(feat_shape, labels, match):
    with pytest.raises(ValueError, match=match):
        TripletLoss()(torch.randn(feat_shape), torch.tensor(labels))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"metric": "manhattan"}, "metric must be one of.*'manhattan'"),
        ({"margin": -1}, "margin"),
        # issue 16: a NaN margin gave NaN losses, an infinite one an infinite loss
        ({"margin": float("nan")}, "margin must be a finite float >= 0, got nan"),
        ({"margin": float("inf")}, "margin must be a finite float >= 0, got inf"),
    ],
)
def test_triplet_bad_constructor(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TripletLoss(**kwargs)


def test_triplet_functional_refuses_non_finite_margin():
    feats, labels = torch.randn(4, 3), torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError, match="margin must be a finite float >= 0, got nan"):
        batch_hard_triplet_loss(feats, labels, margin=float("nan"))


def test_empty_batch_is_refused_not_an_index_error():
    """Issue 16: TripletLoss on an empty batch raised IndexError (cross-entropy gave NaN).

    An empty batch is not "a batch without positive pairs" (that one gives a zero on the
    graph, see test_no_valid_anchor_gives_zero_on_graph): it has no sample at all.
    """
    empty = torch.zeros(0, dtype=torch.long)
    with pytest.raises(ValueError, match=r"features must hold at least one sample.*\(0, 8\)"):
        TripletLoss()(torch.randn(0, 8), empty)
    with pytest.raises(ValueError, match=r"logits must hold at least one sample.*\(0, 5\)"):
        CrossEntropyLabelSmooth(5)(torch.randn(0, 5), empty)
