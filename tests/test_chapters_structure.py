"""Every chapter teaches the same way: goals, prerequisites and a time up front; a summary, a
self-check and exercises with solutions at the end; citations that resolve; glossary terms
that exist; workshop routes whose times add up."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((REPO_ROOT / "chapters").rglob("*.ipynb"))
MARKDOWN_PAGES = sorted((REPO_ROOT / "chapters").rglob("*.md"))
BIB_KEYS = set(re.findall(r"^@\w+\{([^,\s]+),", (REPO_ROOT / "references.bib").read_text(), re.M))
GLOSSARY = (REPO_ROOT / "chapters" / "glossary.md").read_text()
TERMS = {m.strip().lower() for m in re.findall(r"^([A-Za-z][^\n]*)\n  \S", GLOSSARY, re.M)}
ESTIMATE = re.compile(r"\*\*Estimated time\.\*\* About (\d+) minutes")
# {cite}`a,b`, {cite:t}`a` and {cite:p}`a` all name keys of references.bib
CITE = re.compile(r"\{cite(?::\w+)?\}`([^`]+)`")
TERM = re.compile(r"\{term\}`([^`<]+?)(?:\s*<([^>]+)>)?`")


def markdown_of(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def chapter_id(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


@pytest.mark.parametrize("notebook", CHAPTERS, ids=chapter_id)
def test_chapter_opens_with_goals_prerequisites_and_time(notebook: Path) -> None:
    opening = "\n".join(markdown_of(notebook)[:3])
    for needed in ("Learning goals", "**Prerequisites.**", "**Estimated time.**"):
        assert needed in opening, f"{notebook.name}: the first cells lack {needed!r}"
    assert ESTIMATE.search(opening), f"{notebook.name}: 'Estimated time' gives no minutes"


@pytest.mark.parametrize("notebook", CHAPTERS, ids=chapter_id)
def test_chapter_closes_with_summary_self_check_and_exercises(notebook: Path) -> None:
    text = "\n".join(markdown_of(notebook))
    assert "## Summary" in text, f"{notebook.name} has no '## Summary'"
    assert "## Self-check" in text and ":class: dropdown" in text, f"{notebook.name}: no self-check"
    exercises = re.findall(r"```\{exercise\}\n:label: (\S+)", text)
    solved = set(re.findall(r"```\{solution(?:-start)?\} (\S+)", text))
    assert 2 <= len(exercises) <= 4, f"{notebook.name}: {len(exercises)} exercises, want 2-4"
    assert len(set(exercises)) == len(exercises)
    unsolved = set(exercises) - solved
    assert not unsolved, f"{notebook.name}: exercises without solution: {unsolved}"
    assert text.count("{solution-start}") == text.count("{solution-end}")


def test_exercise_labels_are_unique_across_the_book() -> None:
    labels = [label for nb in CHAPTERS for text in markdown_of(nb)
              for label in re.findall(r"```\{exercise\}\n:label: (\S+)", text)]
    assert len(labels) == len(set(labels))


@pytest.mark.parametrize("notebook", CHAPTERS, ids=chapter_id)
def test_chapter_cites_and_every_citation_resolves(notebook: Path) -> None:
    keys = [key.strip() for found in CITE.findall("\n".join(markdown_of(notebook)))
            for key in found.split(",")]
    assert keys, f"{notebook.name} cites nothing with {{cite}}"
    unknown = set(keys) - BIB_KEYS
    assert not unknown, f"{notebook.name} cites keys missing from references.bib: {unknown}"


@pytest.mark.parametrize("page", CHAPTERS + MARKDOWN_PAGES, ids=chapter_id)
def test_glossary_terms_and_citations_exist(page: Path) -> None:
    text = "\n".join(markdown_of(page)) if page.suffix == ".ipynb" else page.read_text()
    used = {(target or shown).strip().lower() for shown, target in TERM.findall(text)}
    assert not used - TERMS, f"{page.name} links terms missing from the glossary: {used - TERMS}"
    keys = {key.strip() for found in CITE.findall(text) for key in found.split(",")}
    assert not keys - BIB_KEYS, f"{page.name} cites unknown keys: {keys - BIB_KEYS}"


def test_the_evidence_standard_is_stated_once_in_the_results_chapter() -> None:
    rule = ("A beats B when the 95% interval of the paired difference\nexcludes zero; "
            "otherwise the data cannot tell them apart.")
    holders = [nb.name for nb in CHAPTERS if rule in "\n".join(markdown_of(nb))]
    assert holders == ["results.ipynb"]


def test_workshop_routes_add_up_with_the_chapters_times() -> None:
    times = {}
    for notebook in CHAPTERS:
        found = ESTIMATE.search("\n".join(markdown_of(notebook)[:3]))
        assert found
        name = notebook.relative_to(REPO_ROOT / "chapters").with_suffix("").as_posix()
        times[name] = int(found[1])
    routes = (REPO_ROOT / "chapters" / "workshop" / "routes.md").read_text()
    for table in routes.split("| Block | Chapter | Minutes |")[1:]:
        total = 0
        for chapter, minutes in re.findall(r"\]\(\.\./([\w/-]+)\.ipynb\) \| (\d+) \|", table):
            assert times[chapter] == int(minutes), f"routes.md: {chapter} is {times[chapter]} min"
            total += int(minutes)
        total += sum(int(m) for m in re.findall(r"\| \*[^*]+\* \| (\d+) \|", table))
        stated = re.search(r"\*\*Total\*\* \| \*\*(\d+)\*\*", table)
        assert stated and int(stated[1]) == total, f"routes.md: a route's total is not {total}"


@pytest.mark.parametrize("term", ["sensitivity", "specificity", "letterbox", "trust ratio",
                                  "fold", "leakage", "pseudo-patient", "grad-cam",
                                  "pointing game"])
def test_glossary_defines_the_course_terms(term: str) -> None:
    assert term in TERMS


def test_colab_install_cells_follow_the_configured_repository_url() -> None:
    import subprocess
    import sys

    check = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "sync_repository_url.py"),
                            "--check"], capture_output=True, text=True)
    assert check.returncode == 0, f"run `make colab-url`: {check.stdout}"


def test_the_after_build_check_finds_leaks_and_cdn_math(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "check_built_book", REPO_ROOT / "tools" / "check_built_book.py")
    assert spec and spec.loader
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    page = tmp_path / "page.html"
    output = ('<div class="cell docutils container"><div class="cell_output docutils container">'
              "<pre>{}</pre></div></div>")
    page.write_text(
        '<script src="https://cdn.example.org/mathjax/tex-chtml.js"></script>'
        '<span class="math notranslate">\\(x\\)</span>'
        + output.format("/home/someone/x.py:3: UserWarning: careful") + output.format("fine"))
    found = " | ".join(check.static_problems(page, tmp_path))
    for expected in ("from the network", "bundled MathJax", "Python warning", "absolute path"):
        assert expected in found
    page.write_text('<script src="_static/mathjax/tex-chtml.js"></script>'
                    '<span class="math notranslate">\\(x\\)</span>' + output.format("0.93"))
    assert check.static_problems(page, tmp_path) == []
