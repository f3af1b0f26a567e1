"""A folder of your own images: loose class-folder names, a labels CSV, the folder's name.

:func:`covidlib.data.index.index_dataset` reads a plain folder (the registry's ``folder``
entry) with these helpers: class folders match a name of the registry ignoring case,
spaces, ``-`` and ``_`` (:func:`folder_key`); a CSV with columns ``path,label`` labels files
instead (:func:`read_labels_file`); the index, the letterbox cache, fold files and stored
results are named after the folder (:func:`folder_dataset_name`).

Example:
    >>> folder_key("Non_COVID"), folder_key("non covid"), folder_key("CT-NonCOVID")
    ('noncovid', 'noncovid', 'ctnoncovid')
    >>> folder_dataset_name("/data/My scans (2021)")
    'My-scans-2021'
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

__all__ = ["LABEL_NAMES", "LAYOUT_HINT", "LabelsFileError", "folder_dataset_name", "folder_key",
           "read_labels_file"]

# label text (after folder_key) -> label; the class names and 1/0 are accepted
LABEL_NAMES: dict[str, int] = {"1": 1, "covid": 1, "0": 0, "noncovid": 0}
LAYOUT_HINT = ("expected COVID/ (or CT_COVID/) and non-COVID/ (or CT_NonCOVID/), case, spaces, "
               "- and _ forgiven, or a labels file (--labels FILE.csv with columns path,label)")


class LabelsFileError(ValueError):
    """A labels CSV that cannot be used (missing column, unknown label, missing file)."""


def folder_key(name: str) -> str:
    """Return a folder or label name lower-cased without spaces, ``-`` and ``_``.

    Example:
        >>> folder_key(" CT_COVID ") == folder_key("ct-covid")
        True
    """
    return re.sub(r"[\s_\-]+", "", name).lower()


def folder_dataset_name(root: str | Path) -> str:
    """Return the dataset name of a plain folder: its own name with only letters, digits,
    ``.``, ``-`` and ``_`` (results go to ``results/<name>/``, folds to ``runs/<name>/``).

    A folder named like a registered dataset gets ``-folder`` appended, so that its fold
    files and results never mix with the registered dataset's.

    Example:
        >>> folder_dataset_name("scans/covid19-ct"), folder_dataset_name("/")
        ('covid19-ct-folder', 'folder')
    """
    from covidlib.data.registry import DATASETS

    name = Path(root).expanduser().absolute().resolve().name
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-") or "folder"
    return f"{name}-folder" if name in DATASETS and name != "folder" else name


def read_labels_file(path: str | Path, root: str | Path) -> list[tuple[int, Path]]:
    """Return ``(label, file)`` of every row of a labels CSV (columns ``path,label``).

    Paths are relative to ``root`` (and must stay inside it); labels are ``1``/``0`` or
    ``COVID``/``non-COVID`` (case, spaces, ``-`` and ``_`` forgiven).

    Raises:
        LabelsFileError: unreadable file, missing column, empty table, unknown label, a file
            that is missing, outside ``root`` or listed twice; the message names the row.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> (root / "a.png").write_bytes(b"x")
        1
        >>> _ = (root / "labels.csv").write_text("path,label\\na.png,non-COVID\\n")
        >>> read_labels_file(root / "labels.csv", root) == [(0, root / "a.png")]
        True
    """
    source, base = Path(path), Path(root)
    try:
        table = pd.read_csv(source, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as error:
        raise LabelsFileError(f"cannot read the labels file {source}: {error}") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in ("path", "label") if c not in table.columns]
    if missing:
        raise LabelsFileError(f"the labels file {source} needs the columns path,label "
                              f"(missing {', '.join(missing)}).")
    if table.empty:
        raise LabelsFileError(f"the labels file {source} lists no image.")
    rows: list[tuple[int, Path]] = []
    seen: set[Path] = set()
    inside = base.resolve()
    for number, (relpath, label) in enumerate(zip(table["path"], table["label"],
                                                  strict=True), start=2):
        where = f"{source}, line {number}"
        value = LABEL_NAMES.get(folder_key(label))
        if value is None:
            raise LabelsFileError(f"{where}: unknown label {label!r}; use 1/0 or "
                                  "COVID/non-COVID.")
        file = base / relpath.strip()
        if not relpath.strip() or not file.is_file():
            raise LabelsFileError(f"{where}: {relpath!r} is not a file in {base}.")
        if not file.resolve().is_relative_to(inside):
            raise LabelsFileError(f"{where}: {relpath!r} lies outside {base}; give paths "
                                  "relative to the folder.")
        if file.resolve() in seen:
            raise LabelsFileError(f"{where}: {relpath!r} is listed twice.")
        seen.add(file.resolve())
        rows.append((value, file))
    return rows
