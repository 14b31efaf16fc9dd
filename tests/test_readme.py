"""Every ```python block of README.md runs on its own (a fresh interpreter) and prints."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


# a line of a block -> what its output must contain
EXPECTED = {
    "emb = model.eval()(images)": "embeddings (8, 192)",
    "NODA(": "training image (3, 256, 128)",
    "camera_pairs=True": "query camera 0 -> gallery camera 1",
    "reid.save(": "features (4, 192)",
    "sureid.pretrained(": "64-d, 12 blocks, input (96, 48)",
}


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_blocks():
    assert len(_blocks()) >= 5


@pytest.mark.parametrize("i", range(len(_blocks())), ids=lambda i: f"block{i + 1}")
def test_readme_python_block_runs_alone_and_prints(i, tmp_path):
    code = _blocks()[i]
    for extra in ("timm", "torchvision"):
        if re.search(rf"^\s*(import|from) {extra}\b", code, flags=re.M):
            pytest.importorskip(extra)
    # the shipped weights are found wherever sureid is installed from
    env = {**os.environ, "SUREID_WEIGHTS_DIR": str(ROOT / "examples" / "pretrained"),
           "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-W", "error::DeprecationWarning:sureid",
                          "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, f"README python block {i + 1} failed:\n{out.stderr[-3000:]}"
    assert out.stdout.strip(), f"README python block {i + 1} prints nothing"
    print(out.stdout)
    for marker, printed in EXPECTED.items():  # what the block computes is what it prints
        if marker in code:
            assert printed in out.stdout, (marker, out.stdout)
    if "reid.save(" in code:
        assert (tmp_path / "final.pt").is_file()

