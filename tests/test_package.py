import subprocess
import sys
import types

import pytest

import sureid


def test_version():
    assert sureid.__version__.count(".") == 2


OPTIONAL = ("timm", "torchvision", "onnx", "onnxruntime", "onnxscript")


def test_import_is_quiet_and_does_not_import_optional_deps():
    code = (
        "import sys, warnings; warnings.simplefilter('error'); import sureid; "
        f"eager = [m for m in {OPTIONAL!r} if m in sys.modules]; "
        "assert not eager, f'import sureid imported {eager}'"
    )
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == ""


def test_all_lists_every_public_name_once():
    assert len(sureid.__all__) == len(set(sureid.__all__))
    # public attributes other than submodules are exactly __all__
    names = {n for n, v in vars(sureid).items()
             if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert names == set(sureid.__all__) - {"__version__"}


@pytest.mark.parametrize("name", sureid.__all__)
def test_every_public_name_resolves(name):
    assert getattr(sureid, name) is not None


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sureid.nope  # noqa: B018


def test_require_names_the_extra():
    from sureid._optional import require

    with pytest.raises(ImportError, match=r"sureid\[definitely_missing_pkg\]"):
        require("definitely_missing_pkg")
