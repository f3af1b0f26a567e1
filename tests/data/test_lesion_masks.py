"""`covidlib datasets download ct-lesion-masks`: offline, with a fake opener serving local
files in place of the Inf-Net repository; and the package table against the shared copy."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from covidlib.data.registry import LESION_MASK_SETS
from covidlib.data.sources import DownloadError, download_lesion_masks, pixel_digest

SPEC = LESION_MASK_SETS["ct-lesion-masks"]
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "ct-lesion-masks"


class _LocalOpener:
    """Serves the raw URLs of the pinned commit from a local folder (no network)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.prefix = SPEC.raw_url("")

    def open(self, request: urllib.request.Request, timeout: float = 0) -> io.BytesIO:
        url = request.full_url
        assert url.startswith(self.prefix), url
        path = self.folder / url[len(self.prefix):]
        if not path.is_file():
            raise urllib.error.URLError(f"no {path}")
        response = io.BytesIO(path.read_bytes())
        response.status = 200  # type: ignore[attr-defined]
        response.headers = {"Content-Length": str(path.stat().st_size)}  # type: ignore[attr-defined]
        response.getcode = lambda: 200  # type: ignore[attr-defined]
        return response


def _upstream(folder: Path, n: int = 2) -> pd.DataFrame:
    rows = []
    rng = np.random.default_rng(0)
    for k in range(n):
        image = folder / f"Dataset/Imgs/{k}.jpg"
        mask = folder / f"Dataset/GT/{k}.png"
        image.parent.mkdir(parents=True, exist_ok=True)
        mask.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (20, 30), dtype=np.uint8)).save(image, quality=90)
        labels = np.zeros((20, 30), np.uint8)
        labels[5:10, 5:15] = 1
        labels[12:15, 20:25] = 2
        Image.fromarray(labels).save(mask)
        rows.append({
            "id": f"medseg_{k:03d}", "src_image": f"Dataset/Imgs/{k}.jpg",
            "src_mask": f"Dataset/GT/{k}.png",
            "image_pixels_sha256": pixel_digest(np.asarray(Image.open(image).convert("L"))),
            "multiclass_pixels_sha256": pixel_digest(labels),
        })
    return pd.DataFrame(rows)


def test_download_writes_images_masks_and_licence(tmp_path: Path) -> None:
    rows = _upstream(tmp_path / "upstream")
    root = download_lesion_masks(root=tmp_path / "set", opener=_LocalOpener(tmp_path / "upstream"),
                                 rows=rows)
    mask = np.asarray(Image.open(root / "masks" / "medseg_001.png"))
    assert sorted(np.unique(mask).tolist()) == [0, 255]
    assert (root / "images" / "medseg_000.png").is_file()
    assert "non-commercial" in (root / "LICENSE.txt").read_text()
    assert len(pd.read_csv(root / "manifest.csv")) == 2
    # a complete copy is kept, without the network
    assert download_lesion_masks(root=root, opener=_LocalOpener(tmp_path / "none"),
                                 rows=rows) == root


def test_a_changed_upstream_file_is_refused_and_nothing_written(tmp_path: Path) -> None:
    rows = _upstream(tmp_path / "upstream")
    rows.loc[1, "multiclass_pixels_sha256"] = "0" * 64
    with pytest.raises(DownloadError, match="medseg_001"):
        download_lesion_masks(root=tmp_path / "set", opener=_LocalOpener(tmp_path / "upstream"),
                              rows=rows)
    assert not (tmp_path / "set").exists()


def test_table_matches_the_shared_copy() -> None:
    if not (SHARED / "images").is_dir():
        pytest.skip(f"{SHARED} not found")
    table = SPEC.rows()
    assert len(table) == 50
    for row in table.itertuples(index=False):
        image = np.asarray(Image.open(SHARED / "images" / f"{row.id}.png"))
        labels = np.asarray(Image.open(SHARED / "multiclass" / f"{row.id}.png"))
        assert pixel_digest(image) == row.image_pixels_sha256
        assert pixel_digest(labels) == row.multiclass_pixels_sha256
