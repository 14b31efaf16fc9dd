import numpy as np
import pytest
import torch

from sureid.metrics import pairwise_distance


def test_numpy_input_gives_the_tensor_result():
    q, g = torch.randn(3, 5), torch.randn(7, 5)
    for metric in ("euclidean", "cosine"):
        got = pairwise_distance(q.numpy(), g.numpy(), metric)
        assert isinstance(got, torch.Tensor)
        assert torch.equal(got, pairwise_distance(q, g, metric))


@pytest.mark.parametrize(
    "query, gallery, error, message",
    [
        ([[1.0, 2.0]], torch.randn(4, 2), TypeError,
         r"^query must be a torch.Tensor or numpy array, got list"),
        (torch.randn(3, 2), "gallery", TypeError,
         r"^gallery must be a torch.Tensor or numpy array, got str"),
        (torch.randn(3), torch.randn(4, 3), ValueError,
         r"^query must be 2-D \(num, dim\), got shape \(3,\)"),
        (torch.randn(3, 2), torch.randn(2, 4, 2), ValueError,
         r"^gallery must be 2-D \(num, dim\), got shape \(2, 4, 2\)"),
        (torch.randn(3, 2), torch.ones(4, 2, dtype=torch.int64), TypeError,
         r"^gallery must be floating point, got dtype torch.int64"),
        (np.ones((3, 2), dtype=np.int32), torch.randn(4, 2), TypeError,
         r"^query must be floating point, got dtype torch.int32"),
        (torch.randn(3, 2), torch.randn(4, 5), ValueError,
         r"^query and gallery differ in feature dim: 2 vs 5"),
        (torch.randn(0, 2), torch.randn(4, 2), ValueError,
         r"^the query set is empty: query has shape \(0, 2\)"),
        (torch.randn(3, 2), torch.randn(0, 2), ValueError,
         r"^the gallery is empty: gallery has shape \(0, 2\)"),
    ],
)
def test_bad_input_names_the_argument(query, gallery, error, message):
    with pytest.raises(error, match=message):
        pairwise_distance(query, gallery)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input_names_the_argument(metric, value):
    q, g = torch.randn(3, 4), torch.randn(6, 4)
    bad_q, bad_g = q.clone(), g.clone()
    bad_q[1, 2] = value
    bad_g[4, 0] = value
    with pytest.raises(ValueError, match=r"^query must be finite"):
        pairwise_distance(bad_q, g, metric)
    with pytest.raises(ValueError, match=r"^gallery must be finite"):
        pairwise_distance(q, bad_g, metric)
    with pytest.raises(ValueError, match=r"^gallery must be finite"):
        pairwise_distance(q.numpy(), bad_g.numpy(), metric)
