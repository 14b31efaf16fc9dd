"""benchmarks/throughput.py at tiny settings: every path has its ratios, the files are written."""

import json
import sys

import pytest
import torch

from sureid import HTSViT
from sureid.models.hts import num_kept_tokens
from sureid.models.timm_adapter import embed_tokens

from . import load_benchmark


def test_quick_model_rows_and_outputs(tmp_path, monkeypatch, capsys):
    script = load_benchmark("throughput")
    out_json, out_md = tmp_path / "t.json", tmp_path / "t.md"
    monkeypatch.setattr(sys, "argv", [
        "throughput.py", "--models", "quick", "--quick", "--rounds", "1", "--batch-sizes", "2,1",
        "--no-train", "--attention", "--output", str(out_json), str(out_md),
    ])
    script.main()
    result = json.loads(out_json.read_text())
    assert result["meta"]["cpu"]["model"] and result["meta"]["threads"] == 1
    rows = {(r["batch"], r["path"]): r for r in result["inference"]}
    assert {r["model"] for r in result["inference"]} == {"quick"}
    for batch in (2, 1):
        assert rows[batch, "dense"]["vs_dense"] == 1.0
        assert rows[batch, "dense"]["vs_bound"] is None
        for path in ("HTS p=0.5", "HTS p=0.7", "HTS p=0.7 attention", "HTS p=0.7 fused",
                     "HTS p=0.7 given score"):
            assert rows[batch, path]["vs_bound"] > 0
        assert rows[batch, "slice p=0.7"]["vs_bound"] == 1.0
    # attention has no modules; the given score times the top-k gathers alone
    assert [(o["batch"], o["what"]) for o in result["overhead"]] == [
        (b, w) for b in (2, 1)
        for w in ("decision modules + top-k gathers", "fused decision modules + top-k gathers",
                  "given score + top-k gathers")]
    (ceiling,) = result["ceiling"]
    assert ceiling["model"] == "quick" and 0 < ceiling["ceiling"] < 1
    md = out_md.read_text()
    assert md.startswith("python ") and "\nCPU " in md
    assert md.count("arithmetic ceiling at p=0.7") == 2  # under each batch's table
    assert "| HTS p=0.7 attention |" in md and "quick 96x48, batch 1" in md
    assert md.splitlines()[1] in capsys.readouterr().out


@pytest.mark.parametrize("values, expected", [(["32", "1"], [32, 1]), (["32,1"], [32, 1])])
def test_batch_sizes(values, expected):
    assert load_benchmark("throughput").batch_sizes(values) == expected


@pytest.mark.parametrize("values", [["0"], [","]])
def test_batch_sizes_refused(values):
    with pytest.raises(ValueError, match="positive integers"):
        load_benchmark("throughput").batch_sizes(values)


def test_paired_ratio_is_the_median_of_each_rounds_ratio():
    paired_ratio = load_benchmark("throughput").paired_ratio
    slow = [2.0, 4.0, 2.0, 8.0, 2.0]  # the machine slowed down in rounds 1 and 3
    fast = [1.0, 2.0, 1.5, 4.0, 1.0]
    med, q25, q75 = paired_ratio(slow, fast)
    assert (med, q25, q75) == (0.5, 0.5, 0.5)  # ratios 0.5, 0.5, 0.75, 0.5, 0.5
    assert min(fast) / min(slow) == 0.5


def test_arithmetic_ceiling_counts_the_decision_modules_and_nothing_else():
    """HTS's FLOPs minus its bound's are the decision MLPs' multiply-adds, written out: per
    stage, the N tokens entering it through C -> H, the local half H/2 -> H/2, H/2 -> H/4,
    H/4 -> 2, and the global half's H/2 -> H/2 once per image."""
    script = load_benchmark("throughput")
    vit = script.backbone("quick", torch.device("cpu")).eval()
    m = HTSViT(vit, keep_ratio=0.7)
    c = script.arithmetic_ceiling("quick", m)
    dim, hid = m.embed_dim, m.decision[0].hidden_dim
    n = embed_tokens(vit, torch.zeros(1, 3, *script.MODELS["quick"][1])).shape[1] - 1
    counts = [n] + [num_kept_tokens(n, r) for r in m.keep_ratios]
    h2, h4 = hid // 2, hid // 4
    macs = sum(t * (dim * hid + h2 * h2 + h2 * h4 + h4 * 2) + h2 * h2 for t in counts[:-1])
    assert (c["hts_gflops"] - c["bound_gflops"]) * 1e9 == pytest.approx(2 * macs, abs=1)
    assert c["ceiling"] == pytest.approx(c["bound_gflops"] / c["hts_gflops"])
    assert c["p"] == pytest.approx(0.7)
