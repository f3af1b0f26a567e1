"""Tests for covidlib.data.registry, the dataset table (tests/models has a test_registry.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from covidlib.data.registry import DATASETS, default_root, get_dataset, list_datasets


def test_registry_entries_are_consistent() -> None:
    assert set(DATASETS) == {"sars-cov-2-ct", "covid19-ct", "phantom", "phantom-patients", "folder"}
    for spec in DATASETS.values():
        assert [c.label for c in spec.classes] == [1, 0]
        assert [c.name for c in spec.classes] == ["COVID", "non-COVID"]
    sars = {v.name: (v.covid, v.non_covid) for v in DATASETS["sars-cov-2-ct"].expected_counts}
    assert sars == {"paper": (1252, 1230), "public copy": (1252, 1229)}
    table = list_datasets()
    assert list(table.index) == list(DATASETS)
    assert table.loc["covid19-ct", "counts"] == "official: 349/397"
    assert table["citation"].str.len().min() > 10


def test_github_files_cover_archives_metadata_and_split_lists() -> None:
    files = {f.relpath: f for f in DATASETS["covid19-ct"].files}
    assert {name for name, f in files.items() if f.extract} == {"CT_COVID.zip", "CT_NonCOVID.zip"}
    assert "COVID-CT-MetaInfo.xlsx" in files
    assert sum(name.startswith("Data-split/") for name in files) == 6
    assert all(f.url.startswith("https://") for f in files.values())


def test_default_root_follows_the_data_dir() -> None:
    assert default_root("covid19-ct") == Path(os.environ["COVIDLIB_DATA"]) / "covid19-ct"
    assert list_datasets().loc["phantom", "default_root"].endswith("phantom")


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'covid': did you mean covid19-ct"):
        get_dataset("covid")
    assert get_dataset("phantom").source == "generated"
