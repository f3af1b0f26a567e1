"""Check the built book after ``make book``: pages read offline and leak nothing.

For every HTML page under the build folder (default ``_build/html``):

* no script or stylesheet is loaded from the network (MathJax ships in ``_static/mathjax``),
  and a page with formulas loads the bundled MathJax, which exists;
* no cell output shows a Python warning, an absolute path of the build machine or a
  traceback;
* in a real headless browser (Chromium, with every host name unresolvable, so offline), the
  rendered text of the page holds no raw ``\\(`` or ``\\[``: MathJax typeset every formula.
  Where Chromium is missing the browser part is skipped with a one-line reason
  (``apt-get install chromium`` provides it on Debian).

Usage: ``python tools/check_built_book.py [BUILD_HTML_DIR]``; exit code 1 lists the problems.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REMOTE_ASSET = re.compile(r'<(?:script|link)\b[^>]*(?:src|href)="(?:https?:)?//[^"]+"[^>]*>')
LOCAL_MATHJAX = re.compile(r'<script[^>]*src="[^"]*_static/mathjax/tex-chtml\.js"')
HAS_MATH = re.compile(r'class="math[ "]')
# what a cell output must never show; an output block runs from its cell_output div to the
# next cell, section or the end of the article
OUTPUT_START = '<div class="cell_output'
OUTPUT_END = re.compile(r'<div class="cell[ "]|<section\b|</section>|</article>')
LEAKS = {
    "a Python warning": re.compile(r"\b\w*Warning: |warnings\.warn\("),
    "a traceback": re.compile(r"Traceback \(most recent call last\)"),
    "an absolute path": re.compile(r"(?<![\w.])/(?:home|work|tmp|root|Users|private|var/folders)/"),
    "a nice/niceness setting": re.compile(r"\bnice -n \d+|\bnice \d+\b"),
}
RAW_TEX = re.compile(r"\\\(|\\\[")
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    """The first Chromium-like browser on PATH, or None."""
    return next((path for name in BROWSER_NAMES if (path := shutil.which(name))), None)


def static_problems(page: Path, root: Path) -> list[str]:
    """Problems visible in a page's HTML source."""
    text = page.read_text(errors="replace")
    problems = [f"loads {m[:120]} from the network" for m in REMOTE_ASSET.findall(text)]
    if HAS_MATH.search(text) and not LOCAL_MATHJAX.search(text):
        problems.append("has formulas but does not load the bundled MathJax")
    for chunk in text.split(OUTPUT_START)[1:]:
        end = OUTPUT_END.search(chunk)
        block = chunk[:end.start()] if end else chunk
        block = block[block.find(">") + 1:]  # the rest of the cell_output tag itself
        shown = html.unescape(re.sub(r"<[^>]+>", "", block))
        for what, pattern in LEAKS.items():
            if found := pattern.search(shown):
                context = shown[max(0, found.start() - 40):found.end() + 40].replace("\n", " ")
                problems.append(f"a cell output shows {what}: ...{context}...")
    return problems


def rendered_text(browser: str, page: Path, profile: Path) -> str:
    """The page's visible text after its scripts ran, with the network off."""
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
        "--allow-file-access-from-files", "--virtual-time-budget=15000", "--dump-dom",
        page.as_uri(),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    # code is shown as typed (MathJax skips it too), so a regex in a code cell is no formula
    dom = re.sub(r"<(script|style|noscript|mjx-assistive-mml|pre|code)\b.*?</\1>", "", dom,
                 flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


def browser_problems(browser: str, page: Path) -> list[str]:
    """Raw TeX left in the rendered page."""
    with tempfile.TemporaryDirectory() as profile:
        text = rendered_text(browser, page, Path(profile))
    if not text.strip():
        return ["the browser rendered no text"]
    found = RAW_TEX.search(text)
    if found:
        context = text[max(0, found.start() - 30):found.end() + 50].replace("\n", " ")
        return [f"raw TeX after rendering: ...{context.strip()}..."]
    return []


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else "_build/html").resolve()
    pages = sorted(p for p in root.rglob("*.html")
                   if not {"_static", "_sources", "_images"} & set(p.relative_to(root).parts)
                   and p.name not in {"genindex.html", "search.html"})
    if not pages:
        print(f"{root}: no built pages; run `make book` first")
        return 2
    problems = {page: static_problems(page, root) for page in pages}
    if not (root / "_static" / "mathjax" / "tex-chtml.js").is_file():
        problems[root] = ["_static/mathjax/tex-chtml.js is missing (sphinx-mathjax-offline)"]
    browser = find_browser()
    if browser is None:
        print("check_built_book: browser check skipped: no Chromium on PATH "
              "(apt-get install chromium)")
    else:
        with_math = [p for p in pages if HAS_MATH.search(p.read_text(errors="replace"))]
        with ThreadPoolExecutor(max_workers=2) as pool:
            rendered = list(pool.map(lambda p: browser_problems(browser, p), with_math))
            for page, found in zip(with_math, rendered, strict=True):
                problems[page] = problems.get(page, []) + found
        print(f"check_built_book: {len(with_math)} pages with formulas rendered offline "
              f"in {Path(browser).name}")
    bad = {page: found for page, found in problems.items() if found}
    for page, found in bad.items():
        for problem in found:
            print(f"{page.relative_to(root) if page != root else root}: {problem}")
    print(f"check_built_book: {len(pages)} pages, {sum(map(len, bad.values()))} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
