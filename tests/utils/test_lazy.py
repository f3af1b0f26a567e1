"""Tests for covidlib.utils.lazy and for every package's table of lazy re-exports."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from covidlib.utils.lazy import lazy_exports

ROOT = Path(__file__).resolve().parents[2] / "covidlib"
# Every package whose names load lazily (an _EXPORTS table), found on disk, not listed by hand.
PACKAGES = sorted(
    "covidlib." + init.parent.relative_to(ROOT).as_posix().replace("/", ".")
    for init in ROOT.glob("*/__init__.py") if "_EXPORTS: dict" in init.read_text()
    and init.parent.name != "book"
)
# Packages that import their few light modules at once and list their names in __all__.
EAGER = ["covidlib.config", "covidlib.data.phantom", "covidlib.book"]
# The public API's budget: names across the subpackages' export tables.
MOST_PUBLIC_NAMES = 150


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


def test_every_package_is_covered() -> None:
    assert {"covidlib.data", "covidlib.engine", "covidlib.explain", "covidlib.audit",
            "covidlib.grid"} <= set(PACKAGES)


@pytest.mark.parametrize("package", EAGER)
def test_every_name_of_an_eager_package_exists(package: str) -> None:
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing and len(set(module.__all__)) == len(module.__all__), missing


def test_the_public_api_stays_small() -> None:
    tables = {package: importlib.import_module(package)._EXPORTS for package in PACKAGES}
    counted = sum(len(table) for table in tables.values())
    counted += len(importlib.import_module("covidlib.config").__all__)
    assert counted <= MOST_PUBLIC_NAMES, {p: len(t) for p, t in tables.items()}
    # one import path each: no name is exported by two packages
    names = [name for table in tables.values() for name in table]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})
