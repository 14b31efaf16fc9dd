"""Ranked-list pictures users can read (issue 25 item 5): rank apart from distance, 3
significant digits, pid and camera as the file names number them, names not read as pids."""

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from sureid.cli import main
from sureid.cli.rank import _picture_name, _shown
from sureid.viz_rank import render_ranked_list
from tests.smoke_run import smoke_run


def _imgs(n):
    return [torch.full((3, 64, 32), 40 * i, dtype=torch.uint8) for i in range(n)]


def _texts(monkeypatch):
    """Every text drawn, in order."""
    drawn = []
    original = ImageDraw.ImageDraw.text

    def spy(self, xy, text, *args, **kwargs):
        drawn.append(text)
        return original(self, xy, text, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", spy)
    return drawn


@pytest.mark.parametrize("distances,shown", [
    ([0.01, 0.0123456, 0.0125], ["#1 0.01", "#2 0.0123", "#3 0.0125"]),  # was "10.01", "0.01"
    ([123.456, 1e-5, 2.0], ["#1 123", "#2 1e-05", "#3 2"]),
    ([np.float32(0.5), 0, 1], ["#1 0.5", "#2 0", "#3 1"]),
])
def test_rank_and_distance_read_apart_with_three_significant_digits(monkeypatch, distances,
                                                                    shown):
    drawn = _texts(monkeypatch)
    q, *g = _imgs(4)
    render_ranked_list(q, g, distances=distances, size=(64, 32), scale=1)
    assert [t for t in drawn if t.startswith("#")] == shown


def test_labels_are_drawn_under_each_tile(monkeypatch):
    drawn = _texts(monkeypatch)
    q, *g = _imgs(3)
    pic = render_ranked_list(q, g, labels=["pid 10 c2", None], query_label="pid 10 c1",
                             matches=[True, False], size=(64, 32), scale=1)
    assert drawn == ["query", "pid 10 c1", "#1", "pid 10 c2", "#2"]
    plain = render_ranked_list(q, g, size=(64, 32), scale=1)
    assert pic.size == plain.size  # room for the label line either way


@pytest.mark.parametrize("kwargs,exc,fragment", [
    ({"labels": ["a"]}, ValueError, "labels has 1 entries for 2"),
    ({"labels": ["a", 3]}, TypeError, "labels must be str or None"),
    ({"query_label": 7}, TypeError, "query_label must be str or None"),
])
def test_bad_labels(kwargs, exc, fragment):
    q, *g = _imgs(3)
    with pytest.raises(exc) as err:
        render_ranked_list(q, g, **kwargs)
    assert fragment in str(err.value)


def test_labels_shown_as_the_file_names_number_them():
    assert _shown("g/0010_c2s1_000451_03.jpg") == "pid 10 c2"  # Market: 1-based, c2 stays c2
    assert _shown("g/0004_c1_f0001234.jpg") == "pid 4 c1"
    assert _shown("g/0007/0_a.jpg") == "pid 7 cam 0"  # <pid>/<camid>_: as written
    assert _shown("g/person_1/a.jpg") is None


@pytest.mark.parametrize("path,query,name", [
    ("q/0004_c1_f0001234.jpg", "q", "q0001-0004_c1_f0001234.png"),
    ("q/0010/0_0.jpg", "q", "q0001-0010-0_0.png"),
    ("q/a b.jpg", "q/a b.jpg", "q0001-a_b.png"),
])
def test_picture_names_start_with_the_query_number(path, query, name, tmp_path):
    (tmp_path / query).parent.mkdir(parents=True, exist_ok=True)
    if not query.endswith(".jpg"):
        (tmp_path / query).mkdir(exist_ok=True)
    assert _picture_name(0, str(tmp_path / path), str(tmp_path / query)) == name


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return smoke_run(tmp_path_factory.getbasetemp() / "smoke_run")


def test_sureid_rank_pictures_and_names(run, tmp_path, monkeypatch):
    drawn = _texts(monkeypatch)
    data = Path(run["data"])
    q = tmp_path / "query"
    q.mkdir()
    for p in sorted((data / "query").iterdir())[:3]:  # names colliding once the stem is cut
        Image.open(p).save(q / p.name)
    out = tmp_path / "ranks"
    assert main(["rank", run["model"], str(q), str(data / "bounding_box_test"), "--topk", "4",
                 "-o", str(out), "--no-progress", "--no-kept"]) == 0
    pictures = sorted(p.name for p in out.glob("*.png"))
    assert pictures == [f"q{i + 1:04d}-{n.rsplit('.', 1)[0]}.png"
                        for i, n in enumerate(sorted(p.name for p in q.iterdir()))]
    assert all(re.match(r"^q\d{4}-", n) for n in pictures)
    assert set(json.loads((out / "sureid_rank.json").read_text())["files"]) == {
        "ranking.csv", *pictures}
    with open(out / "ranking.csv") as f:
        rows = list(csv.DictReader(f))
    first = [r for r in rows if r["query"] == str(sorted(q.iterdir())[0])]
    title = [t for t in drawn if t.startswith("query pid")]
    assert len(title) == 3 and re.match(r"query pid \d+ c\d+: \d/4 true matches", title[0])
    ranks = [t for t in drawn if t.startswith("#")][:4]
    assert [t.split()[0] for t in ranks] == ["#1", "#2", "#3", "#4"]
    assert ranks[0].split()[1] == f"{float(first[0]['distance']):.3g}"
    # each gallery tile: its pid and camera as its file name writes them
    gallery_lines = [t for t in drawn if t.startswith("pid ")]
    g_name = Path(first[0]["gallery"]).name
    pid, cam = re.match(r"^(\d+)_c(\d+)", g_name).groups()
    assert f"pid {int(pid)} c{int(cam)}" in gallery_lines
