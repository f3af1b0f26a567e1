"""Table 2 from run folders and stored results, with the paper beside it.

Two kinds of folder are *scored*, both laid out by :class:`covidlib.engine.runs.RunFolder`:
a run folder of ``covidlib cv`` and a **stored result** (provenance, report and per-fold
predictions of a real run, small enough to keep in the repository, no weights).
:func:`load_scored` reads either; :func:`summarize_scored` computes
every metric per fold, the mean and sample standard deviation over folds, the t-interval over
folds and the bootstrap interval over the pooled test images; :func:`report_table` lays the
results out like the paper's Table 2.

Example:
    >>> import tempfile, pathlib
    >>> folder = write_example_result(pathlib.Path(tempfile.mkdtemp()))
    >>> report = summarize_scored(load_scored(folder), n_resamples=200)
    >>> report["dataset"], report["n_folds"], report["metrics"]["accuracy"]["mean"]
    ('covid19-ct', 2, 0.75)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from covidlib.engine.readers import jsonable, read_json
from covidlib.engine.runs import RunFolder
from covidlib.evaluate.compare import compare_correct
from covidlib.evaluate.intervals import pooled_bootstrap
from covidlib.evaluate.metrics import COUNT_NAMES, binary_metrics, summarize_folds
from covidlib.utils.fileio import atomic_write_text

REPORT_METRICS: tuple[str, ...] = (
    "accuracy", "precision", "recall", "specificity", "f1", "roc_auc",
)
PAPER_METRICS: tuple[str, ...] = REPORT_METRICS[:5]
PREDICTION_COLUMNS: tuple[str, ...] = ("path", "label", "probability", "fold")
PROVENANCE_KEYS: tuple[str, ...] = (
    "dataset", "model", "profile", "n_folds", "weights", "data", "hardware", "date", "commit",
)


class ReportError(ValueError):
    """A folder cannot be scored as asked (the message names the file and what to do)."""


@dataclass
class ScoredRun:
    """The test predictions of one run, from a run folder or a stored result.

    Attributes:
        path: the folder.
        kind: ``"run"`` (a run folder) or ``"stored"`` (a stored result).
        dataset: dataset registry name.
        model: model registry name.
        profile: the profile the run was made with (``"quick"``, ``"full"``) or ``None``.
        n_folds: the folds the run should have.
        folds: the folds whose predictions were read.
        predictions: one row per test image: ``path``, ``label``, ``probability``, ``fold``
            (and ``relpath`` where known).
        provenance: what is known of how it was made.
    """

    path: Path
    kind: str
    dataset: str
    model: str
    profile: str | None
    n_folds: int
    folds: list[int]
    predictions: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        """Whether some folds are missing."""
        return len(self.folds) < self.n_folds


def _read_predictions(path: Path, fold: int) -> pd.DataFrame:
    if not path.is_file():
        raise ReportError(f"{path} is missing: fold {fold} has no predictions.")
    try:
        table = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ReportError(f"{path} is not a predictions table ({error}); delete fold {fold} "
                          "to retrain it.") from None
    if "path" not in table.columns and "relpath" in table.columns:  # stored: relpath only
        table.insert(0, "path", table["relpath"])
    missing = [c for c in PREDICTION_COLUMNS if c not in table.columns]
    if missing or table.empty:
        raise ReportError(f"{path} {'lacks the columns ' + str(missing) if missing else 'is empty'}"
                          f"; delete fold {fold} to retrain it.")
    return table


def load_scored(path: str | Path, *, allow_partial: bool = False) -> ScoredRun:
    """Read the predictions of a run folder or a stored result.

    A fold of a run folder counts when it has finished: its result files are recorded in
    ``files.json`` and verify (:class:`covidlib.engine.runs.RunFolder`); a stored result
    lists its folds in ``provenance.json``.

    Args:
        path: the folder.
        allow_partial: summarize the finished folds when some are missing (the report says
            so) instead of refusing.

    Raises:
        ReportError: not a scored folder, a file that cannot be read, or missing folds
            (naming which, and what is missing) without ``allow_partial``.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ReportError(f"{folder} is not a folder; pass a run folder of `covidlib cv` or a "
                          "stored result.")
    ready: dict[int, Any]  # fold -> its predictions file (stored) or FoldFiles (run folder)
    run = RunFolder(folder)
    if run.is_stored:
        provenance = run.read_provenance(error=ReportError)
        missing_keys = [k for k in ("dataset", "model", "n_folds") if k not in provenance]
        if missing_keys:
            raise ReportError(f"{run.provenance_file} lacks {missing_keys}; add them.")
        kind, dataset, model = "stored", str(provenance["dataset"]), str(provenance["model"])
        n_folds, profile = int(provenance["n_folds"]), provenance.get("profile")
        expected = [int(k) for k in provenance.get("folds", range(n_folds))]
        ready = {k: run.fold(k).predictions for k in run.fold_numbers()
                 if run.fold(k).predictions.is_file()}
        why = "without predictions"
        reasons: dict[int, str] = {}
    elif run.config_file.is_file():
        config = read_json(run.config_file, hint="restore it, or train the run again",
                           error=ReportError)
        missing_keys = [k for k in ("dataset", "model", "n_folds") if k not in config]
        if missing_keys:
            raise ReportError(f"{run.config_file} lacks {missing_keys}: it is not a run "
                              "folder of this covidlib; run `covidlib cv` again.")
        kind, dataset, model = "run", str(config["dataset"]), str(config["model"])
        n_folds = int(config["n_folds"])
        profile = config.get("profile") or profile_of(config)
        provenance = {"profile": profile, "weights": config.get("weights",
                                                                config.get("pretrained"))}
        expected = list(range(n_folds)) if config.get("split") != "official" else [0]
        # The run-folder layout verifies each fold's files against files.json (sizes here,
        # the full sha256 when a file is read): nothing unverified is scored.
        ready = {k: run.fold(k) for k in run.finished_folds()}
        why = "not finished"
        reasons = {k: "; ".join(run.fold(k).problems()) or "no results"
                   for k in expected if k not in ready}
    else:
        raise ReportError(f"{folder} is neither a run folder ({run.config_file.name}) nor a "
                          f"stored result ({run.provenance_file.name}); pass the folder "
                          "`covidlib cv` printed.")
    missing = [k for k in expected if k not in ready]
    if missing and (not allow_partial or len(missing) == len(expected)):
        detail = ", ".join(f"fold-{k}" for k in missing)
        if reasons:
            detail += " (" + "; ".join(f"fold-{k}: {reasons[k]}" for k in missing) + ")"
        hint = ("" if len(missing) == len(expected)
                else "; pass --allow-partial to summarize the rest")
        raise ReportError(f"{folder}: {len(missing)} of {len(expected)} folds are {why}: "
                          f"{detail}{hint}.")
    folds = [k for k in expected if k in ready]
    tables = [ready[k].read_predictions() if kind == "run" else _read_predictions(ready[k], k)
              for k in folds]
    predictions = pd.concat(tables, ignore_index=True)
    return ScoredRun(folder, kind, dataset, model, profile, len(expected), folds, predictions,
                     provenance)


def profile_of(config: Mapping[str, Any]) -> str | None:
    """Name the profile whose experiment ``config`` (a run's ``config.json``) is, if any.

    A run made with a profile's defaults (seed, split and fold count aside) is labelled with
    that profile; anything else is ``"custom"``; ``None`` when the file is no experiment.

    Example:
        >>> from covidlib.config import get_profile
        >>> profile_of(get_profile("quick").experiment("phantom", "resnet18", seed=2).to_dict())
        'quick'
        >>> profile_of(get_profile("quick").experiment("phantom", "resnet18", epochs=1).to_dict())
        'custom'
    """
    from covidlib.config import PROFILES, ExperimentConfig

    try:
        saved = ExperimentConfig.from_dict(config)
    except (TypeError, ValueError):
        return None
    for name, profile in PROFILES.items():
        candidate = profile.experiment(
            saved.dataset, saved.model, seed=saved.seed, split=saved.split,
            n_folds=saved.n_folds, canvas=saved.canvas, skip_problems=saved.skip_problems,
        )
        if candidate == saved:
            return name
    return "custom"


def summarize_scored(
    run: ScoredRun,
    *,
    threshold: float = 0.5,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Return the report object of one run (what ``covidlib report --format json`` prints).

    Keys: ``dataset``, ``model``, ``profile``, ``kind``, ``path``, ``n_folds``, ``folds``,
    ``partial``, ``n_images``, ``threshold``, ``std_ddof`` (1), ``ci`` (what the intervals
    are), ``metrics`` (for each of :data:`REPORT_METRICS`: ``mean``, ``std``, ``ci_low``,
    ``ci_high`` = the t-interval over folds, ``boot_low``, ``boot_high`` = the bootstrap over
    the pooled test images; fractions in [0, 1]), ``confusion`` (mean ``tp``, ``tn``, ``fp``,
    ``fn`` per fold) and ``per_fold``.
    """
    per_fold = {}
    for fold, rows in run.predictions.groupby("fold"):
        per_fold[int(fold)] = binary_metrics(rows["label"], rows["probability"], threshold)
    summary = summarize_folds(per_fold, confidence)
    boot = pooled_bootstrap(run.predictions["label"], run.predictions["probability"],
                            REPORT_METRICS, threshold=threshold, confidence=confidence,
                            n_resamples=n_resamples, seed=seed)
    metrics = {}
    for name in REPORT_METRICS:
        mean = summary["mean"][name]
        metrics[name] = {
            "mean": mean,
            "std": summary["std"][name],
            "ci_low": summary["ci_low"][name],
            "ci_high": summary["ci_high"][name],
            "boot_low": boot[name][0],
            "boot_high": boot[name][1],
        }
        if not np.isfinite(mean):  # a metric undefined in every fold: say so, never NaN
            metrics[name].update(mean=0.0, std=0.0, ci_low=0.0, ci_high=0.0)
    return {
        "dataset": run.dataset,
        "model": run.model,
        "profile": run.profile,
        "kind": run.kind,
        "path": str(run.path),
        "n_folds": len(run.folds),
        "folds": run.folds,
        "partial": run.partial,
        "n_images": int(len(run.predictions)),
        "threshold": threshold,
        "std_ddof": 1,
        "ci": (f"ci_low/ci_high: {round(100 * confidence)}% t-interval over folds; "
               f"boot_low/boot_high: {round(100 * confidence)}% BCa bootstrap over the pooled "
               f"test images ({n_resamples} resamples, seed {seed})"),
        "metrics": metrics,
        "confusion": {name: summary["mean"][name] for name in COUNT_NAMES},
        "per_fold": {str(k): v for k, v in per_fold.items()},
        "provenance": run.provenance,
    }


def paper_table2() -> pd.DataFrame:
    """Return the paper's Table 2 (percent; ``source`` says paper or prior work).

    Example:
        >>> paper_table2().query("dataset == 'covid19-ct' and model == 'DenseNet201'")[
        ...     "accuracy_mean"].tolist()
        [92.9]
    """
    from importlib.resources import files

    with (files("covidlib") / "tables" / "paper_table2.csv").open() as handle:
        return pd.read_csv(handle)


def paper_row(dataset: str, model: str) -> dict[str, float] | None:
    """Return the paper's own row (percent) for a registry model on a dataset, if any."""
    from covidlib.models.registry import get_spec

    table = paper_table2()
    name = get_spec(model).paper_name
    rows = table[(table["dataset"] == dataset) & (table["model"] == name)
                 & (table["source"] == "paper")]
    if rows.empty:
        return None
    row = rows.iloc[0]
    return {metric: float(row[f"{metric}_mean"]) for metric in PAPER_METRICS} | {
        f"{metric}_std": float(row[f"{metric}_std"]) for metric in PAPER_METRICS
    }


def _cell(values: Mapping[str, float], interval: str) -> str:
    mean, std = 100 * values["mean"], 100 * values["std"]
    low, high = (100 * values["ci_low"], 100 * values["ci_high"]) if interval == "t" else (
        100 * values["boot_low"], 100 * values["boot_high"])
    return f"{mean:.1f} ± {std:.1f} [{low:.1f}, {high:.1f}]"


def check_one_dataset(reports: Sequence[Mapping[str, Any]]) -> str:
    """Return the one dataset of ``reports``; refuse runs of different datasets in one table."""
    datasets = sorted({str(r["dataset"]) for r in reports})
    if len(datasets) != 1:
        listed = ", ".join(f"{r['path']} ({r['dataset']})" for r in reports)
        raise ReportError(f"runs of different datasets cannot share one table: {listed}; make one "
                          "report per dataset.")
    return datasets[0]


def report_table(
    reports: Sequence[Mapping[str, Any]], *, paper: bool = False, interval: str = "t"
) -> pd.DataFrame:
    """Return a Table 2-style table: one row per run (percent, mean ± std [CI]).

    Args:
        reports: objects from :func:`summarize_scored`, all of one dataset.
        paper: add the paper's row for the same dataset and model under each run, and a
            column of the accuracy difference (ours - paper, points).
        interval: ``"t"`` (the t-interval over folds) or ``"bootstrap"`` in the brackets.
    """
    if interval not in ("t", "bootstrap"):
        raise ReportError(f"interval must be 't' or 'bootstrap'; got {interval!r}.")
    check_one_dataset(reports)
    rows = []
    for report in reports:
        label = report["model"] + (" (partial)" if report["partial"] else "")
        row: dict[str, Any] = {"dataset": report["dataset"], "model": label,
                               "source": f"{report['kind']} ({report['profile'] or '?'})",
                               "folds": report["n_folds"]}
        row.update({m: _cell(report["metrics"][m], interval) for m in REPORT_METRICS})
        published = paper_row(report["dataset"], report["model"]) if paper else None
        if paper:
            ours = 100 * report["metrics"]["accuracy"]["mean"]
            row["accuracy - paper"] = (f"{ours - published['accuracy']:+.1f}"
                                       if published else "")
        rows.append(row)
        if paper and published:
            rows.append({"dataset": report["dataset"], "model": report["model"],
                         "source": "paper", "folds": 5,
                         **{m: f"{published[m]:.1f} ± {published[m + '_std']:.1f}"
                            for m in PAPER_METRICS},
                         "roc_auc": "", "accuracy - paper": ""})
    return pd.DataFrame(rows)


def format_report(
    reports: Sequence[Mapping[str, Any]], fmt: str = "md", *, paper: bool = False,
    interval: str = "t",
) -> str:
    """Return the report as Markdown, CSV, JSON or HTML text.

    JSON is the list of report objects themselves (no table), for scripts.
    """
    if fmt == "json":
        return json.dumps([jsonable(r) for r in reports], indent=2) + "\n"
    table = report_table(reports, paper=paper, interval=interval)
    note = (f"Percent: mean ± std (ddof=1) over folds, [95% "
            f"{'t-interval over folds' if interval == 't' else 'bootstrap over test images'}].")
    if any(r["partial"] for r in reports):
        note += " (partial): summarized over the finished folds only."
    if fmt == "md":
        return table.to_markdown(index=False) + "\n\n" + note + "\n"
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "html":
        return table.to_html(index=False) + f"\n<p>{note}</p>\n"
    raise ReportError(f"unknown format {fmt!r}; choose md, csv, json or html.")


def _pair_key(predictions: pd.DataFrame) -> str:
    return "relpath" if "relpath" in predictions.columns else "path"


def compare_scored(
    run_a: ScoredRun, run_b: ScoredRun, *, threshold: float = 0.5, n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare two runs on the same images: McNemar's exact test and the paired bootstrap.

    Images are paired by their path relative to the dataset root (``relpath``) when both
    runs have it, else by path, so runs made on two machines compare.

    Raises:
        ReportError: different datasets, different images, or an image in different folds
            (naming what differs).
    """
    if run_a.dataset != run_b.dataset:
        raise ReportError(f"{run_a.path} is on {run_a.dataset} but {run_b.path} is on "
                          f"{run_b.dataset}: compare runs of one dataset.")
    key = "relpath" if {_pair_key(run_a.predictions), _pair_key(run_b.predictions)} == {
        "relpath"} else "path"
    a = run_a.predictions.set_index(run_a.predictions[key].astype(str))
    b = run_b.predictions.set_index(run_b.predictions[key].astype(str))
    only_a, only_b = sorted(set(a.index) - set(b.index)), sorted(set(b.index) - set(a.index))
    if only_a or only_b:
        raise ReportError(f"the runs were scored on different images ({len(only_a)} only in "
                          f"{run_a.path}, {len(only_b)} only in {run_b.path}, e.g. "
                          f"{(only_a + only_b)[:2]}); compare runs of the same folds.")
    b = b.loc[a.index]
    moved = int((a["fold"].to_numpy() != b["fold"].to_numpy()).sum())
    if moved:
        raise ReportError(f"{moved} images are in different folds in {run_a.path} and "
                          f"{run_b.path}: the runs used other fold assignments (split or seed); "
                          "compare runs made on the same folds.")
    truth = a["label"].to_numpy(dtype=int)
    correct_a = (a["probability"].to_numpy() >= threshold).astype(int) == truth
    correct_b = (b["probability"].to_numpy() >= threshold).astype(int) == truth
    result = compare_correct(correct_a, correct_b, n_resamples=n_resamples, seed=seed)
    return {"a": str(run_a.path), "b": str(run_b.path), "model_a": run_a.model,
            "model_b": run_b.model, "dataset": run_a.dataset, "paired_on": key, **result}


def store_result(
    run: ScoredRun, results_root: str | Path, result_id: str, provenance: Mapping[str, Any]
) -> Path:
    """Copy a run's predictions into ``results_root/<dataset>/<model>/<result_id>/``.

    Writes the provenance (what ``provenance`` says, plus dataset, model, profile and folds),
    the report (:func:`summarize_scored`) and each fold's predictions
    (:class:`~covidlib.engine.runs.RunFolder` names the files): no weights, and images named
    only by ``relpath`` (relative to the dataset root), never by a path of this machine.
    Refuses to overwrite an existing result.
    """
    target = Path(results_root) / run.dataset / run.model / result_id
    if target.exists():
        raise ReportError(f"{target} exists already; choose another id or delete it.")
    if "relpath" not in run.predictions.columns:
        raise ReportError(f"{run.path} names its images by absolute path only; a stored result "
                          "needs each image's relpath (train it again with this covidlib).")
    missing = [k for k in ("weights", "data", "hardware", "date", "commit") if k not in provenance]
    if missing:
        raise ReportError(f"the provenance of a stored result needs {missing}.")
    record = {"dataset": run.dataset, "model": run.model, "profile": run.profile,
              "n_folds": run.n_folds, "folds": run.folds, **dict(provenance)}
    stored = RunFolder(target)
    for fold, rows in run.predictions.drop(columns="path").groupby("fold"):
        atomic_write_text(stored.fold(int(fold)).predictions, rows.to_csv(index=False))
    report = {**summarize_scored(run), "path": f"{run.dataset}/{run.model}/{result_id}"}
    stored.write_json(stored.report_file, report)
    stored.write_json(stored.provenance_file, record)
    return target


def write_example_result(folder: Path, dataset: str = "covid19-ct",
                         model: str = "resnet18") -> Path:
    """Write a tiny stored result of two folds (for examples and tests) and return it."""
    provenance = {"dataset": dataset, "model": model, "profile": "example", "n_folds": 2,
                  "weights": "none", "data": "made up", "hardware": "none",
                  "date": "2026-12-01", "commit": "none"}
    stored = RunFolder(folder)
    stored.write_json(stored.provenance_file, provenance)
    for fold in (0, 1):
        rows = pd.DataFrame({
            "path": [f"img{fold}-{i}.png" for i in range(4)],
            "relpath": [f"img{fold}-{i}.png" for i in range(4)],
            "label": [1, 1, 0, 0],
            "probability": [0.9, 0.4, 0.2, 0.1] if fold == 0 else [0.8, 0.7, 0.6, 0.3],
            "fold": fold,
        })
        atomic_write_text(stored.fold(fold).predictions, rows.to_csv(index=False))
    return folder
