"""Model cards (Mitchell et al. 2019) from what a run folder or stored result records.

:func:`model_card` writes Markdown: intended use and a not-for-clinical-use statement, the
data and split protocol, the Table-2 metrics with intervals (formatted as ``covidlib
report``), calibration and conformal triage, external validation where stored, the leakage
audit of the dataset and the known limits (``covidlib/tables/dataset_limits.csv``). Every
number comes from a file of the run, of the results folder or of the audit; a field with
nothing behind it says so.

The audit comes from the dataset folder when it is on this machine (``covidlib audit``'s
hashes, computed now), else from ``audit.json`` stored beside the results
(:func:`store_audit` writes one).

Example:
    >>> import tempfile, pathlib
    >>> from covidlib.evaluate.report import write_example_result
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "covid19-ct" / "resnet18" / "example"
    >>> text = model_card(write_example_result(folder), audit="none", n_resamples=200)
    >>> text.splitlines()[0]
    '# Model card: ResNet18 on COVID19-CT (UCSD-AI4H/COVID-CT)'
    >>> "Not for clinical use" in text
    True
"""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd

from covidlib.trust._sources import (
    RunFolder,
    ScoredRun,
    audit_dataset,
    dataset_root,
    dataset_spec,
    format_report,
    load_run,
    model_paper_name,
    read_config,
    stored_results,
    summarize_scored,
)
from covidlib.trust.calibration import calibration_summary
from covidlib.trust.conformal import conformal_table
from covidlib.utils.fileio import atomic_write_text

AUDIT_FILE = "audit.json"
AUDIT_SOURCES: tuple[str, ...] = ("auto", "stored", "none")
CARD_COVERAGE = 0.95
NOTHING = "_Not recorded for this run._"


def dataset_limits(dataset: str) -> list[str]:
    """Return the known limits of a dataset (``tables/dataset_limits.csv``).

    Example:
        >>> any("Source bias" in limit for limit in dataset_limits("covid19-ct"))
        True
    """
    with (files("covidlib") / "tables" / "dataset_limits.csv").open() as handle:
        table = pd.read_csv(handle, comment="#")
    return table.loc[table["dataset"] == dataset, "limit"].tolist()


def audit_facts(result: Any, dataset: str, n_images: int) -> dict[str, Any]:
    """Return the audit's figures for a card or datasheet (JSON-ready)."""
    close = sum(1 for pair in result.near if pair["distance"] <= result.threshold)
    return {"dataset": dataset, "n_images": int(n_images), "method": result.method,
            "threshold": float(result.threshold), "identical_sets": len(result.identical),
            "identical_files": sum(len(s) for s in result.identical), "near_pairs": close,
            "pseudo_patients": int(result.n_groups)}


def store_audit(dataset: str, root: str | Path, results_root: str | Path) -> Path:
    """Audit a dataset folder and write ``results_root/<dataset>/audit.json``; return it."""
    result, n_images = audit_dataset(dataset, root)
    facts = audit_facts(result, dataset, n_images)
    from covidlib.evaluate.provenance import current_commit

    facts.update(date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 commit=current_commit(), hardware=platform.machine(),
                 command=f"covidlib audit {dataset} (perceptual hashes)")
    target = Path(results_root) / dataset / AUDIT_FILE
    atomic_write_text(target, json.dumps(facts, indent=2) + "\n")
    return target


def _stored_audit(run: ScoredRun) -> tuple[dict[str, Any] | None, str]:
    for candidate in (run.path / AUDIT_FILE, run.path.parent.parent / AUDIT_FILE):
        if candidate.is_file():
            facts = json.loads(candidate.read_text())
            if facts.get("dataset") == run.dataset:
                return facts, f"stored audit {candidate.name} ({facts.get('date', 'undated')})"
    return None, ""


def find_audit(run: ScoredRun, source: str = "auto") -> tuple[dict[str, Any] | None, str]:
    """Return the audit figures of a run's dataset and where they come from.

    ``source``: ``"auto"`` (the dataset folder when present, else a stored audit),
    ``"stored"`` (a stored ``audit.json`` only) or ``"none"``.
    """
    if source not in AUDIT_SOURCES:
        raise ValueError(f"audit source {source!r} is unknown; use one of {AUDIT_SOURCES}.")
    if source == "none":
        return None, ""
    root = dataset_root(run.dataset, read_config(run)) if source == "auto" else None
    if root is not None:
        result, n_images = audit_dataset(run.dataset, root)
        return audit_facts(result, run.dataset, n_images), "computed now on the dataset folder"
    return _stored_audit(run)


def external_results(run: ScoredRun, results_root: Path | None) -> list[dict[str, Any]]:
    """Return the stored external validations of the run's model trained on its dataset
    (``covidlib evaluate``): their dataset, folder and stored summary."""
    if results_root is None:
        return []
    table = stored_results(results_root)
    rows = table[(table["external"] == run.dataset) & (table["model"] == run.model)]
    found = []
    for _, row in rows.iterrows():
        stored = RunFolder(row["path"])
        if stored.report_file.is_file() or stored.summary_file.is_file():
            found.append({"dataset": row["dataset"], "path": row["path"],
                          "summary": stored.read_report()})
    return found


def _percent(value: float | None) -> str:
    return "not available" if value is None else f"{100 * value:.1f}%"


def _results_root(run: ScoredRun) -> Path | None:
    if run.kind in ("stored", "external"):
        return run.path.parent.parent.parent
    return None


def model_card(path: str | Path, *, audit: str = "auto", results_root: str | Path | None = None,
               n_resamples: int = 2000, coverage: float = CARD_COVERAGE) -> str:
    """Return the model card (Markdown) of a run folder or stored result.

    Args:
        path: the run folder or stored result.
        audit: where the audit figures come from (:func:`find_audit`).
        results_root: where stored results (external validations) are looked up; default the
            results folder a stored result lives in (none for a run folder).
        n_resamples: bootstrap resamples of the intervals.
        coverage: the conformal target coverage shown.
    """
    run = load_run(path)
    root = Path(results_root) if results_root is not None else _results_root(run)
    config = read_config(run)
    report = summarize_scored(run, n_resamples=n_resamples)
    spec = dataset_spec(run.dataset)
    title = spec.title if spec is not None else run.dataset
    name = model_paper_name(run.model)
    weights = str(run.provenance.get("weights") or config.get("weights") or "not recorded")
    lines = [f"# Model card: {name} on {title}", "",
             f"Made by `covidlib card` from `{run.path.name}` ({run.kind}, profile "
             f"{run.profile or 'not recorded'}).", ""]
    lines += ["## Intended use", "",
              "**Not for clinical use.** A teaching model of the course *Deep transfer learning "
              "for COVID-19 detection from chest CT*: it shows how such models are trained "
              "and evaluated. It must not inform the care of any patient.", ""]
    counts = run.predictions["label"].value_counts()
    split = config.get("split", "not recorded")
    external = run.provenance.get("external")
    protocol = (f"{split} folds, {report['n_folds']} test fold(s) {report['folds']}; every "
                "image is scored by the model that did not train on it")
    if isinstance(external, dict):
        protocol = (f"external validation: the {report['n_folds']} fold model(s) of a run "
                    f"trained on {external.get('trained_on', 'another dataset')} each scored "
                    "every image of this dataset")
    lines += ["## Model and data", "",
              f"- Architecture: {name} (`{run.model}`); initial weights: {weights}.",
              f"- Training: {_training(config)}.",
              f"- Data: {title}; {len(run.predictions)} test predictions "
              f"({int(counts.get(1, 0))} COVID, {int(counts.get(0, 0))} non-COVID).",
              f"- Split protocol: {protocol}.",
              f"- Provenance: {_provenance(run)}.", ""]
    lines += ["## Metrics (Table 2)", "", format_report([report], "md").strip(), ""]
    lines += _calibration_section(run, n_resamples, coverage)
    lines += _external_section(run, root)
    lines += _audit_section(run, audit)
    limits = dataset_limits(run.dataset)
    if weights.startswith("random"):
        limits.append("Trained from scratch (random initial weights) on a few hundred to a few "
                      "thousand images: far from the paper's ImageNet-initialized models.")
    lines += ["## Known limits", "", *([f"- {limit}" for limit in limits] or [NOTHING]), ""]
    return "\n".join(lines)


def _training(config: dict[str, Any]) -> str:
    nested = config.get("train")
    train: dict[str, Any] = nested if isinstance(nested, dict) else config
    parts = [f"{key} {train[key]}" for key in ("epochs", "lr", "batch_size") if key in train]
    if "canvas_scale" in config:
        parts.append(f"canvas scale {config['canvas_scale']}")
    if "seed" in config:
        parts.append(f"seed {config['seed']}")
    return ", ".join(parts) if parts else "not recorded"


def _provenance(run: ScoredRun) -> str:
    keys = ("date", "commit", "hardware")
    parts = [f"{key} {str(run.provenance[key])[:12] if key == 'commit' else run.provenance[key]}"
             for key in keys if run.provenance.get(key)]
    return "; ".join(parts) if parts else "not recorded (a run folder: see its config.json)"


def _calibration_section(run: ScoredRun, n_resamples: int, coverage: float) -> list[str]:
    calibration = calibration_summary(run.predictions, n_resamples=min(n_resamples, 1000))
    lines = ["## Calibration", "",
             f"- ECE (top label, 15 equal-width bins, pooled test folds): "
             f"{_percent(calibration['ece'])} [95% bootstrap "
             f"{_percent(calibration['ece_low'])}, {_percent(calibration['ece_high'])}]; "
             f"equal-mass bins: {_percent(calibration['ece_mass'])}.",
             f"- Brier score: {calibration['brier']:.3f} (reliability "
             f"{calibration['reliability']:.3f}, resolution {calibration['resolution']:.3f}, "
             f"uncertainty {calibration['uncertainty']:.3f}).",
             ]
    if calibration["temperature"] is None:
        lines.append(f"- Temperature scaling: {calibration['note']}.")
    else:
        lines.append(f"- Temperature scaling (fitted for each test fold on the other folds): "
                     f"T = {calibration['temperature']:.2f}, ECE "
                     f"{_percent(calibration['ece'])} -> {_percent(calibration['ece_scaled'])}, "
                     f"Brier {calibration['brier']:.3f} -> {calibration['brier_scaled']:.3f}.")
    try:
        row = conformal_table(run.predictions, [coverage]).iloc[0]
        lines.append(
            f"- Conformal triage at {100 * coverage:.0f}% (class-conditional, each test fold "
            f"calibrated on the others): coverage COVID {_percent(row['coverage_covid'])}, "
            f"non-COVID {_percent(row['coverage_non_covid'])}; referred to a radiologist "
            f"{_percent(row['referral_rate'])}; accuracy on the rest "
            f"{_percent(row['accuracy_kept'])}.")
    except ValueError as error:
        lines.append(f"- Conformal triage: not available ({error})")
    return lines + [""]


def _external_section(run: ScoredRun, root: Path | None) -> list[str]:
    lines = ["## External validation", ""]
    found = external_results(run, root)
    if not found:
        return lines + [f"_No external validation of {run.model} trained on {run.dataset} is "
                        "stored._", ""]
    for item in found:
        metrics = item["summary"].get("metrics", {})
        shown = ", ".join(f"{name} {_percent(metrics[name]['mean'])}"
                          for name in ("accuracy", "recall", "specificity", "roc_auc")
                          if name in metrics)
        lines.append(f"- Tested on {item['dataset']} (`{Path(item['path']).name}`): "
                     f"{shown or 'no metrics stored'}.")
    return lines + [""]


def _audit_section(run: ScoredRun, source: str) -> list[str]:
    lines = ["## Leakage audit of the dataset", ""]
    facts, where = find_audit(run, source)
    if facts is None:
        return lines + [f"_No audit of {run.dataset} is stored and its folder is not on this "
                        "machine._", ""]
    return lines + [
        f"{where[:1].upper() + where[1:]}: {facts['n_images']} images ({facts['method']}); "
        f"{facts['identical_sets']} set(s) of byte-identical files "
        f"({facts['identical_files']} files); {facts['near_pairs']} near-duplicate pair(s) at "
        f"distance <= {facts['threshold']:g}; {facts['pseudo_patients']} pseudo-patients.", ""]


def write_card(path: str | Path, out: str | Path, **options: Any) -> Path:
    """Write :func:`model_card` to ``out`` atomically and return it."""
    return atomic_write_text(out, model_card(path, **options))
