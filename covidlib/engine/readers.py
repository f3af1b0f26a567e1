"""Reading and writing the JSON and CSV files of run folders and stored results.

Every read names the file and what to do when it fails (one line, a ``ValueError``), so
the command line can print it as is; :func:`jsonable` turns results (numpy numbers, paths,
non-finite floats) into data that ``json.dumps`` writes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


class RunFolderError(ValueError):
    """A run-folder or stored-result file is missing, unreadable, fails its checksum or belongs
    to another run."""


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def read_json(path: str | Path, expect: type = dict, *, hint: str = "",
              error: type[ValueError] = RunFolderError) -> Any:
    """Return the JSON value stored in ``path``, which must be an instance of ``expect``.

    Args:
        path: a JSON file.
        expect: the type the top-level value must have (``dict``, ``list``...).
        hint: what the user should do, appended to the error.
        error: the ``ValueError`` subclass raised (a reader's own error type).

    Raises:
        RunFolderError: (or ``error``) the file is missing, empty, not JSON or holds another
            type.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "settings.json"
        >>> _ = path.write_text("[1, 2]")
        >>> read_json(path, hint="delete it")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        covidlib.engine.readers.RunFolderError: .../settings.json holds a JSON list, not a JSON ...
    """
    path = Path(path)
    tail = f"; {hint}" if hint else ""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path} is missing{tail}") from None
    except UnicodeDecodeError:
        raise error(f"{path} is not a text file (not JSON){tail}") from None
    except OSError as problem:
        raise error(f"cannot read {path}: {problem.strerror or problem}{tail}") from None
    if not text.strip():
        raise error(f"{path} is empty{tail}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as problem:
        raise error(f"{path} is not valid JSON ({problem}){tail}") from None
    if not isinstance(value, expect):
        raise error(
            f"{path} holds a JSON {_json_type(value)}, not a JSON {_json_type(expect())}{tail}"
        )
    return value


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number" if isinstance(value, (int, float)) else "value")


def read_csv(
    path: str | Path,
    columns: Sequence[str] = (),
    *,
    hint: str = "",
    allow_empty: bool = False,
    **read_options: Any,
) -> pd.DataFrame:
    """Return the table stored in ``path``, which must have ``columns`` (and rows).

    Args:
        path: a CSV file.
        columns: columns the table must have.
        hint: what the user should do, appended to the error.
        allow_empty: accept a table with a header but no rows.
        read_options: passed to :func:`pandas.read_csv` (e.g. ``dtype``).

    Raises:
        RunFolderError: the file is missing, empty, not CSV or lacks a column.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "table.csv"
        >>> _ = path.write_text("path,label\\na.png,1\\n")
        >>> read_csv(path, ["path", "label"])["label"].tolist()
        [1]
        >>> read_csv(path, ["path", "fold"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        covidlib.engine.readers.RunFolderError: .../table.csv lacks the column(s) ['fold'] ...
    """
    path = Path(path)
    tail = f"; {hint}" if hint else ""
    try:
        table = pd.read_csv(path, **read_options)
    except FileNotFoundError:
        raise RunFolderError(f"{path} is missing{tail}") from None
    except pd.errors.EmptyDataError:
        raise RunFolderError(f"{path} is empty{tail}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        reason = _one_line(error)
        raise RunFolderError(f"{path} is not a readable CSV file ({reason}){tail}") from None
    except OSError as error:
        raise RunFolderError(f"cannot read {path}: {error.strerror or error}{tail}") from None
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise RunFolderError(
            f"{path} lacks the column(s) {missing} (it has {list(table.columns)[:8]}){tail}"
        )
    if table.empty and not allow_empty:
        raise RunFolderError(f"{path} has no rows{tail}")
    return table


def jsonable(value: Any) -> Any:
    """Return ``value`` as JSON-ready data: numpy numbers as Python ones, NaN and infinities
    as ``None``, paths as strings, tuples as lists, keys as strings.

    Example:
        >>> import numpy as np
        >>> jsonable({1: (np.float32(0.5), float("nan"), Path("a"))})
        {'1': [0.5, None, 'a']}
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value
