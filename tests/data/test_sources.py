"""Tests for covidlib.data.sources: ensure_dataset, and downloads against a local HTTP server
(no internet needed)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import socket
import threading
import urllib.error
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from covidlib.data.index import index_dataset
from covidlib.data.registry import DATASETS, CountVariant, RemoteFile
from covidlib.data.sources import DownloadError, download_dataset, download_file, ensure_dataset

MakeTree = Callable[..., Path]  # the make_tree fixture of conftest.py


class _Server:
    """Files served from memory; honours Range; can cut one response in half."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.ranges: list[str | None] = []
        self.cut_next = False
        self.ignore_range = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                data = server.files.get(self.path)
                server.ranges.append(self.headers.get("Range"))
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                header = self.headers.get("Range")
                if header and not server.ignore_range:
                    start = int(header.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_next:
                    server.cut_next = False
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()


@pytest.fixture()
def server() -> Iterator[_Server]:
    instance = _Server()
    yield instance
    instance.httpd.shutdown()
    instance.httpd.server_close()


PAYLOAD = bytes(range(256)) * 400  # 100 KiB


def test_download_file_plain_and_checksum(server: _Server, tmp_path: Path) -> None:
    server.files["/a.bin"] = PAYLOAD
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    target = download_file(f"{server.url}/a.bin", tmp_path / "a.bin", sha256=digest)
    assert target.read_bytes() == PAYLOAD
    assert not (tmp_path / "a.bin.part").exists()


def test_download_file_checksum_mismatch_removes_file(server: _Server, tmp_path: Path) -> None:
    server.files["/a.bin"] = PAYLOAD
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_file(f"{server.url}/a.bin", tmp_path / "a.bin", sha256="0" * 64)
    assert not (tmp_path / "a.bin").exists()


def test_interrupted_download_resumes_with_range(server: _Server, tmp_path: Path) -> None:
    server.files["/big.bin"] = PAYLOAD
    server.cut_next = True
    with pytest.raises(DownloadError, match="resume"):
        download_file(f"{server.url}/big.bin", tmp_path / "big.bin", timeout=5)
    part = tmp_path / "big.bin.part"
    assert 0 < part.stat().st_size < len(PAYLOAD) and not (tmp_path / "big.bin").exists()
    have = part.stat().st_size
    download_file(f"{server.url}/big.bin", tmp_path / "big.bin", timeout=5)
    assert (tmp_path / "big.bin").read_bytes() == PAYLOAD
    assert server.ranges == [None, f"bytes={have}-"]


def test_partial_file_is_completed_or_restarted(server: _Server, tmp_path: Path) -> None:
    server.files["/x.bin"] = PAYLOAD
    (tmp_path / "x.bin.part").write_bytes(PAYLOAD[:1000])
    download_file(f"{server.url}/x.bin", tmp_path / "x.bin")
    assert (tmp_path / "x.bin").read_bytes() == PAYLOAD
    server.ignore_range = True  # a server without Range support sends everything again
    (tmp_path / "y.bin.part").write_bytes(PAYLOAD[:1000])
    server.files["/y.bin"] = PAYLOAD
    download_file(f"{server.url}/y.bin", tmp_path / "y.bin")
    assert (tmp_path / "y.bin").read_bytes() == PAYLOAD
    server.ignore_range = False
    (tmp_path / "z.bin.part").write_bytes(PAYLOAD)  # complete part: server answers 416
    server.files["/z.bin"] = PAYLOAD
    download_file(f"{server.url}/z.bin", tmp_path / "z.bin")
    assert (tmp_path / "z.bin").read_bytes() == PAYLOAD


def test_offline_fails_at_once_naming_url_and_folder(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/CT_COVID.zip"
    with pytest.raises(DownloadError) as caught:
        download_file(url, tmp_path / "dl" / "CT_COVID.zip", timeout=2)
    assert url in str(caught.value) and str(tmp_path / "dl") in str(caught.value)


class _OfflineOpener:
    def open(self, request: object, timeout: float | None = None) -> object:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def test_offline_dataset_download_messages(tmp_path: Path) -> None:
    root = tmp_path / "covid19-ct"
    with pytest.raises(DownloadError) as caught:
        download_dataset("covid19-ct", root, opener=_OfflineOpener())
    message = str(caught.value)
    assert (
        "raw.githubusercontent.com/UCSD-AI4H/COVID-CT" in message and "name resolution" in message
    )
    assert not root.exists()
    with mock.patch.dict(os.environ, {"KAGGLE_USERNAME": "me", "KAGGLE_KEY": "key"}):
        with pytest.raises(DownloadError) as caught:
            download_dataset("sars-cov-2-ct", tmp_path / "sars", opener=_OfflineOpener())
    message = str(caught.value)
    assert "kaggle.com/datasets/plameneduardo/sarscov2-ctscan-dataset" in message
    assert str(tmp_path / "sars" / "COVID") in message
    with mock.patch.dict(os.environ, {"KAGGLE_USERNAME": "", "KAGGLE_CONFIG_DIR": str(tmp_path)}):
        with pytest.raises(DownloadError, match="codeload.github.com/dwaipayan05/CovCNN-WebApp"):
            download_dataset("sars-cov-2-ct", tmp_path / "sars", opener=_OfflineOpener())
    assert not (tmp_path / "sars").exists()


def _mirror_archive(images: dict[str, bytes], extra: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("CovCNN-WebApp-1b912a4b/README.md", b"not an image")
        for relpath, data in {**images, **extra}.items():
            bundle.writestr(f"CovCNN-WebApp-1b912a4b/Dataset/{relpath}", data)
    return buffer.getvalue()


def _png(value: int) -> bytes:
    image = io.BytesIO()
    Image.fromarray(np.full((6, 9), value, np.uint8)).save(image, format="PNG")
    return image.getvalue()


@pytest.fixture
def sars_mirror(server: _Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
                ) -> dict[str, bytes]:
    """A tiny SARS-CoV-2 CT mirror (2 COVID, 1 non-COVID, one duplicate pair) on the server."""
    images = {"COVID/Covid (1).png": _png(10), "COVID/Covid (2).png": _png(10),
              "non-COVID/Non-Covid (1).png": _png(200)}
    table = {relpath: hashlib.sha256(data).hexdigest() for relpath, data in images.items()}
    spec = DATASETS["sars-cov-2-ct"]
    assert spec.mirror is not None
    mirror = dataclasses.replace(spec.mirror, url=f"{server.url}/archive.zip")
    monkeypatch.setattr(type(mirror), "checksum_table", lambda self: dict(table))
    monkeypatch.setitem(DATASETS, "sars-cov-2-ct", dataclasses.replace(
        spec, mirror=mirror, expected_counts=(CountVariant("tiny", 2, 1),)))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    server.files["/archive.zip"] = _mirror_archive(images, {"COVID/notes.txt": b"x"})
    return images


def test_sars_mirror_without_kaggle_is_extracted_and_verified(
    server: _Server, sars_mirror: dict[str, bytes], tmp_path: Path
) -> None:
    root = download_dataset("sars-cov-2-ct", tmp_path / "sars")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == ["sars"]
    for relpath, data in sars_mirror.items():
        assert (root / relpath).read_bytes() == data
    assert not (root / "COVID" / "notes.txt").exists()  # not in the table: not extracted
    assert index_dataset("sars-cov-2-ct", root).counts() == {"covid": 2, "non_covid": 1}


@pytest.mark.parametrize("damage", ["changed", "missing", "garbage"])
def test_sars_mirror_damaged_archive_leaves_nothing(
    server: _Server, sars_mirror: dict[str, bytes], tmp_path: Path, damage: str
) -> None:
    images = dict(sars_mirror)
    if damage == "changed":
        images["COVID/Covid (2).png"] = _png(99)
        server.files["/archive.zip"] = _mirror_archive(images, {})
    elif damage == "missing":
        del images["non-COVID/Non-Covid (1).png"]
        server.files["/archive.zip"] = _mirror_archive(images, {})
    else:
        server.files["/archive.zip"] = b"this is not a zip"
    expected = {"changed": r"COVID/Covid \(2\)\.png .* does not match its recorded sha256",
                "missing": r"lacks 1 of the 3 images .*first: non-COVID/Non-Covid \(1\)\.png",
                "garbage": "is not a readable zip archive"}[damage]
    with pytest.raises(DownloadError, match=expected):
        download_dataset("sars-cov-2-ct", tmp_path / "sars")
    assert not (tmp_path / "sars").exists()
    assert not list((tmp_path / ".sars.download").glob("archive.zip*"))  # fetched again next time


def test_file_url_works(tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(PAYLOAD)
    assert download_file(source.as_uri(), tmp_path / "out.bin").read_bytes() == PAYLOAD


def _zip_of_images(folder: str, names: list[str], nested: bool) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for i, name in enumerate(names):
            image = io.BytesIO()
            Image.fromarray(np.full((6, 9), i * 30, np.uint8)).save(image, format="PNG")
            bundle.writestr(f"{folder}/{name}" if nested else name, image.getvalue())
    return buffer.getvalue()


def _tiny_covid_ct(server: _Server, monkeypatch: pytest.MonkeyPatch, n_non: int = 3) -> None:
    covid = ["a%0.png", "a%1.png"]
    server.files["/CT_COVID.zip"] = _zip_of_images("CT_COVID", covid, nested=True)
    server.files["/CT_NonCOVID.zip"] = _zip_of_images(
        "CT_NonCOVID", [f"{i}.png" for i in range(n_non)], nested=False
    )
    server.files["/trainCT_COVID.txt"] = "\n".join(covid).encode()
    spec = dataclasses.replace(
        DATASETS["covid19-ct"],
        files=(
            RemoteFile(f"{server.url}/CT_COVID.zip", "CT_COVID.zip", extract=True),
            RemoteFile(f"{server.url}/CT_NonCOVID.zip", "CT_NonCOVID.zip", extract=True),
            RemoteFile(f"{server.url}/trainCT_COVID.txt", "Data-split/COVID/trainCT_COVID.txt"),
        ),
        expected_counts=(CountVariant("tiny", 2, 3),),
    )
    monkeypatch.setitem(DATASETS, "covid19-ct", spec)


def test_download_dataset_extracts_validates_and_renames(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tiny_covid_ct(server, monkeypatch)
    (tmp_path / "covid19-ct").mkdir()
    (tmp_path / "covid19-ct" / ".DS_Store").write_bytes(b"litter")  # replaced, not refused
    root = download_dataset("covid19-ct", tmp_path / "covid19-ct")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["covid19-ct"]  # no leftovers
    assert not (root / ".DS_Store").exists()
    index = index_dataset("covid19-ct", root)
    assert index.counts() == {"covid": 2, "non_covid": 3} and index.problems.empty
    assert index.summary()["splits"]["train"]["covid"] == 2
    requests = len(server.ranges)
    assert download_dataset("covid19-ct", root) == root  # already there: nothing fetched
    assert len(server.ranges) == requests


def test_download_dataset_wrong_counts_leaves_no_folder(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tiny_covid_ct(server, monkeypatch, n_non=2)
    with pytest.raises(DownloadError, match="holds 2/2 COVID/non-COVID files; expected tiny: 2/3"):
        download_dataset("covid19-ct", tmp_path / "covid19-ct")
    assert not (tmp_path / "covid19-ct").exists()


def test_download_dataset_refuses_foreign_folder(tmp_path: Path) -> None:
    root = tmp_path / "covid19-ct"
    root.mkdir()
    (root / "something.txt").write_text("mine")
    with pytest.raises(DownloadError, match="not a complete covid19-ct copy"):
        download_dataset("covid19-ct", root, opener=_OfflineOpener())
    assert (root / "something.txt").read_text() == "mine"


def test_manual_kaggle_zip_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = dataclasses.replace(
        DATASETS["sars-cov-2-ct"], expected_counts=(CountVariant("tiny", 1, 2),)
    )
    monkeypatch.setitem(DATASETS, "sars-cov-2-ct", spec)
    root = tmp_path / "sars"
    root.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for member in ("COVID/Covid (1).png", "non-COVID/Non-Covid (1).png", "non-COVID/b.png"):
            image = io.BytesIO()
            Image.new("RGB", (5, 4)).save(image, format="PNG")
            bundle.writestr(member, image.getvalue())
    (root / "archive.zip").write_bytes(buffer.getvalue())
    assert download_dataset("sars-cov-2-ct", root, opener=_OfflineOpener()) == root
    assert index_dataset("sars-cov-2-ct", root).summary()["counts_match"] == "tiny"


# ---------------------------------------------------------------- ensure_dataset


def test_ensure_dataset_real_missing_says_how(tmp_path: Path, make_tree: MakeTree) -> None:
    with pytest.raises(FileNotFoundError, match="covidlib datasets download covid19-ct"):
        ensure_dataset("covid19-ct")
    root = make_tree(tmp_path / "ok", "covid19-ct")
    assert ensure_dataset("covid19-ct", root) == root


def test_ensure_dataset_phantom_uses_profile_size(monkeypatch: pytest.MonkeyPatch) -> None:
    from covidlib.data.phantom import _disk

    calls = []

    def fake_generate(out_dir: Path, n: int = 200, **kwargs: object) -> Path:
        calls.append((Path(out_dir), n))
        return Path(out_dir)

    monkeypatch.setattr(_disk, "generate_phantom", fake_generate)
    monkeypatch.setenv("COVIDLIB_PROFILE", "quick")
    root = ensure_dataset("phantom")
    assert calls == [(Path(os.environ["COVIDLIB_DATA"]) / "phantom", 200)] and root == calls[0][0]


def test_ensure_dataset_extracts_zips_placed_in_the_root(tmp_path: Path) -> None:
    root = tmp_path / "covid19-ct"
    root.mkdir()
    for folder in ("CT_COVID", "CT_NonCOVID"):
        (root / f"{folder}.zip").write_bytes(_zip_of_images(folder, ["a.png"], nested=False))
    assert ensure_dataset("covid19-ct", root) == root
    assert (root / "CT_COVID" / "a.png").is_file() and (root / "CT_NonCOVID" / "a.png").is_file()


def test_download_phantom_generates_it_and_refuses_a_foreign_root(tmp_path: Path) -> None:
    import covidlib.config

    small = covidlib.config.PROFILES["quick"].with_overrides(phantom_size=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(covidlib.config.PROFILES, "quick", small)
        patch.setenv("COVIDLIB_PROFILE", "quick")
        root = download_dataset("phantom", tmp_path / "ph")
        assert index_dataset("phantom", root).counts() == {"covid": 1, "non_covid": 1}
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "notes.txt").write_text("mine")
        with pytest.raises(DownloadError, match="not a phantom folder"):
            download_dataset("phantom", tmp_path / "mine")
