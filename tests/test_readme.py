"""Every ```python block of README.md runs as written (in order, sharing one namespace)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_blocks():
    assert len(_blocks()) >= 4


def test_readme_python_blocks_run(tmp_path, monkeypatch, capsys):
    pytest.importorskip("timm")
    pytest.importorskip("torchvision")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    for i, code in enumerate(_blocks()):
        try:
            exec(compile(code, f"README.md python block {i + 1}", "exec"), namespace)
        except Exception as e:  # pragma: no cover - the message says which block
            raise AssertionError(f"README python block {i + 1} failed: {e!r}\n{code}") from e
    assert namespace["emb"].shape == (8, 192)
    assert namespace["out"].features.shape == (4, 192)
    assert (tmp_path / "final.pt").is_file()
