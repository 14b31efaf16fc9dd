"""`sureid evaluate --aqe/--aqe-k/--aqe-alpha/--camera-pairs` give what
`sureid.metrics.evaluate` gives with the same options (issue 26)."""

import json

import pytest

import sureid
from sureid.cli import main
from sureid.data import read_occluded_duke
from sureid.inference import FeatureExtractor
from tests.smoke_run import smoke_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return smoke_run(tmp_path_factory.getbasetemp() / "smoke_run")


@pytest.fixture(scope="module")
def features(run):
    ds = read_occluded_duke(run["data"])
    ext = FeatureExtractor(sureid.load(run["model"]), progress=False)
    qf = ext([r.path for r in ds.query]).features
    gf = ext([r.path for r in ds.gallery]).features
    labels = ([r.pid for r in ds.query], [r.pid for r in ds.gallery],
              [r.camid for r in ds.query], [r.camid for r in ds.gallery])
    return qf, gf, labels


@pytest.mark.parametrize("options,kwargs", [
    ([], {}),
    (["--aqe"], {"aqe": True}),
    (["--aqe", "--aqe-k", "3", "--aqe-alpha", "0.5"], {"aqe": True, "aqe_k": 3,
                                                       "aqe_alpha": 0.5}),
    (["--aqe", "--rerank"], {"aqe": True, "rerank": True}),
])
def test_aqe_options_match_python(run, features, tmp_path, capsys, options, kwargs):
    out = tmp_path / "r.json"
    assert main(["evaluate", run["model"], "--data-root", run["data"], "--no-progress",
                 "--json", str(out), *options]) == 0
    got = json.loads(out.read_text())
    qf, gf, labels = features
    want = sureid.evaluate(qf, gf, *labels, max_rank=10, **kwargs)
    assert got["mAP"] == pytest.approx(want.mAP, abs=1e-12)
    assert got["rank1"] == pytest.approx(want.rank1, abs=1e-12)
    printed = capsys.readouterr().out
    assert ("alpha-QE" in printed) == ("--aqe" in options)
    if "--aqe" in options:
        assert got["aqe"] == {"k": kwargs.get("aqe_k", 5), "alpha": kwargs.get("aqe_alpha", 3.0)}
    else:
        assert "aqe" not in got


def test_camera_pairs_match_python(run, features, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["evaluate", run["model"], "--data-root", run["data"], "--no-progress",
                 "--json", str(out), "--camera-pairs"]) == 0
    got = json.loads(out.read_text())["camera_pairs"]
    qf, gf, labels = features
    want = sureid.evaluate(qf, gf, *labels, max_rank=10, camera_pairs=True).camera_pairs
    assert len(got) == len(want) > 1
    for row in got:
        ref = want[(row["query_camid"], row["gallery_camid"])]
        assert row["mAP"] == pytest.approx(ref.mAP, abs=1e-12)
        assert row["rank1"] == pytest.approx(ref.rank1, abs=1e-12)
        assert row["num_valid_queries"] == ref.num_valid_queries
    printed = capsys.readouterr().out
    assert "per camera pair" in printed and printed.count("-> gallery cam") == len(want)


@pytest.mark.parametrize("options,fragment", [
    (["--aqe-k", "0"], "argument --aqe-k: expected an integer >= 1, got '0'"),
    (["--aqe-alpha", "-1"], "argument --aqe-alpha: expected a number in [0, inf], got '-1'"),
    (["--aqe-alpha", "nan"], "argument --aqe-alpha: expected a number in [0, inf], got 'nan'"),
])
def test_bad_aqe_options_are_refused_before_the_model_loads(run, tmp_path, capsys, options,
                                                             fragment):
    with pytest.raises(SystemExit) as e:  # argparse's exit, before the model path is looked at
        main(["evaluate", str(tmp_path / "missing.pt"), "--data-root", run["data"], *options])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and "missing.pt" not in err
