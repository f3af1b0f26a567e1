"""Write the repository URL of ``_config.yml`` into the Colab install cells and CITATION.cff.

``repository.url`` in ``_config.yml`` is the one place a fork changes: the book's launch and
repository buttons read it directly, and this script copies it into the first cell of each
notebook (Colab opens a notebook on its own, without the configuration, so the cell must carry
the URL), and into ``CITATION.cff``. ``make colab-url`` runs it; the tests fail while a
cell disagrees.

Usage: ``python tools/sync_repository_url.py [--check]`` from the repository root.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
INSTALL = re.compile(r"covidlib @ git\+https://[^\"\\\s]+")
CITATION_URL = re.compile(r'^(\s*(?:repository-code|url): )"[^"]*"', re.M)


def configured_url() -> str:
    """The ``repository.url`` of ``_config.yml``, without a trailing slash or ``.git``."""
    url = str(yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"])
    return url.rstrip("/").removesuffix(".git")


def main(argv: list[str]) -> int:
    url = configured_url()
    stale = []
    targets = sorted((ROOT / "chapters").rglob("*.ipynb")) + [ROOT / "CITATION.cff"]
    for target in targets:
        text = target.read_text()
        if target.suffix == ".ipynb":
            updated = INSTALL.sub(f"covidlib @ git+{url}", text)
        else:
            updated = CITATION_URL.sub(lambda m: f'{m[1]}"{url}"', text)
        if updated != text:
            stale.append(target.relative_to(ROOT))
            if "--check" not in argv:
                temporary = target.with_name(target.name + ".tmp")
                temporary.write_text(updated)
                temporary.replace(target)
    verb = "differs from" if "--check" in argv else "now points to"
    for path in stale:
        print(f"{path}: {verb} {url}")
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
