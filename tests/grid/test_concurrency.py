"""Runners started together on an empty data folder build the phantom and a letterbox cache
once: the first builds under a lock, the others wait and find it built."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PHANTOM = """
import os, sys
from covidlib.data.phantom import generate_phantom
out = generate_phantom(sys.argv[1], n=16, seed=1)
print(os.stat(out).st_ino)
"""

CACHE = """
import sys
from covidlib.data.index import index_dataset
from covidlib.data.cache import letterbox_cache
images = index_dataset("phantom", sys.argv[1]).images
print(letterbox_cache(images, (24, 16), dataset="phantom", cache_dir=sys.argv[2]).built)
"""


def _together(script: str, *args: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    processes = [subprocess.Popen([sys.executable, "-c", script, *args], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(2)]
    results = [process.communicate(timeout=300) for process in processes]
    assert [p.returncode for p in processes] == [0, 0], results
    return [out.strip() for out, _ in results]


def test_phantom_is_generated_once(tmp_path: Path) -> None:
    inodes = _together(PHANTOM, str(tmp_path / "phantom"))
    assert len(set(inodes)) == 1  # nobody replaced the folder another one had built
    assert sorted(p.name for p in tmp_path.iterdir()) == ["phantom"]


def test_letterbox_cache_is_built_once(tiny_phantom: Path, tmp_path: Path) -> None:
    built = _together(CACHE, str(tiny_phantom), str(tmp_path / "cache"))
    assert sorted(built) == ["False", "True"]
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
