"""The explanation chapters (``chapters/tsne.ipynb``, ``chapters/gradcam.ipynb``): heat maps
scored against real lesion masks, stored and read back."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from covidlib.book.results import results_dir

if TYPE_CHECKING:
    import pandas as pd



#: The stored real-mask scores the Grad-CAM chapter shows when ../shared/datasets is absent.
REAL_LESION_SCORES_FILE = "explain/real-lesion-masks.json"


def shared_datasets_dir() -> Path | None:
    """The shared datasets folder beside the checkout (``../shared/datasets``), or ``None``.

    Example:
        >>> folder = shared_datasets_dir()
        >>> folder is None or folder.name == "datasets"
        True
    """
    from covidlib.config import project_root

    root = project_root()
    if root is None:
        return None
    folder = root.parent / "shared" / "datasets"
    return folder if folder.is_dir() else None


def real_lesion_experiment() -> Any:
    """The quick-profile ShuffleNet on the real COVID19-CT, official split: the smallest of
    the 12 networks (0.04 GFLOPs), so that a CPU trains it in minutes.

    Example:
        >>> real_lesion_experiment().split, real_lesion_experiment().model
        ('official', 'shufflenet')
    """
    from covidlib.config import get_profile

    return get_profile("quick").experiment("covid19-ct", "shufflenet", split="official")


def real_lesion_scores(
    shared: str | Path, *, log: Any = None, method: str = "gradcam"
) -> tuple[Any, Path, Any]:
    """Train (once, :func:`covidlib.engine.cv.cached_run`) :func:`real_lesion_experiment` on
    ``shared/covid19-ct`` and score its maps on ``shared/ct-lesion-masks``.

    Returns:
        (:class:`covidlib.explain.localization.LocalizationResult`, run folder, config).
    """
    from covidlib.config import RuntimeSettings
    from covidlib.engine.cv import cached_run
    from covidlib.explain.localization import localize_folder

    run = cached_run(real_lesion_experiment(), RuntimeSettings(device="cpu", progress=False),
                     log=log, data_root=Path(shared) / "covid19-ct")
    result = localize_folder(run.run_dir, Path(shared) / "ct-lesion-masks", method=method)
    return result, run.run_dir, run.config


def stored_lesion_scores(folder: str | Path | None = None) -> dict[str, Any] | None:
    """The stored real-mask scores (``results/explain/real-lesion-masks.json``), if any.

    Example:
        >>> import tempfile
        >>> stored_lesion_scores(tempfile.mkdtemp()) is None
        True
    """
    import json

    base = Path(folder) if folder is not None else results_dir()
    path = None if base is None else base / REAL_LESION_SCORES_FILE
    if path is None or not path.is_file():
        return None
    return dict(json.loads(path.read_text()))


def scores_table(summary: Mapping[str, Any], digits: int = 3) -> pd.DataFrame:
    """A localization summary's scores as a table: one row per map (method, baselines).

    Example:
        >>> s = {"scores": {"gradcam": {"pointing_game": {"value": 0.5, "ci_low": 0.2,
        ...      "ci_high": 0.8}, "energy": {"value": 0.3, "ci_low": 0.2, "ci_high": 0.4}}}}
        >>> scores_table(s).loc["gradcam", "energy"]
        '0.300 [0.200, 0.400]'
    """
    import pandas as pd

    rows = {
        name: {score: f"{entry['value']:.{digits}f} [{entry['ci_low']:.{digits}f}, "
                      f"{entry['ci_high']:.{digits}f}]"
               for score, entry in scores.items()}
        for name, scores in summary["scores"].items()
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "map"
    return table


def localization_verdict(summary: Mapping[str, Any], score: str = "energy",
                         table: pd.DataFrame | None = None) -> str:
    """Say in words whether the method beats each baseline on ``score``.

    With the per-image ``table`` (:class:`covidlib.explain.localization.LocalizationResult`)
    the course's evidence standard applies: the method "beats" a baseline when the 95%
    interval of their paired difference over the same images lies above zero, "falls below"
    it when the interval lies below zero, else "cannot be told apart from" it. A stored
    summary alone has only each map's interval; then a verdict needs the two intervals apart,
    which is stricter ("does not beat" where they overlap).

    Example:
        >>> entry = lambda v, lo, hi: {"energy": {"value": v, "ci_low": lo, "ci_high": hi}}
        >>> s = {"method": "gradcam", "scores": {"gradcam": entry(0.5, 0.4, 0.6),
        ...      "random": entry(0.1, 0.08, 0.12), "center": entry(0.45, 0.3, 0.55)}}
        >>> localization_verdict(s)
        'beats the random baseline and does not beat the center baseline'
        >>> import pandas as pd
        >>> per_image = pd.DataFrame({"gradcam_energy": [0.5, 0.6, 0.55, 0.5],
        ...     "random_energy": [0.1, 0.1, 0.12, 0.1], "center_energy": [0.6, 0.5, 0.5, 0.6]})
        >>> localization_verdict(s, table=per_image)
        'beats the random baseline and cannot be told apart from the center baseline'
    """
    from covidlib.evaluate.intervals import paired_bootstrap_difference

    method = summary["method"]
    own = summary["scores"][method][score]
    parts = []
    for name, scores in summary["scores"].items():
        if name == method:
            continue
        if table is not None:
            pairs = table[[f"{method}_{score}", f"{name}_{score}"]].dropna().to_numpy(float)
            _, low, high = paired_bootstrap_difference(pairs[:, 0], pairs[:, 1], seed=0)
            word = ("beats" if low > 0 else "falls below" if high < 0
                    else "cannot be told apart from")
        else:
            other = scores[score]
            if own["ci_low"] > other["ci_high"]:
                word = "beats"
            elif own["ci_high"] < other["ci_low"]:
                word = "falls below"
            else:
                word = "does not beat"
        parts.append(f"{word} the {name} baseline")
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
