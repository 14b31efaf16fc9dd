"""Any folder (issue 25 item 3): identity folders with names and no cameras, cameras from a
CSV column, one label parser, layouts detected alike by the readers and the CLI, and
summarize_reid_folder right for every layout or refusing."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import sureid
from sureid.data import build_dataset, detect_layout, read_market1501, summarize_reid_folder
from sureid.data.folder import read_custom
from sureid.data.labels import camera_style_labels, camera_style_name, path_labels
from sureid.data.synthetic.writer import SplitCounts


def _img(path, value=10):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 16), (value, 20, 30)).save(path)
    return path


@pytest.fixture
def named(tmp_path):
    """train/query/gallery of named identity folders, file names without cameras."""
    for split, items in {
        "train": [("person_b", "x.jpg"), ("person_b", "y.jpg"), ("person_a", "z.png")],
        "query": [("person_c", "q1.jpg"), ("person_d", "q2.jpg")],
        "gallery": [("person_c", "g1.jpg"), ("person_c", "g2.jpg"), ("person_d", "g3.jpg"),
                    ("zoe", "g4.jpg")],
    }.items():
        for who, name in items:
            _img(tmp_path / split / who / name)
    return tmp_path


def test_named_identities_without_cameras(named):
    ds = read_custom(named)
    assert ds.name == "custom" and ds.camera_per_image
    assert ds.train_identities == ("person_a", "person_b")
    assert ds.label_map == {"person_a": 0, "person_b": 1}
    assert [(r.pid, r.path.endswith("z.png")) for r in ds.train] == [(0, True), (1, False),
                                                                    (1, False)]
    # one numbering over the names of every split: query and gallery agree
    names = sorted({"person_a", "person_b", "person_c", "person_d", "zoe"})
    assert [r.pid for r in ds.query] == [names.index("person_c"), names.index("person_d")]
    assert [r.pid for r in ds.gallery] == [names.index(n) for n in
                                           ("person_c", "person_c", "person_d", "zoe")]
    # every query and gallery image its own camera
    cams = [r.camid for r in ds.query + ds.gallery]
    assert len(set(cams)) == len(cams) == 6
    assert build_dataset("auto", named).counts() == ds.counts()
    assert detect_layout(named) == "custom"


def test_own_cameras_keep_every_true_match_in_the_protocol(named):
    ds = read_custom(named)
    q = torch.eye(4)[:2]
    g = torch.eye(4)[[0, 0, 1, 2]]  # both person_c images closest to their query
    r = sureid.evaluate(q, g, [x.pid for x in ds.query], [x.pid for x in ds.gallery],
                        [x.camid for x in ds.query], [x.camid for x in ds.gallery])
    assert r.num_valid_queries == 2 and r.mAP == 1.0
    with pytest.raises(ValueError, match="no query has a true match"):  # what one camera gives
        sureid.evaluate(q, g, [x.pid for x in ds.query], [x.pid for x in ds.gallery], [0, 0],
                        [0, 0, 0, 0])


def test_bare_identity_root_is_training_data(tmp_path):
    for who, n in (("person_0001", 3), ("person_0002", 2), ("bob", 1)):
        for i in range(n):
            _img(tmp_path / who / f"img{i}.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    assert detect_layout(tmp_path) == "custom"
    ds = build_dataset("folder", tmp_path)
    assert ds.query == [] and ds.gallery == []
    assert ds.train_identities == ("bob", "person_0001", "person_0002")
    assert sorted(r.pid for r in ds.train) == [0, 1, 1, 1, 2, 2]
    counts = summarize_reid_folder(tmp_path)
    assert counts["train"] == SplitCounts(num_ids=3, num_images=6, num_cameras=6)
    assert counts["query"] == SplitCounts(0, 0, 0)


def test_integer_folders_with_cameras_are_read_as_before(tmp_path):
    _img(tmp_path / "query" / "0007" / "2_q.jpg")
    _img(tmp_path / "gallery" / "0007" / "1_g.jpg")
    _img(tmp_path / "gallery" / "0009" / "0_h.jpg")
    ds = read_custom(tmp_path)
    assert [(r.pid, r.camid) for r in ds.query] == [(7, 2)]
    assert [(r.pid, r.camid) for r in ds.gallery] == [(7, 1), (9, 0)]
    assert not ds.camera_per_image


def test_one_name_makes_every_identity_a_name(tmp_path):
    _img(tmp_path / "query" / "7" / "0_q.jpg")
    _img(tmp_path / "gallery" / "007" / "1_g.jpg")
    _img(tmp_path / "gallery" / "ann" / "1_h.jpg")
    ds = read_custom(tmp_path)
    assert ds.query[0].pid != ds.gallery[0].pid  # "7" and "007" are two names now


def test_cameras_from_a_csv_column_or_one_per_image(tmp_path):
    a, b, c = (_img(tmp_path / "imgs" / f"{n}.jpg") for n in "abc")
    (tmp_path / "query.csv").write_text("path,pid,camid\nimgs/a.jpg,alice,3\n")
    (tmp_path / "gallery.csv").write_text("imgs/b.jpg,alice,1\nimgs/c.jpg,bob,3\n")
    ds = read_custom(tmp_path)
    assert [(r.pid, r.camid) for r in ds.query] == [(0, 3)]
    assert [(r.pid, r.camid) for r in ds.gallery] == [(0, 1), (1, 3)]
    assert not ds.camera_per_image
    (tmp_path / "query.csv").write_text("path,pid\nimgs/a.jpg,alice\n")
    (tmp_path / "gallery.csv").write_text("imgs/b.jpg,alice\nimgs/c.jpg,bob\n")
    ds = read_custom(tmp_path)
    assert ds.camera_per_image and len({r.camid for r in ds.query + ds.gallery}) == 3


@pytest.mark.parametrize("make,fragment", [
    (lambda r: (_img(r / "query" / "p" / "0_a.jpg"), _img(r / "query" / "p" / "b.jpg"),
                _img(r / "gallery" / "p" / "1_c.jpg")), "must start with '<camid>_'"),
    (lambda r: (_img(r / "query" / "p" / "0_a.jpg"), _img(r / "gallery" / "p" / "c.jpg")),
     "query has cameras"),
    (lambda r: ((r / "query.csv").write_text("a.jpg,p\na.jpg,p,1\n"), _img(r / "a.jpg"),
                _img(r / "gallery" / "p" / "c.jpg")), "line 2: expected 'path,pid' as"),
    (lambda r: ((r / "query.csv").write_text("a.jpg,,1\n"), _img(r / "a.jpg"),
                _img(r / "gallery" / "p" / "c.jpg")), "line 1: the pid is empty"),
])
def test_mixed_or_missing_labels_are_named(tmp_path, make, fragment):
    make(tmp_path)
    with pytest.raises(ValueError) as err:
        read_custom(tmp_path)
    assert fragment in str(err.value)


# ----------------------------------------------------------------------------- one parser
def test_one_label_parser():
    assert camera_style_labels("0002_c1s1_000451_03.jpg") == (2, 0, "c1")
    assert camera_style_labels("0001_c8_f0046182.jpg").camera == "c8"
    assert camera_style_labels("person.jpg") is None
    with pytest.raises(ValueError, match="camera numbers start at 1"):
        camera_style_labels("0001_c0_f1.jpg")
    with pytest.raises(ValueError, match="int64"):
        camera_style_labels("99999999999999999999_c1_f1.jpg")
    name = camera_style_name(12, 3, 45)
    assert name == "0012_c3_f0000045.jpg" and camera_style_labels(name) == (12, 2, "c3")
    assert path_labels("d/0007/3_a.jpg") == (7, 3, "3")
    assert path_labels("d/person_1/3_a.jpg") is None and path_labels("d/7/a.jpg") is None


# ----------------------------------------------------------------------------- layouts
def _market(root, names=("0002_c1s1_000451_03.jpg", "0003_c2s1_000452_01.jpg")):
    for sub in ("bounding_box_train", "query", "bounding_box_test"):
        for i, n in enumerate(names):
            _img(root / sub / n, value=10 * i)
    return root


@pytest.mark.parametrize("folder,layout", [
    ("Market-1501-v15.09.15", "market1501"), ("market1501", "market1501"),
    ("DukeMTMC-reID", "dukemtmc"), ("Occluded_Duke", "occluded_duke"),
])
def test_parent_folders_are_detected_as_the_readers_accept_them(tmp_path, folder, layout):
    names = (("0002_c1s1_000451_03.jpg", "0003_c2s1_000452_01.jpg") if layout == "market1501"
             else ("0002_c1_f0000001.jpg", "0003_c2_f0000002.jpg"))
    _market(tmp_path / folder, names)
    assert detect_layout(tmp_path) == layout
    assert detect_layout(tmp_path / folder) == (layout if layout == "market1501"
                                                else "occluded_duke")
    assert build_dataset("auto", tmp_path).name == layout


@pytest.mark.parametrize("query,layout", [("occluded_body_images", "occluded_reid"),
                                          ("partial_body_images", "partial_reid")])
def test_test_only_layouts_are_detected(tmp_path, query, layout):
    _img(tmp_path / query / "001_01.jpg")
    _img(tmp_path / "whole_body_images" / "001_02.jpg")
    assert detect_layout(tmp_path) == layout
    assert summarize_reid_folder(tmp_path)["query"] == SplitCounts(1, 1, 1)


def test_summarize_counts_market_names(tmp_path):
    # the old summary matched only the synthetic 'PPPP_cC_fNNNNNNN.jpg' and gave 0 ids here
    _market(tmp_path)
    _img(tmp_path / "bounding_box_test" / "0000_c3s1_000001_01.jpg")  # a distractor
    _img(tmp_path / "bounding_box_test" / "-1_c1s1_000001_01.jpg")  # junk: left out
    counts = summarize_reid_folder(tmp_path)
    assert counts["train"] == SplitCounts(num_ids=2, num_images=2, num_cameras=2)
    assert counts["query"] == SplitCounts(num_ids=2, num_images=2, num_cameras=2)
    assert counts["gallery"] == SplitCounts(num_ids=3, num_images=3, num_cameras=3)
    ds = read_market1501(tmp_path)
    assert ds.train_identities == ("2", "3") and ds.label_map == {"2": 0, "3": 1}


def test_summarize_refuses_what_the_readers_refuse(tmp_path):
    with pytest.raises(FileNotFoundError, match="no known layout"):
        summarize_reid_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        summarize_reid_folder(tmp_path / "missing")
    _market(tmp_path / "m")
    _img(tmp_path / "m" / "query" / "notes.jpg")
    with pytest.raises(ValueError, match="notes.jpg"):
        summarize_reid_folder(tmp_path / "m")
    with pytest.raises(ValueError, match="unknown dataset"):
        summarize_reid_folder(tmp_path / "m", layout="nope")


# ----------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from tests.smoke_run import smoke_run

    return smoke_run(tmp_path_factory.getbasetemp() / "smoke_run")


def _as_market(src, dst):
    """The synthetic dataset renamed to Market-1501 names, below a usual folder name."""
    for sub in ("bounding_box_train", "query", "bounding_box_test"):
        (dst / sub).mkdir(parents=True)
        for i, p in enumerate(sorted((src / sub).iterdir())):
            lab = camera_style_labels(p.name)
            shutil.copy(p, dst / sub / f"{lab.pid:04d}_c{lab.camid + 1}s1_{i:06d}_00.jpg")


def _as_identity_folders(src, dst):
    """The synthetic dataset as named identity folders without cameras."""
    for sub, split in (("bounding_box_train", "train"), ("query", "query"),
                       ("bounding_box_test", "gallery")):
        for p in sorted((src / sub).iterdir()):
            lab = camera_style_labels(p.name)
            (dst / split / f"person_{lab.pid}").mkdir(parents=True, exist_ok=True)
            shutil.copy(p, dst / split / f"person_{lab.pid}" / p.name.split("_f")[1])


def test_cli_evaluate_reads_a_parent_folder_and_reports_market(run, tmp_path, capsys):
    from pathlib import Path

    from sureid.cli import main

    parent = tmp_path / "parent"
    _as_market(Path(run["data"]), parent / "Market-1501-v15.09.15")
    out = tmp_path / "r.json"
    assert main(["evaluate", run["model"], "--data-root", str(parent), "--no-progress",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("market1501 (detected):")
    result = json.loads(out.read_text())
    assert result["dataset"] == "market1501" and result["layout_detected"] is True
    ds = build_dataset("auto", parent)  # the Python reader reads the same folder
    assert result["num_query"] == len(ds.query) and result["mAP"] == pytest.approx(run["mAP"])


def test_cli_evaluate_on_identity_folders(run, tmp_path, capsys):
    from pathlib import Path

    from sureid.cli import main

    _as_identity_folders(Path(run["data"]), tmp_path / "d")
    out = tmp_path / "r.json"
    assert main(["evaluate", run["model"], "--data-root", str(tmp_path / "d"), "--no-progress",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["dataset"] == "custom" and result["num_skipped"] == 0
    assert main(["evaluate", run["model"], "--data-root", str(tmp_path / "d"),
                 "--camera-pairs"]) == 2
    assert "no cameras" in capsys.readouterr().err
    train_only = tmp_path / "d" / "train"
    assert main(["evaluate", run["model"], "--data-root", str(train_only)]) == 2
    assert "no query and gallery" in capsys.readouterr().err


def test_sureid_train_on_named_identity_folders_saves_the_label_map(run, tmp_path):
    from pathlib import Path

    from sureid.cli import main

    _as_identity_folders(Path(run["data"]), tmp_path / "d")
    out = tmp_path / "out"
    assert main(["train", "--preset", "smoke", "--data-root", str(tmp_path / "d"), "-o",
                 str(out), "--no-progress", "--set", "data.workers=0",
                 "--set", "schedule.epochs=1", "--set", "teacher.source=none"]) == 0
    model = sureid.load(out / "model.pt")
    ds = build_dataset("auto", tmp_path / "d")
    assert model.metadata["identities"] == ds.label_map
    assert set(model.metadata["identities"]) == {
        p.name for p in (tmp_path / "d" / "train").iterdir()}
    assert sorted(model.metadata["identities"].values()) == list(range(model.num_classes))
    np.testing.assert_array_equal(sorted(ds.label_map.values()), np.arange(len(ds.label_map)))
