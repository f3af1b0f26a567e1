"""Does a heat map look at the lesion? Pointing game and energy share against lesion masks.

* Pointing game (Zhang et al., ECCV 2016): is the map's maximum inside the mask? Pixels tied
  at the maximum share the point (the score is the fraction of them in the mask, the chance
  of a hit when the tie is broken at random), so a flat map is not a lucky hit.
* Energy share (the "energy-based pointing game" of Score-CAM, Wang et al., CVPR-W 2020):
  the map's total inside the mask divided by its total.

A map that is zero everywhere points nowhere and scores 0 on both. Each score comes with
baselines computed on the same images and masks: ``random`` (uniform noise: its energy is
the mask's area fraction), ``center`` (a Gaussian centre prior) and, for real slices,
``body`` and ``lungs`` (maps equal to the body and the lung field segmented from the slice
itself, :mod:`covidlib.explain.body`), and with a bootstrap interval
(:func:`covidlib.evaluate.intervals.bootstrap_interval`). A network has learned to look at
lesions only where it beats every baseline by more than the intervals' width.

:func:`localize_folder` scores any folder of ``images/`` and ``masks/`` (same file
stems); :func:`localize_run` the COVID test images of a phantom run with their masks.

Example:
    >>> mask = np.zeros((10, 10), bool)
    >>> mask[2:5, 2:5] = True
    >>> peak = np.zeros((10, 10), np.float32)
    >>> peak[3, 3] = 1.0
    >>> outside = np.zeros((10, 10), np.float32)
    >>> outside[8, 8] = 1.0
    >>> pointing_game(peak, mask), pointing_game(outside, mask), energy_share(peak, mask)
    (1.0, 0.0, 1.0)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

__all__ = [
    "BASELINES",
    "BODY_THRESHOLD",
    "IMAGE_SUFFIXES",
    "LocalizationResult",
    "body_map",
    "lung_map",
    "center_map",
    "energy_share",
    "localize_folder",
    "localize_pairs",
    "localize_run",
    "mask_pairs",
    "pointing_game",
    "random_map",
    "score_maps",
    "summarize_scores",
]

BASELINES: tuple[str, ...] = ("random", "center", "body", "lungs")
# Baselines that need a real slice (scored with ``body=True``).
SLICE_BASELINES: tuple[str, ...] = ("body", "lungs")
SCORES: tuple[str, ...] = ("pointing_game", "energy")
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# Kept for callers of the former fixed-threshold body prior; the body is now segmented
# from each slice's histogram (covidlib.explain.body).
BODY_THRESHOLD = 10
BOOTSTRAP_RESAMPLES = 1000


def _check_pair(cam: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    heat = np.asarray(cam, dtype=np.float64)
    inside = np.asarray(mask) > 0
    if heat.shape != inside.shape:
        raise ValueError(f"map of shape {heat.shape} and mask of shape {inside.shape} differ")
    return heat, inside


def pointing_game(cam: np.ndarray, mask: np.ndarray) -> float:
    """1.0 when the map's maximum lies in the mask, 0.0 outside (ties: the share inside).

    A zero map scores 0.0; an empty mask gives NaN (nothing to point at).
    """
    heat, inside = _check_pair(cam, mask)
    if not inside.any():
        return float("nan")
    top = heat.max(initial=0.0)
    if top <= 0:
        return 0.0
    peak = heat >= top
    return float(inside[peak].sum() / peak.sum())


def energy_share(cam: np.ndarray, mask: np.ndarray) -> float:
    """The share of the map's total inside the mask (0.0 for a zero map, NaN without mask).

    Example:
        >>> energy_share(np.array([[1.0, 3.0]]), np.array([[0, 1]]))
        0.75
    """
    heat, inside = _check_pair(cam, mask)
    if not inside.any():
        return float("nan")
    heat = np.clip(heat, 0.0, None)
    total = heat.sum()
    return float(heat[inside].sum() / total) if total > 0 else 0.0


def random_map(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A uniform random map (the chance baseline).

    Example:
        >>> random_map((2, 3), seed=1).shape
        (2, 3)
    """
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def center_map(shape: tuple[int, int], sigma: float = 0.25) -> np.ndarray:
    """A Gaussian centre prior, ``sigma`` times the height and the width.

    Example:
        >>> heat = center_map((5, 5))
        >>> np.unravel_index(heat.argmax(), heat.shape)
        (np.int64(2), np.int64(2))
    """
    height, width = shape
    ys = (np.arange(height) + 0.5 - height / 2) / (sigma * height)
    xs = (np.arange(width) + 0.5 - width / 2) / (sigma * width)
    return np.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2)).astype(np.float32)


def body_map(image: np.ndarray, threshold: int | None = None) -> np.ndarray:
    """1 on the body, else 0: :func:`covidlib.explain.body.body_mask` of the slice.

    ``threshold`` (a fixed gray value) replaces the slice's own Otsu level when given.

    Example:
        >>> ring = np.full((5, 5), 200, np.uint8)
        >>> ring[2, 2] = 0
        >>> ring[:, 0] = 0
        >>> body_map(ring).sum()
        np.float32(20.0)
    """
    from scipy import ndimage

    from covidlib.explain.body import body_mask

    if threshold is not None:
        return np.asarray(ndimage.binary_fill_holes(np.asarray(image) > threshold), np.float32)
    return np.asarray(body_mask(image), dtype=np.float32)


def lung_map(image: np.ndarray) -> np.ndarray:
    """1 on the lung field, else 0: :func:`covidlib.explain.body.lung_mask` of the slice.

    Example:
        >>> lung_map(np.full((4, 4), 50, np.uint8)).sum()
        np.float32(0.0)
    """
    from covidlib.explain.body import lung_mask

    return np.asarray(lung_mask(image), dtype=np.float32)


def _baseline_maps(image: np.ndarray, seed: int, body: bool) -> dict[str, np.ndarray]:
    shape = image.shape[:2]
    maps = {"random": random_map(shape, seed), "center": center_map(shape)}
    if body:
        maps["body"] = body_map(image)
        maps["lungs"] = lung_map(image)
    return maps


def score_maps(maps: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, float]:
    """Pointing game and energy of several named maps against one mask.

    Example:
        >>> score_maps({"m": np.eye(2)}, np.eye(2))
        {'m_pointing_game': 1.0, 'm_energy': 1.0}
    """
    row: dict[str, float] = {}
    for name, heat in maps.items():
        row[f"{name}_pointing_game"] = pointing_game(heat, mask)
        row[f"{name}_energy"] = energy_share(heat, mask)
    return row


def _interval(values: np.ndarray, seed: int) -> dict[str, float]:
    from covidlib.evaluate.intervals import bootstrap_interval

    data = values[np.isfinite(values)]
    if data.size == 0:
        return {"value": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    low, high = bootstrap_interval(np.mean, data, n_resamples=BOOTSTRAP_RESAMPLES, seed=seed)
    return {"value": round(float(data.mean()), 4), "ci_low": round(low, 4),
            "ci_high": round(high, 4)}


def summarize_scores(table: pd.DataFrame, names: Sequence[str], seed: int = 0) -> dict[str, Any]:
    """Mean pointing game and energy of each named map with a 95% bootstrap interval.

    Returns ``{name: {"pointing_game": {"value", "ci_low", "ci_high"}, "energy": {...}}}``.

    Example:
        >>> table = pd.DataFrame({"m_pointing_game": [1.0, 0.0], "m_energy": [0.5, 0.5]})
        >>> summarize_scores(table, ["m"])["m"]["energy"]
        {'value': 0.5, 'ci_low': 0.5, 'ci_high': 0.5}
    """
    return {
        name: {score: _interval(table[f"{name}_{score}"].to_numpy(dtype=float), seed)
               for score in SCORES}
        for name in names
    }


@dataclass
class LocalizationResult:
    """Scores of one CAM method and its baselines on a set of images with lesion masks.

    Attributes:
        table: one row per image/mask pair: ``image``, ``mask``, ``fold``, ``probability``,
            ``zero_map``, ``mask_fraction``, and ``<name>_pointing_game``/``<name>_energy``
            for the method and each baseline.
        summary: JSON-ready: ``n_images``, ``method``, ``target``, ``model``, ``folds``,
            ``baselines``, ``zero_maps``, ``mean_mask_fraction`` and ``scores`` (see
            :func:`summarize_scores`).
    """

    table: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The summary as indented JSON."""
        return json.dumps(self.summary, indent=2, allow_nan=True) + "\n"

    def lines(self) -> list[str]:
        """The scores as aligned text lines (what ``covidlib localize`` prints)."""
        out = [f"# {self.summary['model']}, {self.summary['method']} (target "
               f"{self.summary['target']}), folds {self.summary['folds']}, "
               f"{self.summary['n_images']} images, {self.summary['zero_maps']} zero map(s), "
               f"mean lesion fraction {self.summary['mean_mask_fraction']:.3f}"]
        width = max(12, *(len(name) + 2 for name in self.summary["scores"]))
        out.append(f"{'map':<{width}}{'pointing game [95% CI]':<28}energy [95% CI]")
        for name, scores in self.summary["scores"].items():
            cells = [f"{s['value']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]"
                     for s in (scores["pointing_game"], scores["energy"])]
            out.append(f"{name:<{width}}{cells[0]:<28}{cells[1]}")
        return out


def _read_mask(path: str | Path, shape: tuple[int, ...]) -> np.ndarray:
    from covidlib.data.images import load_grayscale

    mask = np.asarray(load_grayscale(path)) > 0
    if mask.shape != shape[:2]:
        raise ValueError(
            f"mask {path} is {mask.shape[1]}x{mask.shape[0]} but its image is "
            f"{shape[1]}x{shape[0]} (width x height); masks must match their images"
        )
    return mask


def localize_pairs(
    run_dir: str | Path,
    images: Sequence[str | Path],
    masks: Sequence[str | Path],
    folds: Sequence[int],
    *,
    method: str = "gradcam",
    target: str = "covid",
    body: bool = False,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> LocalizationResult:
    """Score the CAM of each image (by the model of its fold) and the baselines on its mask.

    Args:
        run_dir: a run folder.
        images: image files; masks: their lesion masks (same sizes), in the same order.
        folds: the fold whose model explains each image.
        method, target: as for :func:`covidlib.explain.cam.compute_cams`.
        body: add the body prior (for real slices).
        device: where the CAMs are computed.
        seed: seeds the random baseline and the bootstrap.
    """
    from covidlib.engine.predict import load_fold_model
    from covidlib.engine.runs import RunFolder, run_identity
    from covidlib.explain.cam import explain_images

    if not (len(images) == len(masks) == len(folds)):
        raise ValueError("images, masks and folds must be equally long")
    if not images:
        raise ValueError("no image/mask pairs to score")
    rows: list[dict[str, Any]] = []
    for fold in sorted(set(int(f) for f in folds)):
        chosen = [i for i, f in enumerate(folds) if int(f) == fold]
        model = load_fold_model(run_dir, fold)
        cams = explain_images(run_dir, [images[i] for i in chosen], fold, method=method,
                              target=target, device=device, model=model)
        for index, cam in zip(chosen, cams, strict=True):
            mask = _read_mask(masks[index], cam.image.shape)
            maps = {method: cam.map, **_baseline_maps(cam.image, seed + index, body)}
            rows.append({
                "order": index, "image": str(images[index]), "mask": str(masks[index]),
                "fold": fold, "probability": cam.probability, "zero_map": cam.zero,
                "mask_fraction": float(mask.mean()), **score_maps(maps, mask),
            })
    table = pd.DataFrame(rows).sort_values("order").drop(columns="order").reset_index(drop=True)
    names = [method] + [b for b in BASELINES if body or b not in SLICE_BASELINES]
    model_name = str(run_identity(RunFolder(run_dir).read_config())["model"])
    summary = {
        "n_images": int(len(table)),
        "method": method,
        "target": target,
        "model": model_name,
        "folds": sorted(set(int(f) for f in folds)),
        "baselines": names[1:],
        "zero_maps": int(table["zero_map"].sum()),
        "mean_mask_fraction": round(float(table["mask_fraction"].mean()), 4),
        "scores": summarize_scores(table, names, seed),
    }
    return LocalizationResult(table, summary)


def mask_pairs(folder: str | Path) -> pd.DataFrame:
    """Pair ``folder/images/<stem>.*`` with ``folder/masks/<stem>.*`` (columns image, mask).

    Raises:
        FileNotFoundError: no ``images/`` or ``masks/`` folder.
        ValueError: no images, or images without a mask (named).
    """
    base = Path(folder)
    found = {}
    for part in ("images", "masks"):
        sub = base / part
        if not sub.is_dir():
            raise FileNotFoundError(
                f"{base} has no {part}/ folder; --masks needs DIR/images and DIR/masks with "
                "the same file stems"
            )
        found[part] = {p.stem: p for p in sorted(sub.iterdir())
                       if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")}
    if not found["images"]:
        raise ValueError(f"{base / 'images'} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    missing = sorted(set(found["images"]) - set(found["masks"]))
    if missing:
        raise ValueError(
            f"{len(missing)} image(s) in {base / 'images'} have no mask in {base / 'masks'} "
            f"(e.g. {', '.join(missing[:3])}); give every image a mask with the same stem"
        )
    return pd.DataFrame({"image": [str(found["images"][s]) for s in found["images"]],
                         "mask": [str(found["masks"][s]) for s in found["images"]]})


def _default_fold(run_dir: str | Path) -> int:
    from covidlib.engine.predict import usable_folds
    from covidlib.engine.readers import RunFolderError

    folds = usable_folds(run_dir)
    if not folds:
        raise RunFolderError(f"{run_dir} has no finished fold yet; run `covidlib cv` first.")
    return 0 if 0 in folds else folds[0]


def localize_folder(
    run_dir: str | Path,
    folder: str | Path,
    fold: int | None = None,
    *,
    method: str = "gradcam",
    target: str = "covid",
    body: bool = True,
    device: str | torch.device = "cpu",
) -> LocalizationResult:
    """Score every image of ``folder/images`` against ``folder/masks``.

    Without ``fold`` an image of the run's own data is explained by the fold model that
    held it out, any other image by fold 0 (every pair counts, whatever its prediction).

    Example:
        >>> mask_pairs("/nonexistent")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: /nonexistent has no images/ folder; --masks needs DIR/images and ...
    """
    from covidlib.engine.runs import RunFolder

    pairs = mask_pairs(folder)
    if fold is None:
        default = _default_fold(run_dir)
        held_out = {str(Path(p).resolve()): int(f) for p, f in
                    RunFolder(run_dir).read_folds()[["path", "fold"]].itertuples(index=False)}
        folds = [held_out.get(str(Path(p).resolve()), default) for p in pairs["image"]]
        folds = [f if f >= 0 else default for f in folds]
    else:
        folds = [fold] * len(pairs)
    return localize_pairs(run_dir, list(pairs["image"]), list(pairs["mask"]), folds,
                          method=method, target=target, body=body, device=device)


def localize_run(
    run_dir: str | Path,
    fold: int | None = None,
    *,
    method: str = "gradcam",
    target: str = "covid",
    device: str | torch.device = "cpu",
) -> LocalizationResult:
    """Score the COVID test images of a run on a dataset with lesion masks (the phantom).

    Each image is explained by the fold model that held it out; with ``fold`` only that
    fold's test images are scored.

    Raises:
        ValueError: the run's dataset has no lesion masks (pass a folder to
            :func:`localize_folder` instead) or no COVID test image is left.
    """
    from covidlib.data.registry import get_dataset
    from covidlib.engine.predict import usable_folds
    from covidlib.engine.runs import RunFolder

    run = RunFolder(run_dir)
    dataset = str(run.read_config().get("dataset"))
    spec = get_dataset(dataset)
    if spec.mask_folder is None:
        raise ValueError(
            f"the {dataset} dataset of {run_dir} has no lesion masks; pass --masks DIR "
            "(a folder with images/ and masks/, e.g. ../shared/datasets/ct-lesion-masks)"
        )
    table = run.read_folds()
    finished = usable_folds(run_dir)
    chosen = table[(table["label"] == 1) & table["fold"].isin([fold] if fold is not None
                                                               else finished)]
    if chosen.empty:
        raise ValueError(f"{run_dir} has no COVID test image in fold(s) "
                         f"{[fold] if fold is not None else finished}")
    images = [Path(p) for p in chosen["path"]]
    masks = [p.parent.parent / spec.mask_folder / p.parent.name / p.name for p in images]
    absent = [str(m) for m in masks if not m.is_file()]
    if absent:
        raise FileNotFoundError(f"lesion mask(s) not found: {', '.join(absent[:3])}; "
                                "regenerate the dataset (covidlib phantom)")
    return localize_pairs(run_dir, images, masks, [int(f) for f in chosen["fold"]],
                          method=method, target=target, body=False, device=device)
