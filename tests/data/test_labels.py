"""The one file-name label parser, ``sureid.data.labels`` (the readers and the CLI use it)."""

import pytest

from sureid.data.labels import FileLabels, is_integer, leading_camid, path_labels, pid_only_label


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


@pytest.mark.parametrize("relative,pid", [
    ("001_01.tif", 1), ("12.jpg", 12), ("007abc.jpg", 7),  # the leading digits of the name
    ("003/img_a.jpg", 3), ("003/001_02.jpg", 1),  # else the folder; the name comes first
    ("a/b/004/x.jpg", 4),  # the folder holding the file, at any depth
    # decimal digits of any script, as the reader always read them (int() takes them)
    ("\u0663_01.jpg", 3), ("\uff15/x.jpg", 5),
])
def test_pid_only_label(relative, pid):
    assert pid_only_label(relative) == pid


@pytest.mark.parametrize("relative", [
    "abc.jpg", "-1_01.jpg", "+3_01.jpg", " 7_01.jpg",  # no sign, no space
    "x.jpg",  # a file at the top has no pid folder
    "person/a.jpg", "-1/a.jpg", "+2/a.jpg", "1_000/a.jpg",
    # digit characters that are not decimal digits (isdigit() but not isdecimal()): the reader
    # refused them before too (int() raised on '\u00b2'), now with its own message
    "\u00b2/a.jpg", "1\u00b2/a.jpg",
])
def test_pid_only_label_none(relative):
    assert pid_only_label(relative) is None


def test_pid_only_label_beyond_int64_is_named():
    with pytest.raises(ValueError, match=r"^the pid of 'x' must be in \[.*int64"):
        pid_only_label("99999999999999999999_1.jpg", "the pid of 'x'")
    with pytest.raises(ValueError, match=r"^the pid must be in"):
        pid_only_label("99999999999999999999/a.jpg")


def test_is_integer_is_ascii_with_a_sign():
    assert all(map(is_integer, ["0", "007", "-1", "+3"]))
    assert not any(map(is_integer, ["", "-", "1_000", " 7", "\u0663", "\uff15", "1.0"]))
