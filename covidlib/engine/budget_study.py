"""The transfer chapter's experiment: initial weights vs labelled-data budget, one test set.

Each strategy (scratch, frozen features, fine-tuning) is trained on nested budgets of
labelled images per class and scored on one fixed held-out test set; :func:`linear_probe`
compares the initial weights' frozen features with random ones. The chapter shows it
(:mod:`covidlib.book.transfer`); this module runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import pandas as pd

    from covidlib.config import Profile


# A small, fast network (ShuffleNet: a fifth of ResNet18's CPU time per batch) with batch
# norm (so "features" also freezes running statistics) on a small canvas: 3 strategies x 3
# label budgets fit the book's time budget on two cores.
TRANSFER_MODEL = "shufflenet"


TRANSFER_BUDGETS: tuple[int, ...] = (10, 25, 50)  # labelled training images per class


TRANSFER_TEST_PER_CLASS = 40  # the one fixed held-out test set, per class


TRANSFER_EPOCHS = 10


TRANSFER_STRATEGY_ORDER: tuple[str, ...] = ("scratch", "features", "finetune")


class TransferStudy(NamedTuple):
    """What :func:`transfer_study` measured.

    Attributes:
        results: one row per strategy and budget: ``strategy``, ``per_class``, ``images``,
            ``accuracy``, ``low``, ``high`` (95% bootstrap interval over the test images),
            ``auc``, ``seconds`` (training wall time).
        histories: ``strategy``, ``per_class``, ``epoch``, ``train_loss``, ``seconds``.
        weights: the initial weights of features/finetune (a file or ``"imagenet"``).
        source: the source model's provenance (``None`` with ImageNet weights).
        images: the target dataset table.
        test_rows: the fixed held-out test rows.
        train_rows: the training rows of each budget (each contains the smaller ones).
        canvas: the letterbox canvas.
        dataset: the target dataset's name.
    """

    results: pd.DataFrame
    histories: pd.DataFrame
    weights: str
    source: dict[str, Any] | None
    images: pd.DataFrame
    test_rows: Any
    train_rows: dict[int, Any]
    canvas: tuple[int, int]
    dataset: str

    def pretrained_weights(self) -> bool | str:
        """``weights`` as ``create_model(..., pretrained=...)`` takes it."""
        return True if self.weights == "imagenet" else self.weights


def transfer_split(
    labels: Sequence[int], budgets: Sequence[int], test_per_class: int, seed: int = 0
) -> tuple[Any, dict[int, Any]]:
    """Return a fixed test set and nested class-balanced training sets, one per budget.

    Example:
        >>> test, train = transfer_split([0, 1] * 20, (2, 5), test_per_class=4)
        >>> len(test), len(train[2]), len(train[5]), set(train[2]) <= set(train[5])
        (8, 4, 10, True)
        >>> set(test) & set(train[5])
        set()
    """
    import numpy as np

    values = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test, pools = [], {}
    for label in (0, 1):
        rows = rng.permutation(np.flatnonzero(values == label))
        need = test_per_class + max(budgets)
        if len(rows) < need:
            raise ValueError(
                f"class {label} has {len(rows)} images; the test set and the largest budget "
                f"need {need}: lower the budgets or use a larger dataset."
            )
        test.append(rows[:test_per_class])
        pools[label] = rows[test_per_class:]
    train = {b: np.sort(np.concatenate([pools[0][:b], pools[1][:b]])) for b in budgets}
    return np.sort(np.concatenate(test)), train


def transfer_study(
    model: str = TRANSFER_MODEL,
    *,
    budgets: Sequence[int] = TRANSFER_BUDGETS,
    test_per_class: int = TRANSFER_TEST_PER_CLASS,
    canvas_scale: float | None = None,
    epochs: int | None = None,
    strategies: Sequence[str] = TRANSFER_STRATEGY_ORDER,
    profile: Profile | None = None,
    seed: int = 0,
    device: str | None = None,
    source_epochs: int | None = None,
    source_phantom_size: int | None = None,
) -> TransferStudy:
    """Train every strategy at every label budget and score it on one fixed test set.

    The quick profile transfers from the course's own source model (the phantom's
    non-COVID findings, :func:`covidlib.engine.pretrain.source_model`, cached under
    ``data/``) to the COVID task of the profile's phantom; the full profile transfers
    ImageNet weights to its dataset (COVID19-CT). ``scratch`` starts from random weights,
    ``features`` trains the new head on the frozen backbone, ``finetune`` trains everything.

    Args:
        model: registry name.
        budgets: labelled training images per class.
        test_per_class: test images per class (the same test set for every fit).
        canvas_scale: on the model's custom input (default: the profile's).
        epochs: per fit (quick default :data:`TRANSFER_EPOCHS`; full: the profile's).
        strategies: which of scratch/features/finetune to train.
        profile: ``None`` is the ``COVIDLIB_PROFILE`` one.
        seed: the split, the source model and every fit.
        device: ``None``: CUDA when available, else the CPU.
        source_epochs: epochs of the source model (default: its profile's).
        source_phantom_size: images of the source phantom (default: its profile's).

    Example:
        >>> import os, tempfile
        >>> from unittest import mock
        >>> from covidlib.config import get_profile
        >>> tiny = get_profile("quick").with_overrides(phantom_size=24)
        >>> with mock.patch.dict(os.environ, {"COVIDLIB_DATA": tempfile.mkdtemp()}):
        ...     study = transfer_study(budgets=(2,), test_per_class=3, canvas_scale=0.12,
        ...                            epochs=1, profile=tiny, device="cpu", source_epochs=1,
        ...                            source_phantom_size=24)
        >>> study.results[["strategy", "images"]].values.tolist()
        [['scratch', 4], ['features', 4], ['finetune', 4]]
    """
    import warnings

    import numpy as np
    import pandas as pd
    from sklearn.exceptions import UndefinedMetricWarning

    from covidlib.config import get_profile, resolve_device
    from covidlib.data.index import index_dataset
    from covidlib.data.sources import ensure_dataset
    from covidlib.engine.learner import fit_fold, resolve_canvas
    from covidlib.engine.pretrain import source_model
    from covidlib.evaluate.intervals import bootstrap_interval

    chosen = profile or get_profile()
    quick = not chosen.pretrained
    scale = canvas_scale if canvas_scale is not None else chosen.canvas_scale
    n_epochs = epochs if epochs is not None else (TRANSFER_EPOCHS if quick else chosen.epochs)
    target = resolve_device(device)
    source: dict[str, Any] | None = None
    if quick:
        pretrained = source_model(model, profile=chosen, seed=seed, canvas_scale=scale,
                                  device=target, epochs=source_epochs,
                                  phantom_size=source_phantom_size)
        weights, source = str(pretrained.weights_file), pretrained.provenance
    else:
        weights = "imagenet"
    root = ensure_dataset(chosen.dataset, None, chosen)
    index = index_dataset(chosen.dataset, root)
    images = index.require_clean(True).reset_index(drop=True)
    test_rows, train_rows = transfer_split(images["label"], budgets, test_per_class, seed)
    labels = images["label"].to_numpy()[test_rows]
    rows, histories = [], []
    canvas = None
    for strategy in strategies:
        start = "random" if strategy == "scratch" else weights
        for per_class in budgets:
            config = chosen.experiment(
                chosen.dataset, model, weights=start, strategy=strategy, canvas_scale=scale,
                epochs=n_epochs, seed=seed,
            )
            config = resolve_canvas(config)
            canvas = config.canvas
            with warnings.catch_warnings():
                # a fit on few labels may call every test image one class: precision is
                # then undefined (reported as 0.0); the study reports accuracy only
                warnings.simplefilter("ignore", UndefinedMetricWarning)
                fit = fit_fold(config, images, train_rows[per_class], test_rows,
                               dataset=index.name, device=target, show_progress=False)
            predicted = (fit.predictions["probability"].to_numpy() >= 0.5).astype(int)
            correct = (predicted == labels).astype(float)
            low, high = bootstrap_interval(np.mean, correct, seed=seed)
            rows.append({
                "strategy": strategy, "per_class": per_class, "images": 2 * per_class,
                "accuracy": float(correct.mean()), "low": low, "high": high,
                # per test image, in one order for every fit: strategies compare paired
                "correct": correct,
                "auc": float(fit.metrics["roc_auc"]),
                "seconds": float(fit.history["seconds"].sum()),
            })
            history = fit.history.copy()
            history.insert(0, "per_class", per_class)
            history.insert(0, "strategy", strategy)
            histories.append(history)
    assert canvas is not None
    return TransferStudy(
        results=pd.DataFrame(rows), histories=pd.concat(histories, ignore_index=True),
        weights=weights, source=source, images=images, test_rows=test_rows,
        train_rows=train_rows, canvas=canvas, dataset=index.name,
    )


def linear_probe(study: TransferStudy, model: str = TRANSFER_MODEL,
                 per_class: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Logistic regression on frozen penultimate features: the initial weights vs random.

    Fits scikit-learn's ``LogisticRegression`` (standardized features) on the features of
    the ``per_class`` budget's training images (default the largest budget) and scores it
    on the study's test set; one row per feature source with ``accuracy``, ``low``, ``high``.
    """
    import numpy as np
    import pandas as pd
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from covidlib.data.loaders import fold_dataloaders
    from covidlib.engine.transfer import penultimate_features
    from covidlib.evaluate.intervals import bootstrap_interval
    from covidlib.models.factory import create_model
    from covidlib.models.registry import get_spec

    budget = per_class if per_class is not None else max(study.train_rows)
    train, test = study.train_rows[budget], study.test_rows
    mean, std = get_spec(model).normalization

    def batches(rows: Any) -> Any:
        return fold_dataloaders(study.images, rows, rows, study.canvas, 32, augment=None,
                                device="cpu", mean=mean, std=std, dataset=study.dataset).valid

    rows = []
    named = "ImageNet" if study.weights == "imagenet" else "source task"
    for label, pretrained in ((named, study.pretrained_weights()), ("random", False)):
        torch.manual_seed(seed)
        network = create_model(model, pretrained=pretrained)
        x_train, y_train = penultimate_features(network, model, batches(train))
        x_test, y_test = penultimate_features(network, model, batches(test))
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        probe.fit(x_train, y_train.astype(int))
        correct = (probe.predict(x_test) == y_test.astype(int)).astype(float)
        low, high = bootstrap_interval(np.mean, correct, seed=seed)
        rows.append({"features": label, "accuracy": float(correct.mean()),
                     "low": low, "high": high, "train_images": len(train)})
    return pd.DataFrame(rows)
