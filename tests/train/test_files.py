"""sureid.train.files: the template, TOML/JSON files, --set, build_config, and errors that
name the key."""

import json
import sys

import pytest

from sureid.cli import main
from sureid.train import (
    TrainConfig,
    apply_sets,
    build_config,
    dumps,
    from_preset,
    load_config,
    merge,
    template,
    to_dict,
)


def toml_loads(text):
    return pytest.importorskip("tomllib").loads(text)  # Python >= 3.11


def test_template_parses_back_to_the_defaults():
    text = template()
    assert text.count("\n# ") > 50  # every setting is commented
    assert merge(TrainConfig(), toml_loads(text)) == TrainConfig()
    assert toml_loads(text) == to_dict(TrainConfig())  # full: every key is written
    assert merge(TrainConfig(), json.loads(template("json"))) == TrainConfig()


@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_files_round_trip_in_their_format(tmp_path, fmt):
    cfg = apply_sets(from_preset("smoke"), [
        "data.root=/data/x y", "student.prune_layers=[2, 5]", "data.noda=false",
        "schedule.lr=3e-4", "objective.alpha=2", "teacher.source=none", "device=cpu",
        'student.weights="a \\"quoted\\" name"',
    ])
    assert cfg.student.prune_layers == (2, 5) and cfg.objective.alpha == 2.0
    assert cfg.student.weights == 'a \\"quoted\\" name'
    path = tmp_path / f"run.{fmt}"
    path.write_text(dumps(cfg, fmt))
    again, got_fmt = load_config(path)
    assert again == cfg and got_fmt == fmt
    assert build_config(path, sets=["seed=3"]) == (merge(cfg, {"seed": 3}), fmt)


def test_a_partial_file_keeps_the_base_values(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[schedule]\nepochs = 7\n\n[data]\nroot = "d"\n')
    cfg, _ = build_config(path, preset="smoke", data_root="elsewhere", sets=["data.padding=0"])
    assert cfg.schedule.epochs == 7 and cfg.student.embed_dim == 64
    assert cfg.data.root == "elsewhere" and cfg.data.padding == 0


@pytest.mark.parametrize("assignment, error, match", [
    ("data.foo=1", ValueError, r"--set data\.foo: no such setting; the \[data\] keys"),
    ("foo=1", ValueError, r"--set foo: no such setting"),
    ("model.depth=3", ValueError, r"no section 'model'"),
    ("data=1", ValueError, r"--set data: a section"),
    ("schedule.epochs", ValueError, r"--set takes KEY=VALUE"),
    ("data.noda=1", TypeError, r"data\.noda must be a bool, got 1"),
    ("schedule.epochs=1.5", TypeError, r"schedule\.epochs must be an int, got float 1\.5"),
    ("schedule.lr=fast", TypeError, r"schedule\.lr must be a real number, got str 'fast'"),
    ("data.img_size=[64]", ValueError, r"data\.img_size must hold 2 ints, got \[64\]"),
    ("student.keep_ratio=0", ValueError, r"student\.keep_ratio must be in \(0, 1\], got 0"),
    ("schedule.optimizer=adam", ValueError, r"schedule\.optimizer must be one of"),
    ("schedule.lr=inf", ValueError, r"schedule\.lr must be"),
    ("student.prune_layers=[9, 3]", ValueError, r"student\.prune_layers must be increasing"),
    ("student.prune_layers=[3, 12]", ValueError, r"student\.prune_layers must be blocks"),
    ("teacher.source=checkpoint", ValueError, r"teacher\.checkpoint must name"),
    ("teacher.checkpoint=t.pt", ValueError, r"teacher\.checkpoint is 't\.pt' but"),
    ("student.weights=timm", ValueError, r"student\.weights = 'timm'.*student\.timm_name"),
])
def test_bad_settings_name_the_key(assignment, error, match):
    with pytest.raises(error, match=match):
        apply_sets(TrainConfig(), [assignment])


@pytest.mark.parametrize("text, error, match", [
    ('[data]\nfoo = 1\n', ValueError, r"unknown key data\.foo; the \[data\] keys are"),
    ('bar = 1\n', ValueError, r"unknown key 'bar'; the top-level keys"),
    ('data = 3\n', ValueError, r"\[data\] must be a table"),
    ('[data]\nnoda = "yes"\n', TypeError, r"c\.toml'.*data\.noda must be a bool, got 'yes'"),
    ('[schedule]\nepochs = 0\n', ValueError, r"schedule\.epochs must be >= 1, got 0"),
    ('[data\n', ValueError, r"is not valid TOML"),
])
def test_bad_files_name_the_key(tmp_path, text, error, match):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(error, match=match):
        load_config(path)


def test_file_kinds(tmp_path):
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_config(tmp_path / "none.toml")
    (tmp_path / "c.yaml").write_text("a: 1\n")
    with pytest.raises(ValueError, match=r"expected a \.toml or \.json file, got '\.yaml'"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "c.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a table of settings, got list"):
        load_config(tmp_path / "c.json")


def test_toml_without_tomllib_or_tomli_says_what_to_do(tmp_path, monkeypatch):
    # Python 3.10 without the optional tomli package
    monkeypatch.setitem(sys.modules, "tomllib", None)
    monkeypatch.setitem(sys.modules, "tomli", None)
    path = tmp_path / "c.toml"
    path.write_text("seed = 1\n")
    with pytest.raises(ImportError, match=r"Python >= 3\.11 or the tomli package.*JSON"):
        load_config(path)
    (tmp_path / "c.json").write_text('{"seed": 1}')
    assert load_config(tmp_path / "c.json")[0].seed == 1
    assert build_config(preset="smoke")[1] == "json"  # a run writes a config it can read


def test_template_prints_the_defaults(capsys):
    assert main(["train", "--template"]) == 0
    text = capsys.readouterr().out
    assert "[student]" in text and "# HTS keep ratio" in text
    assert main(["train", "--template", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["schedule"]["lr"] == 0.008


def test_dumps_refuses_other_formats():
    with pytest.raises(ValueError, match="fmt must be 'toml' or 'json', got 'yaml'"):
        dumps(TrainConfig(), "yaml")
