import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sureid.data import (
    DATASETS,
    ImageRecord,
    build_dataset,
    read_dukemtmc,
    read_market1501,
    read_occluded_duke,
    read_occluded_reid,
    read_partial_reid,
)
from sureid.metrics import evaluate_rank


def _jpeg_bytes(fmt="JPEG"):
    buf = io.BytesIO()
    Image.new("RGB", (4, 8), (120, 30, 200)).save(buf, format=fmt)
    return buf.getvalue()


JPEG, TIFF = _jpeg_bytes(), _jpeg_bytes("TIFF")


def write(folder, names, data=JPEG):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(data)


MARKET = {
    "bounding_box_train": ["0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg",
                           "0007_c3s3_077419_03.jpg", "0010_c6s4_002452_02.jpg",
                           "-1_c1s1_000401_03.jpg", "Thumbs.db"],
    "query": ["0001_c1s1_001051_00.jpg", "0003_c3s1_000976_00.jpg", "-1_c2s1_0001.jpg"],
    "bounding_box_test": ["0000_c1s1_000000_01.jpg", "0000_c6s4_000001_02.jpg",
                          "-1_c1s1_000401_01.jpg", "0001_c2s1_000301_01.jpg",
                          "0001_c1s1_000302_01.jpg", "0003_c5s2_000001_01.jpg"],
}


def test_market1501(tmp_path):
    root = tmp_path / "Market-1501-v15.09.15"
    for folder, names in MARKET.items():
        write(root / folder, names)
    ds = read_market1501(tmp_path)  # finds the usual subfolder name
    assert [(r.pid, r.camid) for r in ds.train] == [(0, 0), (0, 1), (1, 2), (2, 5)]
    assert ds.num_train_pids == 3 and ds.num_train_cams == 4
    assert [(r.pid, r.camid) for r in ds.query] == [(1, 0), (3, 2)]
    gallery = sorted((r.pid, r.camid) for r in ds.gallery)
    assert gallery == [(0, 0), (0, 5), (1, 0), (1, 1), (3, 4)]  # distractors kept, junk dropped
    assert ds.counts() == {"train": (4, 3, 4), "query": (2, 2, 2), "gallery": (5, 3, 4)}
    assert all(isinstance(r, ImageRecord) and r.path.endswith(".jpg") for r in ds.gallery)
    assert read_market1501(root).query == ds.query  # root itself works too
    assert "train=4 imgs/3 ids" in repr(ds)


@pytest.mark.parametrize("reader, alias", [(read_dukemtmc, "DukeMTMC-reID"),
                                           (read_occluded_duke, "Occluded_Duke")])
def test_duke_style(tmp_path, reader, alias):
    root = tmp_path / alias
    write(root / "bounding_box_train", ["0005_c2_f0046182.jpg", "0001_c8_f0000001.jpg",
                                        "0001_c1_f0000002.jpg", "0120_c5_f1234567.jpg"])
    write(root / "query", ["0003_c1_f0000010.jpg"])
    write(root / "bounding_box_test", ["0003_c2_f0000011.jpg", "0004_c7_f0000012.jpg"])
    ds = reader(tmp_path)
    assert sorted((r.pid, r.camid) for r in ds.train) == [(0, 0), (0, 7), (1, 1), (2, 4)]
    assert [(r.pid, r.camid) for r in ds.query] == [(3, 0)]
    assert [(r.pid, r.camid) for r in ds.gallery] == [(3, 1), (4, 6)]


def test_synthetic_name_pattern_accepted(tmp_path):
    # the synthetic writer emits PPPP_cC_fNNNNNNN.jpg in the Occluded-Duke layout
    write(tmp_path / "bounding_box_train", [f"{p:04d}_c{c}_f{i:07d}.jpg"
                                            for i, (p, c) in enumerate([(7, 1), (9, 3)])])
    write(tmp_path / "query", ["0007_c2_f0000002.jpg"])
    write(tmp_path / "bounding_box_test", ["0007_c1_f0000003.jpg"])
    ds = build_dataset("Occluded-Duke", tmp_path)
    assert [(r.pid, r.camid) for r in ds.train] == [(0, 0), (1, 2)]


def test_occluded_reid_subfolders_and_tif(tmp_path):
    root = tmp_path / "OccludedREID"
    for pid in (1, 2):
        names = [f"{pid:03d}_01.tif", f"{pid:03d}_02.tif"]
        write(root / "occluded_body_images" / f"{pid:03d}", names, TIFF)
        write(root / "whole_body_images" / f"{pid:03d}", [f"{pid:03d}_01.tif"], TIFF)
    write(root / "whole_body_images" / "003", ["img_a.jpg"])  # pid from the folder name
    ds = read_occluded_reid(tmp_path)
    assert ds.train == []
    assert [(r.pid, r.camid) for r in ds.query] == [(1, 0), (1, 0), (2, 0), (2, 0)]
    assert [(r.pid, r.camid) for r in ds.gallery] == [(1, 1), (2, 1), (3, 1)]
    # camera policy: nothing is removed, every query is valid; Rank-1 / Rank-3 from the cmc
    qp = [r.pid for r in ds.query]
    gp = [r.pid for r in ds.gallery]
    d = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.2, 0.1, 0.3], [0.1, 0.2, 0.3]])
    res = evaluate_rank(d, qp, gp, [r.camid for r in ds.query], [r.camid for r in ds.gallery], 3)
    assert res.num_skipped == 0 and res.rank1 == 0.5 and res.rank(3) == 1.0


def test_partial_reid_flat(tmp_path):
    write(tmp_path / "partial_body_images", ["001_01.jpg", "002_01.JPG", "002_02.png"])
    write(tmp_path / "whole_body_images", ["001_01.jpg", "002_01.jpg"])
    write(tmp_path / "occluded_body_images", ["009_01.jpg"])  # present in some releases; unused
    ds = build_dataset("partial_reid", tmp_path)
    assert [(r.pid, r.camid) for r in ds.query] == [(1, 0), (2, 0), (2, 0)]
    assert [(r.pid, r.camid) for r in ds.gallery] == [(1, 1), (2, 1)]


def test_readers_and_occluder_bank_share_one_extension_list(tmp_path):
    from sureid.data import datasets
    from sureid.transforms import occluders

    assert datasets.IMAGE_EXTENSIONS is occluders.IMAGE_EXTENSIONS
    write(tmp_path / "partial_body_images", ["001_01.webp"], _jpeg_bytes("WEBP"))
    write(tmp_path / "whole_body_images", ["001_01.ppm"], _jpeg_bytes("PPM"))
    ds = build_dataset("partial_reid", tmp_path)
    assert [Path(r.path).suffix for r in ds.query + ds.gallery] == [".webp", ".ppm"]


def test_missing_root_and_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_market1501(tmp_path / "nope")
    write(tmp_path / "bounding_box_train", ["0001_c1s1_000001_01.jpg"])
    msg = r"expected folder\(s\) \['query', 'bounding_box_test'\]"
    with pytest.raises(FileNotFoundError, match=msg):
        read_market1501(tmp_path)
    with pytest.raises(FileNotFoundError, match="whole_body_images"):
        read_occluded_reid(tmp_path)


def test_bad_names_and_empty_folders(tmp_path):
    write(tmp_path / "bounding_box_train", ["0001_c1s1_000001_01.jpg"])
    (tmp_path / "query").mkdir()
    write(tmp_path / "bounding_box_test", ["0001_c2s1_000001_01.jpg"])
    with pytest.raises(ValueError, match=r"no images .* found in .*query"):
        read_market1501(tmp_path)
    write(tmp_path / "query", ["person1.jpg"])
    with pytest.raises(ValueError, match=r"'person1.jpg' .* does not match"):
        read_market1501(tmp_path)
    shutil.rmtree(tmp_path / "query")
    write(tmp_path / "partial_body_images", ["abc.jpg"])
    write(tmp_path / "whole_body_images", ["001_01.jpg"])
    with pytest.raises(ValueError, match="cannot read a pid from 'abc.jpg'"):
        read_partial_reid(tmp_path)


def test_pid_only_names_take_decimal_digits_of_any_script(tmp_path):
    """Partial/Occluded-REID pids: decimal digits of any script (``int`` reads them), as the
    reader always took them; a folder of other digit characters (superscript two) is refused
    with the reader's message (it was int()'s 'invalid literal')."""
    write(tmp_path / "partial_body_images", ["\u0663_01.jpg"])  # Arabic-Indic 3
    write(tmp_path / "whole_body_images" / "\uff13", ["a.jpg"])  # full-width 3
    ds = read_partial_reid(tmp_path)
    assert [r.pid for r in ds.query] == [3] and [r.pid for r in ds.gallery] == [3]
    write(tmp_path / "whole_body_images" / "\u00b2", ["b.jpg"])
    with pytest.raises(ValueError, match="cannot read a pid from '\u00b2/b.jpg'"):
        read_partial_reid(tmp_path)


def test_build_dataset_registry(tmp_path):
    assert set(DATASETS) == {
        "market1501", "dukemtmc", "occluded_duke", "occluded_reid", "partial_reid", "custom"
    }
    with pytest.raises(ValueError, match="unknown dataset 'cuhk03'"):
        build_dataset("cuhk03", tmp_path)
    with pytest.raises(TypeError, match="name must be a str"):
        build_dataset(3, tmp_path)


def test_reads_the_synthetic_writer_output(tmp_path):
    from sureid.data import make_synthetic_reid

    summary = make_synthetic_reid(tmp_path, preset="smoke", progress=False)
    ds = read_occluded_duke(tmp_path)
    for split in ("train", "query", "gallery"):
        want = getattr(summary, split)
        assert ds.counts()[split] == (want.num_images, want.num_ids, want.num_cameras)
    assert sorted({r.pid for r in ds.train}) == list(range(ds.num_train_pids))


@pytest.mark.parametrize(
    ("split", "names", "found"),
    [
        ("query", ["-1_c1s1_000001_01.jpg", "-1_c2s1_000002_01.jpg"], r"2 junk .* 0 distractor"),
        ("query", ["0000_c1s1_000001_01.jpg", "-1_c2s1_000002_01.jpg"], r"1 junk .* 1 distractor"),
        ("bounding_box_train", ["0000_c1s1_000001_01.jpg"], r"0 junk .* 1 distractor"),
        ("bounding_box_test", ["0000_c1s1_000001_01.jpg", "-1_c1s1_000002_01.jpg"],
         r"found 2 image\(s\), 1 junk .* 1 distractor"),
    ],
)
def test_split_of_only_junk_or_background_is_an_error(tmp_path, split, names, found):
    # issue 16 item 4: such a split used to come back empty (or background-only), silently
    for folder, files in MARKET.items():
        write(tmp_path / folder, names if folder == split else files)
    with pytest.raises(ValueError, match=rf"no image of a person identity .*{split}.*{found}"):
        read_market1501(tmp_path)


def test_gallery_with_distractors_and_one_identity_is_fine(tmp_path):
    for folder, files in MARKET.items():
        keep = ["0000_c1s1_000000_01.jpg", "0001_c2s1_000301_01.jpg"]
        write(tmp_path / folder, keep if folder == "bounding_box_test" else files)
    ds = read_market1501(tmp_path)
    assert sorted(r.pid for r in ds.gallery) == [0, 1]


# ----------------------------------------------------------------------------- issue 26
def test_pids_beyond_int64_are_refused_not_collapsed(tmp_path):
    root = tmp_path / "m"
    for split, names in MARKET.items():
        write(root / split, names)
    write(root / "query", ["9223372036854775808_c1s1_000001_01.jpg"])
    with pytest.raises(ValueError, match=r"9223372036854775808_c1s1_000001_01.jpg.*int64"):
        read_market1501(root)
