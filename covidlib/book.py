"""Helpers the chapters share (the idea of d2l's ``d2l`` package).

The seven architecture chapters run the same steps around what is specific to each family:
create the profile's model, show the computed Table 1, letterbox a COVID slice onto the
model's canvas and tabulate the feature maps, fine-tune on one fold and plot the loss. Each
step is one call here, so a chapter keeps only its family's own code. :func:`glue` and
:func:`dataset_facts` put computed numbers into the prose (MyST-NB ``{glue:text}`` roles).

Everything heavy is imported inside the functions, so ``import covidlib.book`` is cheap.

Example:
    >>> from covidlib import book
    >>> setup = book.architecture_setup("squeezenet", verbose=False)
    >>> setup.spec.paper_name, setup.profile.name
    ('SqueezeNet', 'quick')
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from covidlib.utils.lazy import lazy_exports

if TYPE_CHECKING:
    import pandas as pd
    import torch
    from matplotlib.axes import Axes
    from PIL import Image
    from torch import nn

    from covidlib.config import Profile
    from covidlib.engine.learner import FoldResult
    from covidlib.models.registry import ModelSpec
    from covidlib.transforms.geometry import Placement

# Re-exports for the chapters, served lazily like the packages' tables.
_EXPORTS: dict[str, str] = {
    "cached_run": "covidlib.engine.cv",
}
__getattr__, _ = lazy_exports(__name__, _EXPORTS)

TABLE1_COLUMNS: tuple[str, ...] = (
    "paper_name", "default_input", "custom_input", "layers", "paper_layers",
    "params_millions", "paper_params_millions", "size_mb", "paper_size_mb",
)
DATASET_FACTS_FILE = "dataset_facts.csv"
# The results chapter's quick-profile table: three small architectures of three families. The
# training chapter trains ResNet18's run, which every chapter then shares (cached_run).
RESULTS_MODELS: tuple[str, ...] = ("resnet18", "shufflenet", "squeezenet")


class ArchitectureSetup(NamedTuple):
    """What an architecture chapter starts from (unpack it or use the fields)."""

    name: str
    profile: Profile
    spec: ModelSpec
    model: nn.Module

    def header(self) -> str:
        """One line naming the model, its library and the profile."""
        return (
            f"{self.spec.paper_name}: {self.spec.library} {self.spec.constructor}, "
            f"profile {self.profile.name!r}, pretrained={self.profile.pretrained}"
        )


def architecture_setup(
    name: str, profile: Profile | None = None, *, verbose: bool = True
) -> ArchitectureSetup:
    """Create the profile's model ``name`` (one-logit head) with its spec.

    Args:
        name: a key of :func:`covidlib.models.registry.list_models`.
        profile: run profile; ``None`` reads ``COVIDLIB_PROFILE``.
        verbose: print :meth:`ArchitectureSetup.header`.

    Example:
        >>> name, profile, spec, model = architecture_setup("squeezenet")
        SqueezeNet: torchvision squeezenet1_0, profile 'quick', pretrained=False
        >>> spec.canvas(profile.canvas_scale)
        (134, 102)
    """
    from covidlib.config import get_profile
    from covidlib.models.factory import create_model
    from covidlib.models.registry import get_spec

    profile = profile or get_profile()
    setup = ArchitectureSetup(
        name, profile, get_spec(name), create_model(name, pretrained=profile.pretrained)
    )
    if verbose:
        print(setup.header())
    return setup


def table1(names: Sequence[str]) -> pd.DataFrame:
    """Table 1 computed from the instantiated models next to the paper's (``paper_*``).

    Example:
        >>> row = table1(["squeezenet"]).loc["SqueezeNet"]
        >>> row[["layers", "paper_params_millions"]].astype(float).round(2).tolist()
        [18.0, 0.73]
    """
    from covidlib.models.registry import compare_with_paper

    return compare_with_paper(list(names))[list(TABLE1_COLUMNS)].set_index("paper_name")


def glue(name: str, value: Any, display: bool = False) -> None:
    """Store ``value`` for the prose's ``{glue:text}`name``` roles (MyST-NB's ``glue``).

    NumPy scalars become Python numbers first, so that a role's format spec
    (``{glue:text}`name:.2f```) can read them back. Without MyST-NB (Colab) or outside a
    notebook it only prints the value when ``display``.

    Example:
        >>> import numpy as np
        >>> glue("aspect", np.float64(1.25), display=True)
        1.25
    """
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            print(value)
        return
    from IPython import get_ipython

    if get_ipython() is None:  # a plain Python session: nothing would receive the data
        if display:
            print(value)
        return
    myst_glue(name, value, display=display)


def glue_params(table: pd.DataFrame, *, digits: int = 2) -> dict[str, float]:
    """Glue each model's computed parameters (millions) as ``params_<PaperName>``.

    Args:
        table: a :func:`table1` table (indexed by the paper's model names).
        digits: decimals kept.

    Returns:
        The glued values by key.

    Example:
        >>> import pandas as pd
        >>> glue_params(pd.DataFrame({"params_millions": [0.7354]}, index=["SqueezeNet"]))
        {'params_SqueezeNet': 0.74}
    """
    values = {
        f"params_{paper_name}": round(float(millions), digits)
        for paper_name, millions in table["params_millions"].items()
    }
    for key, value in values.items():
        glue(key, value)
    return values


def chapter_images(profile: Profile | None = None) -> pd.DataFrame:
    """The profile's dataset table, refusing files with problems.

    The phantom is generated into ``data_dir()`` first when missing (the profile's size).

    Example:
        >>> import os, tempfile
        >>> from unittest import mock
        >>> from covidlib.config import get_profile
        >>> small = get_profile("quick").with_overrides(phantom_size=10)
        >>> with mock.patch.dict(os.environ, COVIDLIB_DATA=tempfile.mkdtemp()):
        ...     images = chapter_images(small)
        >>> len(images), sorted(set(images["label"]))
        (10, [0, 1])
    """
    from covidlib.config import get_profile
    from covidlib.data.index import index_dataset
    from covidlib.data.sources import ensure_dataset

    profile = profile or get_profile()
    root = ensure_dataset(profile.dataset, profile=profile)
    return index_dataset(profile.dataset, root).require_clean()


def letterboxed_covid_slice(
    images: pd.DataFrame, canvas: tuple[int, int]
) -> tuple[Image.Image, Placement]:
    """Letterbox the table's first COVID image onto ``canvas`` (width, height).

    Raises:
        ValueError: when the table holds no COVID image.

    Example:
        >>> import tempfile, pathlib
        >>> import pandas as pd
        >>> from PIL import Image
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "slice.png"
        >>> Image.new("L", (60, 30), 128).save(path)
        >>> boxed, placement = letterboxed_covid_slice(
        ...     pd.DataFrame({"path": [str(path)], "label": [1]}), (40, 40))
        >>> boxed.size, placement.box
        ((40, 40), (0, 10, 40, 30))
    """
    from covidlib.data.images import load_grayscale
    from covidlib.transforms.geometry import letterbox

    covid = images.loc[images["label"] == 1, "path"]
    if covid.empty:
        raise ValueError("the image table has no COVID image (label 1) to letterbox.")
    boxed, placement = letterbox(load_grayscale(covid.iloc[0]), size=canvas)
    return boxed, placement


def model_input(image: Image.Image, model_name: str) -> torch.Tensor:
    """The normalized batch ``[1, 3, H, W]`` that ``model_name`` expects for ``image``.

    The one place the chapters call :func:`covidlib.models.inspection.to_model_input`.

    Example:
        >>> from PIL import Image
        >>> model_input(Image.new("L", (40, 30)), "resnet18").shape
        torch.Size([1, 3, 30, 40])
    """
    from covidlib.models.inspection import to_model_input

    return to_model_input(image, model_name)  # normalized with the model's weights' statistics


def feature_maps(model: nn.Module, model_name: str, image: Image.Image) -> pd.DataFrame:
    """Each stage's output size when ``image`` (letterboxed) goes through ``model``.

    Example:
        >>> from PIL import Image
        >>> name, profile, spec, model = architecture_setup("squeezenet", verbose=False)
        >>> feature_maps(model, name, Image.new("L", (64, 48)))["channels"].iloc[-1].item()
        1
    """
    from covidlib.models.inspection import feature_map_sizes

    return feature_map_sizes(model, model_input(image, model_name))


def show_letterboxed_slice(boxed: Image.Image, ax: Axes | None = None) -> Axes:
    """Draw a letterboxed slice with its canvas size in the title.

    Example:
        >>> from PIL import Image
        >>> show_letterboxed_slice(Image.new("L", (40, 30))).get_title()
        'letterboxed onto 40x30 (width x height)'
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3))
    ax.imshow(boxed, cmap="gray", vmin=0, vmax=255)
    ax.set_title(f"letterboxed onto {boxed.size[0]}x{boxed.size[1]} (width x height)", fontsize=9)
    ax.axis("off")
    return ax


def fine_tune_demo(
    name: str, images: pd.DataFrame, profile: Profile | None = None, *, seed: int = 0
) -> FoldResult:
    """Fine-tune ``name`` on fold 0 with the profile's settings and print what it saw.

    :func:`covidlib.engine.cv.fit_first_fold` does the work (a class-balanced sample of
    ``profile.demo_images_per_class`` images per class in the quick profile).

    Example:
        >>> import os, tempfile
        >>> from unittest import mock
        >>> from covidlib.config import get_profile
        >>> from covidlib.data.index import index_dataset
        >>> from covidlib.data.phantom import generate_phantom
        >>> folder = tempfile.mkdtemp()  # the letterbox cache goes to COVIDLIB_DATA
        >>> images = index_dataset("phantom", generate_phantom(folder + "/p", n=12)).images
        >>> tiny = get_profile("quick").with_overrides(
        ...     canvas_scale=0.12, epochs=1, batch_size=4, demo_images_per_class=4, folds=2)
        >>> with mock.patch.dict(os.environ, COVIDLIB_DATA=folder, COVIDLIB_PROGRESS="0"):
        ...     result = fine_tune_demo("squeezenet", images, tiny)
        4 test images (fold 0 of 2), canvas (40, 32)
        >>> len(result.history), sorted(result.metrics)[0]
        (1, 'accuracy')
    """
    from covidlib.config import get_profile
    from covidlib.engine.cv import fit_first_fold
    from covidlib.models.registry import get_spec

    profile = profile or get_profile()
    result = fit_first_fold(name, images, profile, seed=seed)
    canvas = get_spec(name).canvas(profile.canvas_scale)
    print(f"{len(result.predictions)} test images (fold 0 of {profile.folds}), canvas {canvas}")
    return result


def plot_training_loss(history: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Plot the training loss per epoch of a fold's ``history`` (epochs counted from 1).

    Example:
        >>> import pandas as pd
        >>> ax = plot_training_loss(pd.DataFrame({"epoch": [0, 1], "train_loss": [0.7, 0.5]}))
        >>> ax.lines[0].get_xdata().tolist(), ax.get_ylabel()
        ([1, 2], 'training loss')
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 2.5))
    ax.plot(history["epoch"] + 1, history["train_loss"], marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    return ax


def metrics_table(metrics: Mapping[str, float], label: str, digits: int = 3) -> pd.DataFrame:
    """A one-column table of a fold's metrics, rounded.

    Example:
        >>> metrics_table({"accuracy": 0.83333, "f1": 0.8}, "ResNet18")
                  ResNet18
        accuracy     0.833
        f1           0.800
    """
    import pandas as pd

    return pd.Series(dict(metrics), name=label).round(digits).to_frame()


def dataset_facts(dataset: str | None = None) -> dict[str, dict[str, int | float]]:
    """Numbers measured once on the real datasets (``covidlib/tables/dataset_facts.csv``).

    The book builds on the phantom, where the real copies may be absent, so the prose cites
    these; ``tests/test_chapters_numbers.py`` recomputes them from a real copy.

    Args:
        dataset: one registry name, or ``None`` for all.

    Returns:
        dataset -> fact -> value (int where the value is whole).

    Raises:
        ValueError: for a dataset the table does not cover.

    Example:
        >>> facts = dataset_facts("covid19-ct")["covid19-ct"]
        >>> facts["width_min"], facts["height_min"], facts["width_max"], facts["height_max"]
        (53, 26, 1408, 1114)
    """
    text = (files("covidlib") / "tables" / DATASET_FACTS_FILE).read_text(encoding="utf-8")
    facts: dict[str, dict[str, int | float]] = {}
    for row in csv.DictReader(text.splitlines()):
        value = float(row["value"])
        facts.setdefault(row["dataset"], {})[row["fact"]] = (
            int(value) if value.is_integer() and "." not in row["value"] else value
        )
    if dataset is not None:
        if dataset not in facts:
            raise ValueError(
                f"{DATASET_FACTS_FILE} has no facts for {dataset!r}; it covers {sorted(facts)}."
            )
        return {dataset: facts[dataset]}
    return facts


def glue_dataset_facts(dataset: str) -> dict[str, int | float]:
    """Glue every fact of ``dataset`` as ``<dataset>_<fact>`` (``-`` becomes ``_``).

    Example:
        >>> glue_dataset_facts("covid19-ct")["covid19_ct_width_max"]
        1408
    """
    prefix = dataset.replace("-", "_")
    glued = {f"{prefix}_{fact}": value for fact, value in dataset_facts(dataset)[dataset].items()}
    for key, value in glued.items():
        glue(key, value)
    return glued


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
    import json

    import pandas as pd

    columns = ["dataset", "model", "id", "profile", "weights", "data", "hardware", "date",
               "commit", "path"]
    base = Path(folder) if folder is not None else results_dir()
    rows = []
    if base is not None and base.is_dir():
        for provenance in sorted(base.glob("*/*/*/provenance.json")):
            record = json.loads(provenance.read_text())
            rows.append({**{key: record.get(key) for key in columns},
                         "id": provenance.parent.name, "path": str(provenance.parent)})
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------------------
# Transfer learning: the transfer chapter's study
# --------------------------------------------------------------------------------------

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


def plot_learning_curve(results: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Test accuracy (with its interval) against labelled images per class, per strategy."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 4))[1]
    for offset, (strategy, rows) in zip((-0.6, 0.0, 0.6), results.groupby(
            "strategy", sort=False), strict=False):
        x = rows["per_class"] + offset
        ax.errorbar(x, rows["accuracy"], yerr=[rows["accuracy"] - rows["low"],
                    rows["high"] - rows["accuracy"]], marker="o", capsize=3, label=strategy)
    ax.set_xlabel("labelled training images per class")
    ax.set_ylabel("test accuracy (95% bootstrap interval)")
    ax.set_xticks(sorted(results["per_class"].unique()))
    ax.legend(title="strategy")
    return ax


def plot_transfer_histories(histories: pd.DataFrame, per_class: int,
                            ax: Axes | None = None) -> Axes:
    """Mean training loss per epoch of each strategy at one label budget."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 4))[1]
    chosen = histories[histories["per_class"] == per_class]
    for strategy, rows in chosen.groupby("strategy", sort=False):
        ax.plot(rows["epoch"] + 1, rows["train_loss"], marker="o", label=strategy)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean training loss")
    ax.set_title(f"{per_class} labelled images per class")
    ax.legend(title="strategy")
    return ax
# --------------------------------------------------------------------------- explanations
# (chapters/tsne.ipynb and chapters/gradcam.ipynb)

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
    """Train (once, cached under ``data/runs``) :func:`real_lesion_experiment` on
    ``shared/covid19-ct`` and score its maps on ``shared/ct-lesion-masks``.

    Returns:
        (:class:`covidlib.explain.localization.LocalizationResult`, run folder, config).
    """
    from covidlib.config import RuntimeSettings, data_dir
    from covidlib.engine.cv import load_finished_run, run_cv
    from covidlib.engine.learner import resolve_canvas
    from covidlib.explain.localization import localize_folder

    config = resolve_canvas(real_lesion_experiment())
    run_dir = data_dir() / "runs" / config.digest()[:16]
    if load_finished_run(run_dir, config) is None:
        run_cv(config, RuntimeSettings(device="cpu", progress=False),
               root=Path(shared) / "covid19-ct", out=data_dir() / "runs", run_dir=run_dir,
               log=log)
    result = localize_folder(run_dir, Path(shared) / "ct-lesion-masks", method=method)
    return result, run_dir, config


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


def localization_verdict(summary: Mapping[str, Any], score: str = "energy") -> str:
    """Say in words whether the method beats each baseline on ``score``: its interval's low
    end above the baseline's high end ("beats"), below its low end ("falls below"), else
    "does not beat" (the intervals overlap).

    Example:
        >>> entry = lambda v, lo, hi: {"energy": {"value": v, "ci_low": lo, "ci_high": hi}}
        >>> s = {"method": "gradcam", "scores": {"gradcam": entry(0.5, 0.4, 0.6),
        ...      "random": entry(0.1, 0.08, 0.12), "center": entry(0.45, 0.3, 0.55)}}
        >>> localization_verdict(s)
        'beats the random baseline and does not beat the center baseline'
    """
    method = summary["method"]
    own = summary["scores"][method][score]
    parts = []
    for name, scores in summary["scores"].items():
        if name == method:
            continue
        other = scores[score]
        if own["ci_low"] > other["ci_high"]:
            word = "beats"
        elif own["ci_high"] < other["ci_low"]:
            word = "falls below"
        else:
            word = "does not beat"
        parts.append(f"{word} the {name} baseline")
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]


# --------------------------------------------------------------------------------------
# Leakage audit: the honest-evaluation chapter
# --------------------------------------------------------------------------------------

HONEST_PREFIX = "honest-"  # stored results of benchmarks/honest_evaluation.py
# The phantom demo: several slices per synthetic patient, image-level vs patient-level folds.
PHANTOM_LEAKAGE_MODEL = "shufflenet"
PHANTOM_LEAKAGE_SETTINGS: dict[str, Any] = {"n_folds": 3, "canvas_scale": 0.15, "epochs": 8}


def honest_results(folder: str | Path | None = None) -> pd.DataFrame:
    """The stored honest-evaluation runs: one row per (split, seed) with its accuracy.

    Columns ``id``, ``split``, ``seed``, ``accuracy`` (mean over test folds), ``pooled``
    (accuracy over every test image), ``n_images``, ``n_folds``, ``date``, ``hardware``,
    ``commit``, ``path``; empty when none is stored.

    Example:
        >>> import tempfile
        >>> honest_results(tempfile.mkdtemp()).empty
        True
    """
    import json

    import pandas as pd

    from covidlib.evaluate.report import load_scored

    columns = ["id", "split", "seed", "accuracy", "pooled", "n_images", "n_folds", "date",
               "hardware", "commit", "path"]
    rows = []
    for _, stored in stored_results(folder).iterrows():
        if not str(stored["id"]).startswith(HONEST_PREFIX):
            continue
        path = Path(stored["path"])
        provenance = json.loads((path / "provenance.json").read_text())
        summary = json.loads((path / "summary.json").read_text())
        predictions = load_scored(path).predictions
        correct = (predictions["probability"] >= 0.5).astype(int) == predictions["label"]
        rows.append({
            "id": stored["id"], "split": provenance["experiment"]["split"],
            "seed": int(provenance["experiment"]["seed"]),
            "accuracy": float(summary["metrics"]["accuracy"]["mean"]),
            "pooled": float(correct.mean()), "n_images": int(len(predictions)),
            "n_folds": int(provenance["n_folds"]), "date": provenance["date"],
            "hardware": provenance["hardware"], "commit": provenance["commit"],
            "path": str(path),
        })
    return pd.DataFrame(rows, columns=columns).sort_values(["split", "seed"],
                                                           ignore_index=True)


def accuracy_gap(table: pd.DataFrame, image_level: str = "stratified",
                 patient_level: str = "official", confidence: float = 0.95) -> dict[str, Any]:
    """The image-level minus patient-level accuracy over seeds, paired by seed.

    Returns ``gap`` (mean difference), ``ci_low``/``ci_high`` (a t-interval over the seeds'
    differences, :func:`covidlib.evaluate.intervals.t_interval`), ``n_seeds`` and the two
    mean accuracies.

    Example:
        >>> import pandas as pd
        >>> table = pd.DataFrame({"split": ["stratified"] * 3 + ["official"] * 3,
        ...                       "seed": [0, 1, 2] * 2,
        ...                       "accuracy": [0.9, 0.92, 0.91, 0.8, 0.83, 0.8]})
        >>> round(accuracy_gap(table)["gap"], 4)
        0.1
    """
    from covidlib.evaluate.intervals import t_interval

    wide = table.pivot_table(index="seed", columns="split", values="accuracy")
    both = wide[[image_level, patient_level]].dropna()
    if both.empty:
        raise ValueError(f"no seed has both a {image_level!r} and a {patient_level!r} result.")
    differences = (both[image_level] - both[patient_level]).to_numpy()
    low, high = t_interval(differences, confidence, bounds=None)
    return {"gap": float(differences.mean()), "ci_low": low, "ci_high": high,
            "n_seeds": int(len(both)), image_level: float(both[image_level].mean()),
            patient_level: float(both[patient_level].mean())}


def phantom_leakage(seed: int = 0) -> dict[str, Any]:
    """Cross-validate one model on the multi-slice phantom under image-level (stratified)
    and patient-level (grouped) folds; trained once (:func:`cached_run`).

    Returns the two runs' accuracies (``stratified``, ``grouped``: mean over folds) and the
    paired bootstrap of the difference over images (each image is tested once in each
    cross-validation): ``gap``, ``ci_low``, ``ci_high``, plus ``runs`` (the two CVResults).
    """
    from covidlib.config import get_profile
    from covidlib.data.phantom import PATIENT_PHANTOM
    from covidlib.engine.cv import cached_run
    from covidlib.evaluate.intervals import paired_bootstrap_difference

    profile = get_profile("quick")
    runs = {split: cached_run(profile.experiment(PATIENT_PHANTOM, PHANTOM_LEAKAGE_MODEL,
                                                 split=split, seed=seed,
                                                 **PHANTOM_LEAKAGE_SETTINGS))
            for split in ("stratified", "grouped")}
    tables = {split: run.predictions.set_index("path").sort_index()
              for split, run in runs.items()}
    correct = {split: ((t["probability"] >= 0.5).astype(int) == t["label"]).to_numpy()
               for split, t in tables.items()}
    gap, low, high = paired_bootstrap_difference(correct["stratified"], correct["grouped"])
    return {"stratified": float(runs["stratified"].summary["mean"]["accuracy"]),
            "grouped": float(runs["grouped"].summary["mean"]["accuracy"]),
            "gap": gap, "ci_low": low, "ci_high": high, "runs": runs}


def show_pairs(pairs: Sequence[Mapping[str, Any]], n: int = 4, size: float = 2.2) -> Any:
    """Show near-duplicate pairs side by side (one row per pair, its distance above)."""
    import matplotlib.pyplot as plt

    from covidlib.data.images import load_grayscale

    shown = list(pairs)[:n]
    figure, axes = plt.subplots(len(shown), 2, figsize=(2 * size, size * len(shown)),
                                squeeze=False)
    for row, pair in zip(axes, shown, strict=True):
        for ax, key in zip(row, ("a", "b"), strict=True):
            ax.imshow(load_grayscale(pair[key]), cmap="gray")
            ax.set_title(f"{Path(pair[key]).name[:28]}", fontsize=7)
            ax.axis("off")
        row[0].text(1.02, 1.12, f"distance {pair['distance']:.3f}", transform=row[0].transAxes,
                    ha="center", fontsize=8)
    figure.tight_layout()
    return figure
