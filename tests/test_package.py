import importlib
import pkgutil
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


SUBPACKAGES = sorted(m.name for m in pkgutil.walk_packages(sureid.__path__, "sureid.")
                     if m.ispkg)


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_subpackage_all_names_what_it_defines_once(package):
    # ``from sureid.x import *`` fails on a name listed in __all__ but never imported
    mod = importlib.import_module(package)
    assert len(mod.__all__) == len(set(mod.__all__))
    assert [n for n in mod.__all__ if not hasattr(mod, n)] == []


def test_require_names_the_extra():
    from sureid._optional import require

    with pytest.raises(ImportError, match=r"sureid\[definitely_missing_pkg\]"):
        require("definitely_missing_pkg")
