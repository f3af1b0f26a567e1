"""Lazy re-exports for package ``__init__`` modules (PEP 562).

A domain package such as :mod:`covidlib.data.loaders` names its public objects once, in a table
from name to submodule; the submodule is imported only when a name is first used, so
``import covidlib.data.loaders`` stays cheap and never pulls in fastai for a command that lists
datasets.

Example:
    >>> getattr_, dir_ = lazy_exports("covidlib.utils", {"sha256_file": "covidlib.utils.fileio"})
    >>> getattr_("sha256_file").__name__
    'sha256_file'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for a package that re-exports ``exports`` lazily.

    Args:
        package: the package's ``__name__`` (for error messages).
        exports: public name -> the submodule that defines it.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
