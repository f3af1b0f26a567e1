"""Datasheets for datasets (Gebru et al. 2021), written from what covidlib records.

:func:`datasheet` assembles a Markdown page from the dataset registry (title, classes, counts,
source, citation, licence), the measured facts (``covidlib/tables/dataset_facts.csv``), the
known limits (``covidlib/tables/dataset_limits.csv``), the profiles (the phantom's generator
settings) and the stored leakage audit (``results/<dataset>/audit.json``, written by
:func:`covidlib.trust.card.store_audit`). :func:`write_datasheets` writes the book's pages;
a test checks they are current, so no number in them is typed by hand.

Example:
    >>> text = datasheet("covid19-ct", results_root=None)
    >>> text.splitlines()[0]
    '# Datasheet: COVID19-CT (UCSD-AI4H/COVID-CT)'
"""

from __future__ import annotations

import csv
import json
from importlib.resources import files
from pathlib import Path

from covidlib.trust._sources import dataset_spec, profiles
from covidlib.trust.card import AUDIT_FILE, dataset_limits
from covidlib.utils.fileio import atomic_write_text

DATASHEET_DATASETS: tuple[str, ...] = ("covid19-ct", "sars-cov-2-ct", "phantom")
FACT_NAMES: dict[str, str] = {
    "n_images": "images", "n_covid": "COVID images", "n_non_covid": "non-COVID images",
    "n_patients": "patients with a known ID (COVID images)",
    "width_min": "smallest width (px)", "height_min": "smallest height (px)",
    "width_max": "largest width (px)", "height_max": "largest height (px)",
    "aspect_min": "smallest width / height", "aspect_max": "largest width / height",
    "wider_than_tall_percent": "wider than tall (%)",
}


def _facts(dataset: str) -> list[tuple[str, str, str]]:
    text = (files("covidlib") / "tables" / "dataset_facts.csv").read_text(encoding="utf-8")
    return [(row["fact"], row["value"], row["source"]) for row in csv.DictReader(text.splitlines())
            if row["dataset"] == dataset]


def _phantom_settings() -> list[str]:
    return [f"- profile `{name}`: {profile.phantom.size} images, difficulty "
            f"{profile.phantom.difficulty:g}" for name, profile in profiles().items()
            if profile.dataset == "phantom"]


def _command(source: str, dataset: str) -> str:
    return "covidlib phantom" if source == "generated" else f"covidlib datasets download {dataset}"


def _audit(dataset: str, results_root: Path | None) -> list[str]:
    path = results_root / dataset / AUDIT_FILE if results_root is not None else None
    if path is None or not path.is_file():
        return [f"_No audit of {dataset} is stored; run it with `covidlib audit {dataset}` "
                "(the honest-evaluation chapter runs it on the phantom)._"]
    facts = json.loads(path.read_text())
    return [f"From `results/{dataset}/{AUDIT_FILE}` ({facts.get('command', 'covidlib audit')}, "
            f"{facts.get('date', 'undated')}):", "",
            "| finding | value |", "|---|---|",
            f"| images audited | {facts['n_images']} |",
            f"| sets of byte-identical files | {facts['identical_sets']} "
            f"({facts['identical_files']} files) |",
            f"| near-duplicate pairs (distance <= {facts['threshold']:g}, {facts['method']}) | "
            f"{facts['near_pairs']} |",
            f"| pseudo-patients (clusters of look-alike slices) | {facts['pseudo_patients']} |"]


def datasheet(dataset: str, results_root: str | Path | None = None) -> str:
    """Return the datasheet (Markdown) of a registry dataset.

    Raises:
        ValueError: a dataset the registry does not know.
    """
    spec = dataset_spec(dataset)
    if spec is None:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {DATASHEET_DATASETS}.")
    root = Path(results_root) if results_root is not None else None
    lines = [f"# Datasheet: {spec.title}", "",
             "<!-- Written by covidlib.trust.datasheet.write_datasheets(); do not edit. -->",
             "", "A datasheet in the sense of Gebru et al. (2021), from what covidlib records "
             "about the dataset. **Not for clinical use**: the course uses it to teach.", "",
             "## Motivation and source", "",
             f"- Published at: {spec.homepage}",
             f"- Citation: {spec.citation or 'none recorded'}",
             f"- Licence: {spec.license or 'none recorded'}",
             f"- How covidlib gets it: {spec.source} "
             f"(`{_command(spec.source, dataset)}`).",
             "",
             "## Composition", "",
             "| class | label | folder |", "|---|---|---|",
             *[f"| {c.name} | {c.label} | `{c.folder}/` |" for c in spec.classes], ""]
    if spec.expected_counts:
        lines += ["Published counts (COVID / non-COVID):", "",
                  *[f"- {v.name}: {v.covid} / {v.non_covid} ({v.note})"
                    for v in spec.expected_counts], ""]
    facts = _facts(dataset)
    if facts:
        lines += ["Measured by covidlib (`covidlib/tables/dataset_facts.csv`, each recomputed "
                  "by a test from a real copy):", "", "| fact | value |", "|---|---|",
                  *[f"| {FACT_NAMES.get(f, f)} | {v} |" for f, v, _ in facts], ""]
    if spec.source == "generated":
        lines += ["Generated by covidlib, deterministic for a seed; its size is set by the "
                  "profile:", "", *_phantom_settings(), ""]
    patient_ids = ("a patient-ID spreadsheet for part of the images "
                   f"(`{spec.metadata.relpath}`); other images are grouped by "
                   f"{spec.group_fallback}" if spec.metadata is not None
                   else f"none published; images are grouped by {spec.group_fallback}")
    lines += ["## Patients and splits", "",
              f"- Patient IDs: {patient_ids}.",
              "- Splits in the course: stratified folds over images, patient-level (grouped) "
              "folds where groups are known, and the official split where one is published "
              "(see the honest-evaluation chapter).", "",
              "## Leakage audit", "", *_audit(dataset, root), "",
              "## Known limits", "", *[f"- {limit}" for limit in dataset_limits(dataset)], "",
              "## Preprocessing and uses in this course", "",
              "- Letterboxed onto each model's canvas without distortion (the letterbox "
              "chapter); augmented during training only.",
              "- Used to train and evaluate teaching models; not for diagnosis, and not "
              "a sample of any clinical population.", ""]
    return "\n".join(lines)


def write_datasheets(folder: str | Path, results_root: str | Path | None,
                     datasets: tuple[str, ...] = DATASHEET_DATASETS) -> list[Path]:
    """Write ``<folder>/<dataset>.md`` for each dataset and return the files."""
    return [atomic_write_text(Path(folder) / f"{name}.md", datasheet(name, results_root))
            for name in datasets]
