import numpy as np
import pytest
import torch
from PIL import Image

from sureid.viz_rank import FALSE_COLOUR, QUERY_COLOUR, TRUE_COLOUR, render_ranked_list


def _imgs(n):
    return [torch.full((3, 64, 32), 40 * i, dtype=torch.uint8) for i in range(n)]


def test_frames_and_file(tmp_path):
    q, *g = _imgs(4)
    pic = render_ranked_list(q, g, matches=[True, False, None], distances=[0.1, 0.2, 0.3],
                             size=(64, 32), scale=1, title="pid 1", path=tmp_path / "a" / "q.png")
    assert (tmp_path / "a" / "q.png").is_file()
    arr = np.asarray(pic)
    colours = {tuple(c) for c in arr.reshape(-1, 3)}
    assert {QUERY_COLOUR, TRUE_COLOUR, FALSE_COLOUR} <= colours
    with Image.open(tmp_path / "a" / "q.png") as saved:
        assert saved.size == pic.size


def test_kept_overlay_adds_a_row():
    q, *g = _imgs(3)
    plain = render_ranked_list(q, g, size=(64, 32), scale=1)
    kept = [torch.tensor([0, 5, 9])] * 3
    over = render_ranked_list(q, g, kept=kept, patch_size=(8, 8), size=(64, 32), scale=1)
    assert over.width == plain.width and over.height > plain.height


def test_paths_and_resize(tmp_path):
    p = tmp_path / "x.png"
    Image.new("RGB", (50, 100), (255, 0, 0)).save(p)
    pic = render_ranked_list(p, [p, p], size=(64, 32), scale=2)
    assert pic.width % 2 == 0


def test_errors():
    q, *g = _imgs(3)
    with pytest.raises(ValueError, match="matches has 1 entries"):
        render_ranked_list(q, g, matches=[True])
    with pytest.raises(ValueError, match="patch_size is required"):
        render_ranked_list(q, g, kept=[torch.tensor([0])] * 3)
    with pytest.raises(ValueError, match="1 \\+ 2 index tensors"):
        render_ranked_list(q, g, kept=[torch.tensor([0])], patch_size=(8, 8))
    with pytest.raises(TypeError, match="uint8"):
        render_ranked_list(torch.zeros(3, 4, 4), g)


# ----------------------------------------------------------------------------- issue 26
@pytest.mark.parametrize("scale, err", [
    (0, ValueError), (-2, ValueError), (True, TypeError), (1.5, TypeError), ("2", TypeError),
])
def test_scale_must_be_a_positive_int(scale, err):
    # scale=0 gave an unscaled picture, 1.5 a picture of another size
    with pytest.raises(err, match="scale must"):
        render_ranked_list(_imgs(1)[0], _imgs(2), scale=scale)


@pytest.mark.parametrize("size", [(0, 32), (64, True), (64.0, 32)])
def test_size_must_be_positive_ints(size):
    with pytest.raises((TypeError, ValueError), match="size must"):
        render_ranked_list(_imgs(1)[0], _imgs(2), size=size)


def test_the_picture_never_replaces_an_input_image(tmp_path):
    paths = []
    for i, img in enumerate(_imgs(3)):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(paths[-1])
    before = [p.read_bytes() for p in paths]
    for target in (paths[0], paths[2]):
        with pytest.raises(ValueError, match="is the input"):
            render_ranked_list(paths[0], paths[1:], path=target)
    with pytest.raises(ValueError, match="must be a file path, got the existing folder"):
        render_ranked_list(paths[0], paths[1:], path=tmp_path)
    assert [p.read_bytes() for p in paths] == before


@pytest.mark.parametrize("distances", [["a"], [None], [True]])
def test_distances_must_be_numbers(distances):
    # a string was a bare "Unknown format code 'f'" from the label drawing
    with pytest.raises(TypeError, match="distances must be real numbers"):
        render_ranked_list(_imgs(1)[0], _imgs(1), distances=distances)
