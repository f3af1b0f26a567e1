"""Where a grid stands, read from its run folders: done, running (by whom), failed, pending.

Example:
    >>> import tempfile
    >>> from covidlib.grid.plan import GridPlan, GridTask
    >>> plan = GridPlan(Path(tempfile.mkdtemp()), [GridTask("phantom", "resnet18", 0, 0, "r")])
    >>> status = grid_status(plan)
    >>> status.counts()
    {'done': 0, 'running': 0, 'failed': 0, 'pending': 1, 'total': 1}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from covidlib.grid.plan import GridPlan, GridTask, read_plan
from covidlib.grid.worker import task_state

STATES: tuple[str, ...] = ("done", "running", "failed", "pending")


@dataclass(frozen=True)
class TaskStatus:
    """One task's state and its detail (who runs it, the last error line, a stale lock)."""

    task: GridTask
    state: str
    detail: str = ""


@dataclass
class GridStatus:
    """The state of every task of a plan."""

    plan: GridPlan
    tasks: list[TaskStatus]

    def counts(self) -> dict[str, int]:
        """Return the number of tasks per state and ``total``."""
        counts = {state: sum(t.state == state for t in self.tasks) for state in STATES}
        return {**counts, "total": len(self.tasks)}

    def of(self, state: str) -> list[TaskStatus]:
        """Return the tasks in ``state``."""
        return [t for t in self.tasks if t.state == state]

    def to_dict(self) -> dict[str, Any]:
        """The counts and one entry per task (``covidlib grid status --json``)."""
        return {
            **self.counts(),
            "grid": str(self.plan.dir),
            "tasks": [{"task": t.task.id, "state": t.state, "detail": t.detail,
                       "run": t.task.run} for t in self.tasks],
        }

    def format(self) -> str:
        """Return the counts on one line, then one line per task that is not pending or done."""
        counts = self.counts()
        lines = [", ".join(f"{counts[s]} {s}" for s in STATES) + f" of {counts['total']} tasks"]
        for state in ("running", "failed"):
            lines += [f"  {state:8s} {t.task.id}: {t.detail}" for t in self.of(state)]
        lines += [f"  pending  {t.task.id}: {t.detail}" for t in self.of("pending") if t.detail]
        return "\n".join(lines)


def grid_status(plan: GridPlan | str | Path) -> GridStatus:
    """Return the state of every task of ``plan`` (a plan or a grid folder)."""
    if not isinstance(plan, GridPlan):
        plan = read_plan(plan)
    rows = [TaskStatus(task, *task_state(plan, task)) for task in plan.tasks]
    return GridStatus(plan, rows)
