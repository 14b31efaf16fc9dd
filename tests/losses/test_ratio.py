"""RatioLoss against Eq. 9 written out with loops."""

import pytest
import torch

from sureid import RatioLoss


def eq9(masks, ratios):
    b = masks[0].shape[0]
    total = 0.0
    for bi in range(b):
        for j, p in enumerate(ratios):
            kept = sum(float(v) for v in masks[j][bi]) / masks[j].shape[1]
            total += (p - kept) ** 2
    return total / b


@pytest.mark.parametrize("ratios", [[0.7], [0.7, 0.49, 0.343], [0.5, 0.25, 0.125, 0.0625]])
@pytest.mark.parametrize("at_call", [False, True])
def test_matches_equation_9(ratios, at_call):
    masks = [(torch.rand(5, 37) > 0.4).float() for _ in ratios]
    loss = RatioLoss()(masks, ratios) if at_call else RatioLoss(ratios)(masks)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(eq9(masks, ratios), rel=1e-6)


def test_zero_at_target_and_gradient_to_masks():
    masks = [torch.tensor([[1.0, 1.0, 0.0, 0.0]], requires_grad=True)]
    loss = RatioLoss([0.5])(masks)
    assert loss.item() == 0.0
    soft = torch.full((2, 4), 0.9, requires_grad=True)
    RatioLoss([0.5])([soft]).backward()
    # d/dm (0.5 - mean m)^2 / B = -2 (0.5 - 0.9) / N / B
    torch.testing.assert_close(soft.grad, torch.full((2, 4), 2 * 0.4 / 4 / 2))


def test_bool_masks_and_call_ratios_override():
    masks = [torch.tensor([[True, False, False, False]])]
    assert RatioLoss([1.0])(masks, [0.25]).item() == 0.0
    assert RatioLoss([1.0])(masks).item() == pytest.approx(0.75**2)


@pytest.mark.parametrize(
    ("ratios", "masks", "err", "match"),
    [
        ([0.7, 0.5], [torch.ones(2, 4)], ValueError, "one keep mask per target ratio"),
        ([1.5], [torch.ones(2, 4)], ValueError, r"in \[0, 1\]"),
        ([True], [torch.ones(2, 4)], TypeError, r"target_ratios\[0\] must be a real number"),
        ([0.5, float("nan")], [torch.ones(2, 4)] * 2, ValueError, r"target_ratios\[1\] must"),
        ([], [], ValueError, "at least one"),
        ("0.7", [torch.ones(2, 4)], TypeError, "sequence"),
        ([0.7], torch.ones(2, 4), TypeError, "sequence of"),
        ([0.7], [torch.ones(2, 4, 1)], ValueError, r"\(B, N\)"),
        ([0.7, 0.5], [torch.ones(2, 4), torch.ones(3, 4)], ValueError, "common B"),
        ([0.7], [torch.ones(2, 0)], ValueError, "non-empty"),  # mean over nothing: NaN
        ([0.7], [torch.ones(0, 4)], ValueError, "non-empty"),
    ],
)
def test_bad_input(ratios, masks, err, match):
    with pytest.raises(err, match=match):
        RatioLoss(ratios)(masks)


def test_missing_ratios():
    with pytest.raises(ValueError, match="target_ratios must be given"):
        RatioLoss()([torch.ones(2, 4)])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_masks_give_the_float32_loss(dtype):
    masks = [(torch.rand(4, 130) > p).float() for p in (0.3, 0.5, 0.7)]
    ref = RatioLoss([0.7, 0.49, 0.343])(masks)
    with torch.autocast("cpu", dtype=dtype):
        low = RatioLoss([0.7, 0.49, 0.343])([m.to(dtype) for m in masks])
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, ref)
