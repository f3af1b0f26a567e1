"""The package layout: imports run one way, counting imports inside functions.

Layers, lowest first. A module may import from its own layer's package or from a lower
layer, never from a higher one, and no two modules import each other in a circle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "covidlib"

# Package (first dotted part below covidlib) -> layer. Chapters, benchmarks and the CLI sit on
# top; evaluate's metrics module is a leaf the engine may import.
LAYERS: dict[str, int] = {
    "utils": 0,
    "config": 1,
    "transforms": 2,
    "data": 3,
    "models": 4,
    "evaluate.metrics": 5,
    "evaluate.intervals": 5,
    "engine": 6,
    "evaluate": 7,
    "explain": 7,
    "audit": 7,
    "grid": 8,
    "trust": 8,
    "book": 9,
    "cli": 10,
    "__main__": 10,
    "__init__": 1,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Every covidlib module ``path`` imports anywhere (module level or inside functions)."""
    found: set[str] = set()
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            if name in known:
                found.add(name)
    # The lazy export tables name their submodules as strings.
    text = path.read_text()
    if path.name == "__init__.py" and "_EXPORTS" in text:
        found |= {name for name in known if f'"{name}"' in text}
    return found - {module_name(path)}


def layer(module: str) -> tuple[int, str]:
    rest = module.removeprefix("covidlib").lstrip(".") or "__init__"
    for key in sorted(LAYERS, key=len, reverse=True):
        if rest == key or rest.startswith(key + "."):
            return LAYERS[key], key.split(".")[0]
    raise AssertionError(f"{module} is in no layer of tests/test_layout.py: add its package")


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imported_modules(path, known) for name, path in found.items()}


def test_every_module_has_a_layer() -> None:
    for name in modules():
        layer(name)


def test_imports_never_point_up() -> None:
    upward = []
    for module, targets in graph().items():
        if module.endswith("__init__") or module == "covidlib":
            continue
        own, own_package = layer(module)
        for target in targets:
            if target == "covidlib":
                continue
            rank, package = layer(target)
            if rank > own and package != own_package:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that point up the layers:\n" + "\n".join(sorted(upward))


def test_no_import_cycles() -> None:
    edges = {m: {t for t in ts if not t.endswith("__init__") and t != "covidlib"}
             for m, ts in graph().items() if m != "covidlib"}
    # Package __init__ files re-export lazily: their edges are not imports at load time.
    edges = {m: ts for m, ts in edges.items() if not modules()[m].name == "__init__.py"}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in edges:
                continue
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_import_covidlib_is_light() -> None:
    code = (
        "import sys, covidlib, covidlib.config\n"
        "heavy = sorted(m for m in ('torch', 'fastai', 'pandas', 'timm') if m in sys.modules)\n"
        "ours = sorted(m for m in sys.modules if m.startswith('covidlib'))\n"
        "print(heavy, ours)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_library_code_imports_exact_submodules() -> None:
    """``from covidlib.data import x`` is for chapters and users; inside the library it would
    hide the real dependency (and any cycle) behind the package's lazy export table."""
    found = modules()
    lazy = {name for name, path in found.items()
            if path.name == "__init__.py" and "_EXPORTS" in path.read_text()}
    offenders = []
    for name, path in found.items():
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in lazy:
                submodules = {f"{node.module}.{alias.name}" for alias in node.names}
                if not submodules <= set(found):
                    offenders.append(f"{name}: from {node.module} import ...")
    assert not offenders, "\n".join(offenders)


def test_no_module_is_over_600_lines() -> None:
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text().splitlines())) > 600}
    assert not long, f"split these by concern: {long}"
