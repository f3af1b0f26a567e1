"""The paper's tables and figures from a grid's run folders, as Markdown, CSV and PNG.

:func:`render_report` writes into a folder: ``table1.md``/``.csv`` (Table 1 computed from
the models, beside the paper's: :func:`covidlib.models.registry.compare_with_paper`),
``table2-<dataset>.md``/``.csv`` (Table 2 with the paper's rows: :mod:`covidlib.evaluate.report`)
and ``confusion-<dataset>.png`` (:func:`covidlib.evaluate.figures.plot_confusion_grid`) for
every dataset, from whatever folds have finished. It computes nothing itself.

Example:
    >>> import tempfile
    >>> from covidlib.grid.plan import GridPlan
    >>> out = Path(tempfile.mkdtemp())
    >>> lines = render_report(GridPlan(out, []), out / "report", models=["squeezenet"])
    >>> lines[0], sorted(p.name for p in (out / "report").iterdir())
    ('Table 1: table1.md, table1.csv', ['table1.csv', 'table1.md'])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from covidlib.grid.plan import GridPlan
from covidlib.utils.fileio import atomic_path, atomic_write_text


def scored_runs(plan: GridPlan) -> tuple[list[Any], list[str]]:
    """Return (the scored runs with at least one finished fold, a line per run left out)."""
    from covidlib.evaluate.report import ReportError, load_scored

    runs, skipped = [], []
    for run_dir in plan.run_dirs():
        try:
            runs.append(load_scored(run_dir, allow_partial=True))
        except ReportError as error:
            skipped.append(f"left out {run_dir.relative_to(plan.dir)}: {error}")
    return runs, skipped


def render_report(
    plan: GridPlan,
    out: str | Path,
    *,
    models: Sequence[str] | None = None,
    n_resamples: int = 2000,
) -> list[str]:
    """Write Table 1, Table 2 and the confusion matrices of a grid into ``out``; return one
    line per thing written or left out.

    Args:
        plan: the grid.
        out: the report folder.
        models: Table 1's models (default: the grid's).
        n_resamples: bootstrap resamples of Table 2's intervals.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from covidlib.evaluate.figures import plot_confusion_grid
    from covidlib.evaluate.report import format_report, summarize_scored
    from covidlib.models.registry import compare_with_paper

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(models) if models is not None else list(
        dict.fromkeys(task.model for task in plan.tasks))
    table1 = compare_with_paper(names)
    atomic_write_text(out / "table1.md", table1.to_markdown(index=False) + "\n")
    atomic_write_text(out / "table1.csv", table1.to_csv(index=False))
    lines = ["Table 1: table1.md, table1.csv"]
    runs, skipped = scored_runs(plan)
    lines += skipped
    for dataset in dict.fromkeys(run.dataset for run in runs):
        reports = [summarize_scored(run, n_resamples=n_resamples) for run in runs
                   if run.dataset == dataset]
        stem = f"table2-{dataset}"
        atomic_write_text(out / f"{stem}.md", format_report(reports, "md", paper=True))
        atomic_write_text(out / f"{stem}.csv", format_report(reports, "csv", paper=True))
        figure = plot_confusion_grid(reports)
        with atomic_path(out / f"confusion-{dataset}.png") as temporary:
            figure.savefig(temporary, dpi=120)
        plt.close(figure)
        partial = sum(bool(r["partial"]) for r in reports)
        lines.append(f"Table 2 ({dataset}, {len(reports)} runs"
                     + (f", {partial} partial" if partial else "")
                     + f"): {stem}.md, {stem}.csv; confusion matrices: confusion-{dataset}.png")
    return lines
