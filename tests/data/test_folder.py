import pytest
from PIL import Image

from sureid import build_dataset
from sureid.data.folder import read_csv_records, read_custom, read_folder_records


def _img(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 16), (10, 20, 30)).save(path)
    return path


@pytest.fixture
def folder_root(tmp_path):
    for split, items in {
        "train": [("0005", "0_a.jpg"), ("0005", "1_b.png"), ("0009", "2_c.jpg")],
        "query": [("0007", "0_q.jpg")],
        "gallery": [("0007", "1_g.jpg"), ("0007", "0_h.jpg"), ("0011", "3_x.jpeg")],
    }.items():
        for pid, name in items:
            _img(tmp_path / split / pid / name)
    return tmp_path


def test_folder_layout(folder_root):
    ds = build_dataset("custom", folder_root)
    assert ds.name == "custom"
    assert [(r.pid, r.camid) for r in ds.train] == [(0, 0), (0, 1), (1, 2)]  # relabelled
    assert [(r.pid, r.camid) for r in ds.query] == [(7, 0)]
    assert sorted((r.pid, r.camid) for r in ds.gallery) == [(7, 0), (7, 1), (11, 3)]
    assert ds.query[0].path.endswith("0_q.jpg")
    assert build_dataset("folder", folder_root).counts() == ds.counts()


def test_csv_layout_relative_and_absolute_paths(tmp_path):
    a = _img(tmp_path / "imgs" / "a.jpg")
    b = _img(tmp_path / "imgs" / "b.jpg")
    (tmp_path / "query.csv").write_text("path,pid,camid\nimgs/a.jpg,3,0\n")
    (tmp_path / "gallery.csv").write_text(f"{b},3,1\n\nimgs/a.jpg, 4 , 2\n")
    ds = read_custom(tmp_path)
    assert ds.train == []
    assert ds.query == [(str(a), 3, 0)]
    assert ds.gallery == [(str(b), 3, 1), (str(a), 4, 2)]
    assert build_dataset("CSV", tmp_path).gallery == ds.gallery


def test_mixed_folder_and_csv(folder_root):
    (folder_root / "query.csv").write_text("gallery/0007/1_g.jpg,7,5\n")
    with pytest.raises(ValueError, match="both query/ and query.csv"):
        read_custom(folder_root)


@pytest.mark.parametrize(
    "rel,match",
    [("0001/a.jpg", "start with '<camid>_'"), ("x/0_a.jpg", "pid"), ("0_a.jpg", "<pid>/<camid>"),
     ("0001/c_a.jpg", "camid")],
)
def test_folder_errors_name_the_file(tmp_path, rel, match):
    _img(tmp_path / rel)
    with pytest.raises(ValueError, match=match) as e:
        read_folder_records(tmp_path)
    assert rel.split("/")[-1] in str(e.value)


@pytest.mark.parametrize("text, err, match", [
    ("a.jpg,1\n", ValueError, "line 1: expected 'path,pid,camid'"),
    ("a.jpg,1,c1\n", ValueError, "camid must be an integer"),
    ("missing.jpg,1,0\n", FileNotFoundError, "missing.jpg"),
    ("path,pid,camid\n", ValueError, "lists no images"),
])
def test_csv_errors(tmp_path, text, err, match):
    _img(tmp_path / "a.jpg")
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    with pytest.raises(err, match=match):
        read_csv_records(bad)


def test_custom_root_errors(tmp_path):
    _img(tmp_path / "a.jpg")
    with pytest.raises(FileNotFoundError, match="query/"):
        read_custom(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_custom(tmp_path / "nope")


# ----------------------------------------------------------------------------- issue 26
@pytest.mark.parametrize("encode, match", [
    (lambda t: t.encode("utf-16"), "not UTF-8 text"),
    (lambda t: t.encode("utf-16-le"), "NUL bytes"),
    (lambda t: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not UTF-8 text"),
    (lambda t: t.encode("latin-1").replace(b"a", b"\xe9"), "not UTF-8 text"),
])
def test_csv_that_is_not_utf8_text_is_named(tmp_path, encode, match):
    _img(tmp_path / "a.jpg")
    table = tmp_path / "query.csv"
    table.write_bytes(encode("path,pid,camid\na.jpg,1,0\n"))
    with pytest.raises(ValueError, match=rf"query.csv' .*{match}"):
        read_csv_records(table)


def test_csv_with_a_byte_order_mark_reads(tmp_path):
    _img(tmp_path / "a.jpg")
    table = tmp_path / "query.csv"
    table.write_bytes("path,pid,camid\na.jpg,1,0\n".encode("utf-8-sig"))
    assert [(r.pid, r.camid) for r in read_csv_records(table)] == [(1, 0)]


@pytest.mark.parametrize("pid, err, match", [
    ("9223372036854775808", ValueError, "int64"),
    ("-9223372036854775809", ValueError, "int64"),
    ("1_000", ValueError, "must be an integer"),
    ("\u0663", ValueError, "must be an integer"),  # an Arabic-Indic digit three
])
def test_csv_labels_must_be_ascii_int64(tmp_path, pid, err, match):
    _img(tmp_path / "a.jpg")
    table = tmp_path / "query.csv"
    table.write_text(f"a.jpg,{pid},0\n", encoding="utf-8")
    with pytest.raises(err, match=match):
        read_csv_records(table)


def test_folder_pid_beyond_int64_is_refused(tmp_path):
    _img(tmp_path / "q" / "99999999999999999999" / "0_a.jpg")
    with pytest.raises(ValueError, match="int64"):
        read_folder_records(tmp_path / "q")
