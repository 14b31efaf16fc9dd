import subprocess
import sys

import pytest

import sureid


def test_version():
    assert sureid.__version__.count(".") == 2


def test_import_is_quiet_and_does_not_import_optional_deps():
    code = (
        "import sys, warnings; warnings.simplefilter('error'); import sureid; "
        "assert 'timm' not in sys.modules and 'torchvision' not in sys.modules, 'eager import'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == ""


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
