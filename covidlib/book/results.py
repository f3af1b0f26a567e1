"""The results chapter (``chapters/results.ipynb``): its models and the stored real results."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd



# The results chapter's quick-profile table: three small architectures of three families. The
# training chapter trains ResNet18's run, which every chapter then shares (cached_run).
RESULTS_MODELS: tuple[str, ...] = ("resnet18", "shufflenet", "squeezenet")


def results_dir() -> Path | None:
    """The repository's folder of stored real-run results, or ``None`` outside a checkout."""
    from covidlib.config import project_root

    root = project_root()
    return None if root is None else root / "results"


def stored_results(folder: str | Path | None = None) -> pd.DataFrame:
    """List the stored results under ``results/<dataset>/<model>/<id>/`` with provenance.

    One row per result: ``dataset``, ``model``, ``id``, ``profile``, ``weights``, ``data``,
    ``hardware``, ``date``, ``commit`` and ``path``; an empty table when there are none.

    Example:
        >>> import tempfile
        >>> stored_results(tempfile.mkdtemp()).empty
        True
    """
    import pandas as pd

    from covidlib.engine.runs import RunFolder

    columns = ["dataset", "model", "id", "profile", "weights", "data", "hardware", "date",
               "commit", "path"]
    base = Path(folder) if folder is not None else results_dir()
    rows = []
    if base is not None and base.is_dir():
        for stored in RunFolder.stored_under(base):
            record = stored.read_provenance()
            rows.append({**{key: record.get(key) for key in columns},
                         "id": stored.path.name, "path": str(stored.path)})
    return pd.DataFrame(rows, columns=columns)
