"""The one file-name label parser, ``sureid.data.labels`` (the readers and the CLI use it)."""

import pytest

from sureid.data.labels import FileLabels, leading_camid, path_labels


@pytest.mark.parametrize("path,labels", [
    ("x/0002_c1s1_000451_03.jpg", FileLabels(2, 0, "c1")),  # Market: cameras from 1
    ("x/0001_c8_f0046182.jpg", FileLabels(1, 7, "c8")),  # Duke
    ("x/-1_c3s2_000001_00.jpg", FileLabels(-1, 2, "c3")),  # Market junk
    ("x/0007/3_a.jpg", FileLabels(7, 3, "3")),  # <pid>/<camid>_: cameras as written
    ("x/0007/0_a.jpg", FileLabels(7, 0, "0")),
])
def test_path_labels(path, labels):
    assert path_labels(path) == labels


@pytest.mark.parametrize("path", ["x/foo.jpg", "x/person_1/3_a.jpg", "x/7/a.jpg",
                                  "x/7/front_a.jpg", "x/7/3a.jpg", "x/7/\u0663_a.jpg"])
def test_path_labels_none_when_no_scheme_fits(path):
    assert path_labels(path) is None


def test_labels_beyond_int64_are_named():
    with pytest.raises(ValueError, match=r"'x/7/99999999999999999999_a.jpg': the camid"):
        path_labels("x/7/99999999999999999999_a.jpg")
    with pytest.raises(ValueError, match=r"the pid"):
        path_labels("x/99999999999999999999/1_a.jpg")
    # a camid that does not fit is not read where the folder is no pid
    assert path_labels("x/named/99999999999999999999_a.jpg") is None


def test_leading_camid():
    assert leading_camid("3_0001", "w") == 3 and leading_camid("-1_x", "w") == -1
    assert leading_camid("3", "w") is None and leading_camid("c3_x", "w") is None
    with pytest.raises(ValueError, match=r"^w: the camid before '_' must be in"):
        leading_camid("99999999999999999999_x", "w", "the camid before '_'")
