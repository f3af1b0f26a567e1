"""Checks of the book's structure: table of contents, notebook hygiene, configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
NOTEBOOKS = sorted((REPO_ROOT / "chapters").rglob("*.ipynb"))


def toc_files(node: object) -> list[str]:
    """Return every ``file`` entry of a Jupyter Book table of contents, depth first."""
    found: list[str] = []
    if isinstance(node, dict):
        if "file" in node:
            found.append(str(node["file"]))
        if "root" in node:
            found.append(str(node["root"]))
        for value in node.values():
            found.extend(toc_files(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(toc_files(item))
    return found


def resolve(entry: str) -> Path | None:
    for suffix in (".ipynb", ".md"):
        candidate = REPO_ROOT / f"{entry}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def test_every_toc_entry_exists() -> None:
    entries = toc_files(TOC)
    assert entries, "the table of contents is empty"
    missing = [entry for entry in entries if resolve(entry) is None]
    assert not missing, f"_toc.yml lists chapters that do not exist: {missing}"


def test_every_notebook_is_in_the_toc() -> None:
    listed = {resolve(entry) for entry in toc_files(TOC)}
    orphans = [str(nb.relative_to(REPO_ROOT)) for nb in NOTEBOOKS if nb not in listed]
    assert not orphans, f"notebooks missing from _toc.yml: {orphans}"


def test_book_configuration() -> None:
    assert CONFIG["execute"]["execute_notebooks"] == "cache"
    assert CONFIG["execute"]["allow_errors"] is False
    assert CONFIG["sphinx"]["config"]["nb_execution_raise_on_error"] is True
    assert CONFIG["launch_buttons"]["colab_url"].startswith("https://colab.research.google.com")
    assert CONFIG["repository"]["url"].startswith("https://github.com/")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_notebook_is_stripped_and_starts_with_the_colab_cell(notebook: Path) -> None:
    data = json.loads(notebook.read_text())
    cells = data["cells"]
    with_outputs = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and c["outputs"]]
    assert not with_outputs, f"{notebook.name}: cells {with_outputs} are stored with outputs"
    counted = [i for i, c in enumerate(cells) if c.get("execution_count") is not None]
    assert not counted, f"{notebook.name}: cells {counted} keep an execution count"
    first = cells[0]
    source = "".join(first["source"])
    assert first["cell_type"] == "code"
    assert "remove-cell" in first.get("metadata", {}).get("tags", [])
    assert '"google.colab" in sys.modules' in source
    assert CONFIG["repository"]["url"] in source, "the install URL must match _config.yml"
    assert data["metadata"]["kernelspec"]["name"] == "python3"
    titles = [
        c for c in cells if c["cell_type"] == "markdown" and "".join(c["source"]).startswith("# ")
    ]
    assert titles, f"{notebook.name} has no '# title' markdown cell"


ARCHITECTURE_CHAPTERS = sorted((REPO_ROOT / "chapters" / "architectures").glob("*.ipynb"))


@pytest.mark.parametrize(
    "notebook", ARCHITECTURE_CHAPTERS, ids=lambda p: str(p.relative_to(REPO_ROOT))
)
def test_architecture_chapter_calls_the_shared_helpers(notebook: Path) -> None:
    cells = json.loads(notebook.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    for call in ("book.architecture_setup(", "book.table1(", "book.letterboxed_covid_slice(",
                 "book.feature_maps(", "book.fine_tune_demo(", "book.plot_training_loss("):
        assert call in code, f"{notebook.name} does not call {call}...)"
    # the shared steps live in covidlib.book only (one place to change, e.g. the model input)
    for repeated in ("compare_with_paper(", "fit_first_fold(", "to_model_input(", " letterbox("):
        assert repeated not in code, f"{notebook.name} repeats {repeated}...) itself"
