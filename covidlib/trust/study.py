"""The trust study over stored results: calibration and triage of each, and the shift.

:func:`calibrate_run` is what ``covidlib calibrate --json`` prints for one run;
:func:`calibrate_stored` tabulates it for every stored result; :func:`shift_pairs` finds
which calibrations can be carried to another dataset and :func:`shift_table` checks whether
conformal coverage holds there.

Two kinds of shift pair, best first:

* ``external``: the fold models of a run trained on dataset A scored every image of B
  (``covidlib evaluate``); the thresholds come from the same models' out-of-fold
  predictions on A. This is the shift of one model.
* ``carried over``: no external validation is stored, but the same architecture (and
  profile) has results on both datasets; the thresholds calibrated on A's out-of-fold
  predictions are applied to B's. This asks whether a triage rule tuned on one dataset can
  be reused on another, not how one model fares.

Example:
    >>> import tempfile, pathlib
    >>> from covidlib.evaluate.report import write_example_result
    >>> folder = write_example_result(pathlib.Path(tempfile.mkdtemp()))
    >>> result = calibrate_run(folder, [0.9], n_resamples=100)
    >>> sorted(k for k in ("ece", "ece_scaled", "brier", "temperature", "conformal") if k in result)
    ['brier', 'conformal', 'ece', 'ece_scaled', 'temperature']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from covidlib.trust._sources import image_keys, load_run, stored_results
from covidlib.trust.calibration import calibration_summary
from covidlib.trust.conformal import COVERAGES, conformal_table
from covidlib.trust.prevalence import CLINIC_PREVALENCE, predictive_value_curves

SHIFT_COVERAGE = 0.95


def calibrate_run(path: str | Path, coverages: Sequence[float] = COVERAGES,
                  n_resamples: int = 1000) -> dict[str, Any]:
    """Return calibration (:func:`~covidlib.trust.calibration.calibration_summary`) and the
    cross-conformal ``conformal`` table (one record per coverage) of a run; ``note`` says
    what could not be computed (one test fold)."""
    run = load_run(path)
    summary = calibration_summary(run.predictions, n_resamples=n_resamples)
    notes = [summary["note"].rstrip(".")] if summary["note"] else []
    try:
        conformal = conformal_table(run.predictions, coverages).to_dict("records")
    except ValueError as error:
        conformal = []
        notes.append(f"no conformal triage: {str(error).rstrip('.')}")
    return {"path": str(path), "dataset": run.dataset, "model": run.model,
            "profile": run.profile, "kind": run.kind, "n_images": int(len(run.predictions)),
            "folds": run.folds, **summary, "note": "; ".join(notes),
            "conformal": conformal}


def real_results(results_root: str | Path, profile: str | None = None) -> pd.DataFrame:
    """Return the stored within-dataset results (no external validations), of ``profile``
    when given, else of every profile."""
    table = stored_results(results_root, profile=profile)
    return table[table["external"] == ""].reset_index(drop=True)


def calibrate_stored(results: pd.DataFrame, coverage: float = SHIFT_COVERAGE,
                     n_resamples: int = 1000) -> pd.DataFrame:
    """Return one row per stored result: calibration before and after scaling, and the
    triage at ``coverage`` (``NaN`` where a result has one fold)."""
    rows = []
    for _, stored in results.iterrows():
        result = calibrate_run(stored["path"], [coverage], n_resamples)
        triage = result["conformal"][0] if result["conformal"] else {}
        rows.append({
            "dataset": result["dataset"], "model": result["model"], "id": stored["id"],
            "profile": result["profile"], "folds": len(result["folds"]),
            "images": result["n_images"], "ece": result["ece"], "ece_low": result["ece_low"],
            "ece_high": result["ece_high"], "ece_mass": result["ece_mass"],
            "brier": result["brier"],
            "temperature": _number(result["temperature"]),
            "ece_scaled": _number(result["ece_scaled"]),
            "coverage_covid": triage.get("coverage_covid", math.nan),
            "coverage_non_covid": triage.get("coverage_non_covid", math.nan),
            "referral_rate": triage.get("referral_rate", math.nan),
            "accuracy_kept": triage.get("accuracy_kept", math.nan),
        })
    return pd.DataFrame(rows)


def prevalence_stored(results: pd.DataFrame, prevalence: float = CLINIC_PREVALENCE,
                      threshold: float = 0.5) -> pd.DataFrame:
    """Return one row per stored result: sensitivity and specificity at ``threshold`` and the
    PPV and NPV they imply at ``prevalence``, each with its interval."""
    rows = []
    for _, stored in results.iterrows():
        run = load_run(stored["path"])
        curves = predictive_value_curves(run.predictions["label"], run.predictions["probability"],
                                         threshold=threshold, prevalences=[prevalence])
        rates = curves.attrs
        rows.append({"dataset": run.dataset, "model": run.model, "id": stored["id"],
                     **{k: rates[k] for k in ("sensitivity", "sensitivity_low",
                                              "sensitivity_high", "specificity",
                                              "specificity_low", "specificity_high")},
                     **curves.drop(columns="prevalence").iloc[0].to_dict()})
    return pd.DataFrame(rows)


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def shift_pairs(stored: pd.DataFrame) -> pd.DataFrame:
    """Return (calibration, test) pairs of stored results across datasets.

    Columns ``kind`` (``external`` or ``carried over``), ``model``, ``profile``,
    ``calibrated_on``, ``applied_to``, ``calibration`` and ``test`` (folders). An external
    validation is paired with the model's own results on the dataset it was trained on;
    without one, results of one model and profile on two datasets are paired both ways.
    """
    columns = ["kind", "model", "profile", "calibrated_on", "applied_to", "calibration",
               "test"]
    rows = []
    own = stored[stored["external"] == ""]
    for _, external in stored[stored["external"] != ""].iterrows():
        matches = own[(own["model"] == external["model"])
                      & (own["dataset"] == external["external"])
                      & (own["profile"] == external["profile"])]
        for _, source in matches.iterrows():
            rows.append(["external", external["model"], external["profile"],
                         source["dataset"], external["dataset"], source["path"],
                         external["path"]])
    externally = {(r[1], r[2], r[3]) for r in rows}
    for (model, profile), group in own.groupby(["model", "profile"], dropna=False):
        firsts = group.drop_duplicates("dataset")
        for _, a in firsts.iterrows():
            for _, b in firsts.iterrows():
                if a["dataset"] != b["dataset"] and (model, profile, a["dataset"]) not in \
                        externally:
                    rows.append(["carried over", model, profile, a["dataset"], b["dataset"],
                                 a["path"], b["path"]])
    return pd.DataFrame(rows, columns=columns)


def _keyed(run: Any) -> pd.DataFrame:
    """The run's predictions keyed by dataset and image: two datasets may share file names."""
    return run.predictions.assign(relpath=run.dataset + "/" + image_keys(run.predictions))


def shift_table(pairs: pd.DataFrame, coverage: float = SHIFT_COVERAGE) -> pd.DataFrame:
    """Return, for each pair, the triage within the calibration dataset (cross-conformal)
    and on the other dataset with the calibration dataset's thresholds."""
    rows = []
    for _, pair in pairs.iterrows():
        calibration, test = (_keyed(load_run(pair["calibration"])),
                             _keyed(load_run(pair["test"])))
        within = conformal_table(calibration, [coverage]).iloc[0]
        shifted = conformal_table(test, [coverage], calibration=calibration).iloc[0]
        rows.append({
            "kind": pair["kind"], "model": pair["model"],
            "calibrated_on": pair["calibrated_on"], "applied_to": pair["applied_to"],
            "coverage": coverage,
            "within_covid": within["coverage_covid"],
            "within_non_covid": within["coverage_non_covid"],
            "within_referral": within["referral_rate"],
            "shifted_covid": shifted["coverage_covid"],
            "shifted_covid_low": shifted["coverage_covid_low"],
            "shifted_non_covid": shifted["coverage_non_covid"],
            "shifted_non_covid_low": shifted["coverage_non_covid_low"],
            "shifted_referral": shifted["referral_rate"],
            "holds": bool(shifted["coverage_covid_high"] >= coverage
                          and shifted["coverage_non_covid_high"] >= coverage),
        })
    return pd.DataFrame(rows)


def plot_stored_reliability(results: pd.DataFrame) -> Any:
    """Draw the reliability diagrams of stored results, one panel per dataset and one line
    per result; return the figure (``None`` when there is nothing to draw)."""
    import matplotlib.pyplot as plt

    from covidlib.trust.calibration import plot_reliability

    if results.empty:
        return None
    datasets = sorted(results["dataset"].unique())
    figure, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 4.4),
                                squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        curves = {}
        for row in results[results["dataset"] == dataset].itertuples():
            predictions = load_run(row.path).predictions
            curves[f"{row.model} {row.id}"] = (predictions["label"], predictions["probability"])
        plot_reliability(curves, ax=ax)
        ax.set_title(f"stored real runs on {dataset}")
    figure.tight_layout()
    return figure
