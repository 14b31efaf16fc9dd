import pytest
import torch
from PIL import Image


def solid_occluder(h: int, w: int, value=(255, 255, 255), alpha=None) -> Image.Image:
    """An opaque (or alpha-given) solid-colour RGBA occluder of size h x w."""
    t = torch.empty(4, h, w, dtype=torch.uint8)
    t[:3] = torch.tensor(value, dtype=torch.uint8).view(3, 1, 1)
    t[3] = 255 if alpha is None else alpha
    return Image.fromarray(t.permute(1, 2, 0).contiguous().numpy())


@pytest.fixture
def tall_and_wide():
    """A vertical (aspect 6) and a horizontal (aspect 1/6) opaque white occluder."""
    return [solid_occluder(120, 20), solid_occluder(20, 120)]


@pytest.fixture
def person_tensor():
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (3, 64, 32), dtype=torch.uint8, generator=g)
