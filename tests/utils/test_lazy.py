"""Tests for covidlib.utils.lazy and for every package's table of lazy re-exports."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from covidlib.utils.lazy import lazy_exports

PACKAGES = ["covidlib.data", "covidlib.transforms", "covidlib.models", "covidlib.evaluate",
            "covidlib.engine"]


def test_lazy_exports_resolves_on_first_use() -> None:
    getattr_, dir_ = lazy_exports("pkg", {"sha256_file": "covidlib.utils.fileio"})
    from covidlib.utils.fileio import sha256_file

    assert getattr_("sha256_file") is sha256_file
    assert dir_() == ["sha256_file"]


def test_unknown_name_is_an_attribute_error_naming_the_package() -> None:
    getattr_, _ = lazy_exports("covidlib.example", {})
    with pytest.raises(AttributeError, match=r"'covidlib.example' has no attribute 'nope'"):
        getattr_("nope")
    # hasattr() and getattr(..., default) rely on AttributeError
    assert getattr(importlib.import_module("covidlib.data"), "nope", None) is None


@pytest.mark.parametrize("package", PACKAGES)
def test_every_export_exists_in_its_submodule(package: str) -> None:
    module = importlib.import_module(package)
    table: dict[str, str] = module._EXPORTS
    assert sorted(table) == module.__all__ == dir(module)
    wrong = [
        f"{name} -> {sub}"
        for name, sub in table.items()
        if not sub.startswith(package + ".") or not hasattr(importlib.import_module(sub), name)
    ]
    assert not wrong, f"{package}._EXPORTS names objects its submodules do not define: {wrong}"
    for name, sub in table.items():
        assert getattr(module, name) is getattr(importlib.import_module(sub), name)


def test_importing_a_package_imports_none_of_its_submodules() -> None:
    code = (
        "import sys; import " + ", ".join(PACKAGES) + "; "
        "print(sorted(m for m in sys.modules if m.startswith('covidlib.') and m.count('.') > 1"
        " and not m.startswith(('covidlib.utils.', 'covidlib.config.'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
