"""The seven architecture chapters (``chapters/architectures/*.ipynb``): one call per step.

Each chapter creates the profile's model, shows the computed Table 1, letterboxes a COVID
slice onto the model's canvas and tabulates the feature maps, fine-tunes on one fold and plots
the loss; each step is one function here, so a chapter keeps only its family's own code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from covidlib.book.glue import glue

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


TABLE1_COLUMNS: tuple[str, ...] = (
    "paper_name", "default_input", "custom_input", "layers", "paper_layers",
    "params_millions", "paper_params_millions", "size_mb", "paper_size_mb",
)


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
