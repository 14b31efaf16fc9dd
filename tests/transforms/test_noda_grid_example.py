import subprocess
import sys
from pathlib import Path

from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "noda_grid.py"


def test_noda_grid_example_writes_png(tmp_path):
    out = tmp_path / "grid.png"
    res = subprocess.run(
        [sys.executable, "-W", "error", str(SCRIPT), "--output", str(out), "--columns", "3",
         "--rows", "1"],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr
    with Image.open(out) as im:
        assert im.size == (3 * (128 + 4) + 4, 2 * (256 + 4) + 4)
