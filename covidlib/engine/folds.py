"""Fold assignment: stratified, grouped or official folds, computed once and shared.

The paper reports the mean and standard deviation over five stratified folds: fold ``k``'s
model is trained on the other four folds and evaluated on fold ``k``. The fold assignment
is computed once per dataset, strategy and seed, saved next to the runs
(``<out>/<dataset>/folds-<strategy>-k<n>-seed<seed>.csv``; grouped folds name their group
source too, ``folds-grouped-patient-k5-seed0.csv`` or ``folds-grouped-file-<sha>-...``) and
reused by every model, so all models are compared on identical folds.

Example:
    >>> import pandas as pd
    >>> images = pd.DataFrame({"label": [0, 1] * 10, "group": [str(i // 2) for i in range(20)]})
    >>> folds = assign_folds(images, n_folds=5, seed=0)
    >>> folds.value_counts().sort_index().tolist()
    [4, 4, 4, 4, 4]
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from covidlib.config import (
    SPLIT_STRATEGIES,
)
from covidlib.utils.fileio import atomic_write_text
from covidlib.utils.names import UnknownNameError

if TYPE_CHECKING:

    pass


# Never in a test fold: the training part of an official split.
TRAIN_ONLY = -1


def assign_folds(
    images: pd.DataFrame, n_folds: int = 5, seed: int = 0, strategy: str = "stratified"
) -> pd.Series:
    """Return the test fold of every row of ``images`` (a Series named ``fold``).

    Args:
        images: a dataset table with ``label`` (and ``group`` / ``split`` as needed).
        n_folds: number of folds (ignored by ``"official"``, which has one test fold).
        seed: shuffling seed.
        strategy: ``"stratified"`` (scikit-learn ``StratifiedKFold``, shuffled),
            ``"grouped"`` (``StratifiedGroupKFold`` over ``group``: no patient or source in
            two folds) or ``"official"`` (the dataset's split: ``test`` is fold 0,
            ``train``/``val`` are always trained on, marked ``-1``).

    Raises:
        ValueError: unknown strategy, too few images/groups per class, or no split column.

    Example:
        >>> split = ["train", "val", "test", "test"]
        >>> images = pd.DataFrame({"label": [0, 1, 0, 1], "split": split})
        >>> assign_folds(images, strategy="official").tolist()
        [-1, -1, 0, 0]
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if strategy not in SPLIT_STRATEGIES:
        raise UnknownNameError("split strategy", strategy, SPLIT_STRATEGIES)
    if "label" not in images.columns:
        raise ValueError(f"images needs a 'label' column; it has {list(images.columns)}.")
    labels = images["label"].astype(int).to_numpy()
    folds = np.full(len(images), TRAIN_ONLY, dtype=int)
    if strategy == "official":
        split = images["split"] if "split" in images.columns else None
        if split is None or split.isna().any():
            raise ValueError(
                "The official split needs a 'split' value (train/val/test) for every image; "
                "this dataset has none (only COVID19-CT has one). Use --split stratified."
            )
        folds[(split == "test").to_numpy()] = 0
        if not (folds == 0).any():
            raise ValueError("The official split has no 'test' images.")
        return pd.Series(folds, index=images.index, name="fold")
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2 for {strategy!r} folds (got {n_folds}).")
    smallest = int(np.bincount(labels, minlength=2).min())
    if smallest < n_folds:
        raise ValueError(
            f"The smaller class has {smallest} images, fewer than n_folds={n_folds}; "
            "use fewer folds or a larger dataset."
        )
    features = np.zeros((len(images), 1))
    if strategy == "stratified":
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        splits = splitter.split(features, labels)
    else:
        if "group" not in images.columns:
            raise ValueError("Grouped folds need a 'group' column (patient or source id).")
        groups = images["group"].astype(str).to_numpy()
        if len(set(groups)) < n_folds:
            raise ValueError(
                f"Only {len(set(groups))} groups for {n_folds} grouped folds; "
                "use fewer folds or --split stratified."
            )
        grouped = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        splits = grouped.split(features, labels, groups)
    for fold, (_, test) in enumerate(splits):
        folds[test] = fold
    return pd.Series(folds, index=images.index, name="fold")


def fold_numbers(folds: pd.Series) -> list[int]:
    """Return the test folds present in an assignment (``-1`` = train only is not one)."""
    return sorted(int(k) for k in set(folds.tolist()) if k != TRAIN_ONLY)


def fold_rows(folds: pd.Series, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """Return positional (train_rows, test_rows) of test fold ``fold``.

    Example:
        >>> fold_rows(pd.Series([0, 1, 0, -1]), 0)
        (array([1, 3]), array([0, 2]))
    """
    values = folds.to_numpy()
    if fold not in fold_numbers(folds):
        raise ValueError(f"Fold {fold} does not exist; the folds are {fold_numbers(folds)}.")
    return np.flatnonzero(values != fold), np.flatnonzero(values == fold)


def _key_column(images: pd.DataFrame) -> str:
    return "relpath" if "relpath" in images.columns else "path"


def folds_file(
    out: str | Path, dataset: str, strategy: str, seed: int, n_folds: int,
    groups: str | None = None,
) -> Path:
    """Return where the fold assignment of (dataset, strategy, seed, n_folds) is stored.

    ``groups`` (:attr:`ExperimentConfig.groups_tag`: ``"patient"`` or ``"file-<sha>"``)
    names the group source of grouped folds, so folds made from other groups are never
    reused.

    Example:
        >>> folds_file("runs", "covid19-ct", "grouped", 0, 5, groups="patient").name
        'folds-grouped-patient-k5-seed0.csv'
    """
    if strategy == "official":
        return Path(out) / dataset / "folds-official.csv"
    if strategy == "grouped" and groups:
        return Path(out) / dataset / f"folds-{strategy}-{groups}-k{n_folds}-seed{seed}.csv"
    return Path(out) / dataset / f"folds-{strategy}-k{n_folds}-seed{seed}.csv"


GROUP_FILE_COLUMNS: tuple[str, ...] = ("path", "group")


def apply_groups_file(
    images: pd.DataFrame, path: str | Path, sha256: str | None = None
) -> pd.DataFrame:
    """Return ``images`` with its ``group`` column read from a groups file.

    The file is a CSV with ``path`` (an image's ``relpath`` in the dataset, or its path) and
    ``group``, as ``covidlib audit --groups-out`` writes it.

    Raises:
        ValueError: the file changed since its sha256 was recorded, lacks a column, or does
            not list every image.

    Example:
        >>> import tempfile
        >>> groups = Path(tempfile.mkdtemp()) / "groups.csv"
        >>> _ = groups.write_text("path,group\\na.png,p1\\nb.png,p1\\n")
        >>> images = pd.DataFrame({"relpath": ["a.png", "b.png"], "label": [0, 1]})
        >>> apply_groups_file(images, groups)["group"].tolist()
        ['p1', 'p1']
    """
    from covidlib.engine.readers import read_csv
    from covidlib.utils.fileio import sha256_file

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"groups file {path} not found; write one with covidlib audit "
                         "--groups-out FILE or use --split grouped without --groups.")
    if sha256 is not None and sha256_file(path) != sha256:
        raise ValueError(
            f"the groups file {path} changed since this experiment recorded its sha256 "
            f"{sha256[:12]}...; restore it or start a new run (another --run-name or --out)."
        )
    table = read_csv(path, GROUP_FILE_COLUMNS, dtype={"path": str, "group": str},
                     hint="write it again with covidlib audit --groups-out")
    lookup = dict(zip(table["path"], table["group"], strict=True))
    out = images.copy()
    keys = [out[c].astype(str) for c in ("relpath", "path") if c in out.columns]
    groups = []
    for row in range(len(out)):
        found = next((lookup[k.iloc[row]] for k in keys if k.iloc[row] in lookup), None)
        groups.append(found)
    missing = [str(keys[0].iloc[i]) for i, g in enumerate(groups) if g is None]
    if missing:
        raise ValueError(
            f"the groups file {path} has no group for {len(missing)} image(s), e.g. "
            f"{missing[:3]}; write it again for this dataset (covidlib audit --groups-out)."
        )
    out["group"] = groups
    return out


def load_or_assign_folds(
    images: pd.DataFrame,
    path: str | Path,
    n_folds: int = 5,
    seed: int = 0,
    strategy: str = "stratified",
) -> pd.Series:
    """Return the fold assignment stored at ``path``, computing and saving it first if absent.

    Rows are matched by ``relpath`` (or ``path``), so the file stays valid when the
    dataset folder moves.

    Raises:
        ValueError: the stored file lists other images or labels than ``images``.
    """
    path = Path(path)
    key = _key_column(images)
    if not path.exists():
        folds = assign_folds(images, n_folds=n_folds, seed=seed, strategy=strategy)
        table = pd.DataFrame({"key": images[key].astype(str), "label": images["label"]})
        if "group" in images.columns:
            table["group"] = images["group"].astype(str)
        table["fold"] = folds.to_numpy()
        atomic_write_text(path, table.to_csv(index=False))
        return folds
    from covidlib.engine.readers import read_csv

    stored = read_csv(path, ("key", "label", "fold"), dtype={"key": str, "group": str},
                      hint="delete it (and the runs made with it)")
    keys = images[key].astype(str)
    lookup = stored.set_index("key")
    missing = sorted(set(keys) - set(lookup.index))
    extra = sorted(set(lookup.index) - set(keys))
    if missing or extra or len(stored) != len(images):
        raise ValueError(
            f"The fold file {path} lists other images than the dataset "
            f"({len(missing)} missing from it, {len(extra)} no longer in the dataset, e.g. "
            f"{(missing + extra)[:3]}). Delete it (and the runs made with it) or pick another "
            "--out folder."
        )
    aligned = lookup.loc[keys.to_numpy()]
    if (aligned["label"].to_numpy() != images["label"].to_numpy()).any():
        raise ValueError(f"Labels in {path} differ from the dataset; delete the fold file.")
    if strategy == "grouped" and "group" in stored.columns and "group" in images.columns:
        if (aligned["group"].astype(str).to_numpy()
                != images["group"].astype(str).to_numpy()).any():
            raise ValueError(f"Groups in {path} differ from the dataset's; delete the fold file.")
    return pd.Series(aligned["fold"].to_numpy(dtype=int), index=images.index, name="fold")
