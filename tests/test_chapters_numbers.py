"""Numbers stated in the chapters' prose, checked against what covidlib computes or ships.

A number in a chapter is either glued from a computation (``{glue:text}`key``` roles, checked
here to be glued in the same notebook) or listed below with the sentence that states it and
the library value it must match. The real dataset's numbers the letterbox chapter cites live
in ``covidlib/tables/dataset_facts.csv``; the ``realdata`` test recomputes them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from covidlib import book
from covidlib.config import get_profile
from covidlib.data import get_dataset, index_dataset
from covidlib.models import get_spec, list_models, paper_table1

REPO_ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = REPO_ROOT / "chapters"
NOTEBOOKS = sorted(CHAPTERS.rglob("*.ipynb"))
GLUE_ROLE = re.compile(r"\{glue(?::text)?\}`([^`:]+)(?::[^`]*)?`")


def cells(notebook: Path, kind: str) -> list[str]:
    data = json.loads(notebook.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in data["cells"] if c["cell_type"] == kind]


def prose(chapter: str) -> str:
    """The chapter's Markdown, with line breaks folded into spaces."""
    return " ".join(" ".join(cells(CHAPTERS / chapter, "markdown")).split())


def paper_params(model: str) -> float:
    table = paper_table1().set_index("model")
    return float(table.loc[model, "params_millions"])


def smallest_by_paper_params(k: int) -> list[str]:
    return paper_table1().sort_values("params_millions")["model"].head(k).tolist()


def canvas_of(family: str) -> set[tuple[int, int]]:
    return {get_spec(n).custom_input for n in list_models() if get_spec(n).family == family}


def sars_counts() -> tuple[tuple[int, int, int], ...]:
    return tuple(
        (v.covid + v.non_covid, v.covid, v.non_covid)
        for v in get_dataset("sars-cov-2-ct").expected_counts
    )


# (chapter, the sentence as written (whitespace folded), the check of its number)
CLAIMS: list[tuple[str, str, Callable[[], bool]]] = [
    ("intro.ipynb", "fine-tunes **12 ImageNet CNNs from 7 families**",
     lambda: len(list_models()) == 12 and len({get_spec(n).family for n in list_models()}) == 7),
    ("intro.ipynb", "(for example 349 x 253 for ResNet and DenseNet)",
     lambda: canvas_of("ResNet") == canvas_of("DenseNet") == {(349, 253)}),
    ("intro.ipynb", "(100 epochs, batch 32, LAMB with learning rate 3e-4 and weight decay 1)",
     lambda: (get_profile("full").epochs, get_profile("full").batch_size, get_profile("full").lr)
     == (100, 32, 3e-4)),
    ("datasets.ipynb", "The paper counts 2482 images (1252 COVID, 1230 non-COVID); the copies you "
     "can download today hold 2481",
     lambda: sars_counts() == ((2482, 1252, 1230), (2481, 1252, 1229))),
    ("datasets.ipynb", "349 COVID and 397 non-COVID images",
     lambda: [(v.covid, v.non_covid) for v in get_dataset("covid19-ct").expected_counts]
     == [(349, 397)]),
    ("datasets.ipynb", "a 256-bit (16x16) average hash",
     lambda: _default("find_duplicates", "hash_size") == 16),
    ("datasets.ipynb", "at most 10 of the 256 bits differ",
     lambda: _default("find_duplicates", "max_distance") == 10),
    ("augmentation.ipynb", "**Blur** hits a quarter of the images",
     lambda: _augment_default("blur_p") == 0.25),
    ("architectures/squeezenet.ipynb", "the smallest model of the paper after ShuffleNet",
     lambda: smallest_by_paper_params(2) == ["ShuffleNet", "SqueezeNet"]),
    ("architectures/squeezenet.ipynb", "(0.73 in the paper's Table 1)",
     lambda: paper_params("SqueezeNet") == 0.73),
    ("architectures/shufflenet.ipynb", "its parameter count (0.34 M) is that of torchvision's "
     "**ShuffleNet V2 x0.5**",
     lambda: paper_params("ShuffleNet") == 0.34
     and get_spec("shufflenet").constructor == "shufflenet_v2_x0_5"),
    ("architectures/shufflenet.ipynb", "the smallest network of the paper",
     lambda: smallest_by_paper_params(1) == ["ShuffleNet"]),
    ("architectures/resnet.ipynb", "lets ResNet grow from 18 to 101 layers",
     lambda: sorted(get_spec(n).layers for n in ("resnet18", "resnet50", "resnet101"))
     == [18, 50, 101]),
    ("architectures/resnet.ipynb", "2 times as many, for almost 3 times the layers",
     lambda: round(paper_params("ResNet50") / paper_params("ResNet18")) == 2
     and 2.5 < get_spec("resnet50").layers / get_spec("resnet18").layers < 3),
    ("architectures/resnext.ipynb", "M against 23.51 M)",
     lambda: paper_params("ResNet50") == 23.51),
    ("architectures/resnext.ipynb", "ResNeXt101 uses 8 channels per path (32x8d)",
     lambda: get_spec("resnext101").constructor.endswith("32x8d")),
    ("architectures/resnext.ipynb", "`resnext50_32x4d` reads \"cardinality 32, 4 channels per "
     "path\"", lambda: get_spec("resnext50").constructor == "resnext50_32x4d"),
    ("architectures/resnext.ipynb", "is by far the largest model of the paper",
     lambda: paper_table1().sort_values("params_millions")["model"].tolist()[-1] == "ResNeXt101"),
    ("architectures/inception.ipynb", "Inception V3 gets its 48 layers",
     lambda: get_spec("inceptionv3").layers == 48),
    ("architectures/inception.ipynb", "it needs inputs of at least 75x75 pixels; the paper's "
     "331x267 canvas keeps more of the slice than 299x299",
     lambda: (get_spec("inceptionv3").min_input, get_spec("inceptionv3").custom_input,
              get_spec("inceptionv3").default_input) == ((75, 75), (331, 267), (299, 299))),
    ("architectures/xception.ipynb", "the 37th layer of Table 1 is the fully connected one",
     lambda: get_spec("xception").layers == 37),
    ("architectures/xception.ipynb", "M against 21.8 M)",
     lambda: round(paper_params("InceptionV3"), 1) == 21.8),
    ("architectures/xception.ipynb", "Its large 2048-channel last layer",
     lambda: get_spec("xception").feature_dim == 2048),
    ("architectures/densenet.ipynb", "DenseNet121 has 121 layers",
     lambda: get_spec("densenet121").layers == 121),
    ("architectures/densenet.ipynb", "million parameters, fewer than ResNet18",
     lambda: paper_params("DenseNet121") < paper_params("ResNet18")),
    ("architectures/densenet.ipynb", "The 169- and 201-layer models",
     lambda: (get_spec("densenet169").layers, get_spec("densenet201").layers) == (169, 201)),
]


def _default(function: str, parameter: str) -> object:
    import inspect

    import covidlib.audit

    return inspect.signature(getattr(covidlib.audit, function)).parameters[parameter].default


def _augment_default(field: str) -> object:
    from covidlib.config import AugmentConfig

    return getattr(AugmentConfig(), field)


@pytest.mark.parametrize(
    ("chapter", "sentence", "check"), CLAIMS, ids=[f"{c}: {s[:40]}" for c, s, _ in CLAIMS]
)
def test_stated_number_matches_the_library(
    chapter: str, sentence: str, check: Callable[[], bool]
) -> None:
    assert sentence in prose(chapter), (
        f"{chapter} no longer says {sentence!r}: update CLAIMS in this test with the new text"
    )
    assert check(), f"{chapter}: {sentence!r} does not match what covidlib computes"


def glued_keys(notebook: Path) -> set[str]:
    """Every key the notebook's code glues, directly or through a covidlib.book helper."""
    code = "\n".join(cells(notebook, "code"))
    keys = set(re.findall(r"\bglue\(\s*[\"']([^\"']+)[\"']", code))
    for listed in re.findall(r"book\.table1\((\[[^\]]*\])\)", code):
        names = json.loads(listed.replace("'", '"'))
        keys |= {f"params_{get_spec(name).paper_name}" for name in names}
    for dataset in re.findall(r"glue_dataset_facts\(\s*[\"']([^\"']+)[\"']", code):
        keys |= {f"{dataset.replace('-', '_')}_{fact}" for fact in book.dataset_facts(dataset)[
            dataset]}
    return keys


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(CHAPTERS)))
def test_every_glue_role_is_glued_in_its_notebook(notebook: Path) -> None:
    used = set(GLUE_ROLE.findall("\n".join(cells(notebook, "markdown"))))
    # glue(f"acc_{strategy}_{budget}", ...) in a loop glues every key with that literal prefix
    prefixes = re.findall(r"\bglue\(\s*f[\"']([^\"'{]+)\{", "\n".join(cells(notebook, "code")))
    missing = {key for key in used - glued_keys(notebook) if not key.startswith(tuple(prefixes))}
    assert not missing, f"{notebook.name}: prose pastes {sorted(missing)}, never glued"


def test_letterbox_chapter_cites_the_measured_sizes() -> None:
    text = prose("letterbox.ipynb")
    assert "124 x 153" not in text and "1485 x 1853" not in text
    for fact in ("width_min", "height_min", "width_max", "height_max"):
        assert f"{{glue:text}}`covid19_ct_{fact}`" in text


def test_dataset_facts_table_is_complete() -> None:
    facts = book.dataset_facts("covid19-ct")["covid19-ct"]
    assert facts["n_covid"] + facts["n_non_covid"] == facts["n_images"]
    assert facts["width_min"] < facts["width_max"] and facts["height_min"] < facts["height_max"]
    with pytest.raises(ValueError, match="no facts for 'nope'"):
        book.dataset_facts("nope")


@pytest.mark.realdata
def test_dataset_facts_match_the_real_copy(covid19_ct_root: Path) -> None:
    index = index_dataset("covid19-ct", covid19_ct_root)
    summary, images = index.summary(), index.images
    aspect = images["width"] / images["height"]
    measured = {
        "n_images": summary["n_images"],
        "n_covid": summary["counts"]["covid"],
        "n_non_covid": summary["counts"]["non_covid"],
        "n_patients": summary["group_kinds"]["patient"],
        "width_min": summary["size_min"][0],
        "height_min": summary["size_min"][1],
        "width_max": summary["size_max"][0],
        "height_max": summary["size_max"][1],
        "aspect_min": round(float(aspect.min()), 2),
        "aspect_max": round(float(aspect.max()), 2),
        "wider_than_tall_percent": round(100 * float((images["width"] > images["height"]).mean()),
                                         1),
    }
    assert book.dataset_facts("covid19-ct")["covid19-ct"] == measured


# Leakage audit: the honest-evaluation chapter's stated constants.
HONEST_CLAIMS: list[tuple[str, Callable[[], bool]]] = [
    ("a perceptual hash (pHash, the signs of the lowest frequencies of a discrete cosine "
     "transform) and a difference hash (dHash, the signs of horizontal gradients), 64 bits each",
     lambda: _audit_default("hash_size") == 8 and _audit_default("methods") == ("phash", "dhash")),
    ("the fraction of the 128 bits that differ",
     lambda: 2 * _audit_default("hash_size") ** 2 == 128),
    ("every image is also hashed in five slightly cropped versions",
     lambda: len(_crop_boxes()) == 5),
    ("near-duplicates (at 0.8 times the threshold)",
     lambda: _leaks_constant("GROUP_FACTOR") == 0.8),
    ("their distance is below 1.6 times the threshold",
     lambda: _leaks_constant("CONSECUTIVE_FACTOR") == 1.6),
]


def _audit_default(parameter: str) -> object:
    import inspect

    from covidlib.audit.leaks import audit_images

    return inspect.signature(audit_images).parameters[parameter].default


def _crop_boxes() -> tuple[tuple[float, float, float, float], ...]:
    from covidlib.audit.duplicates import CROP_BOXES

    return CROP_BOXES


def _leaks_constant(name: str) -> float:
    from covidlib.audit import leaks

    return float(getattr(leaks, name))


@pytest.mark.parametrize(("sentence", "check"), HONEST_CLAIMS,
                         ids=[s[:40] for s, _ in HONEST_CLAIMS])
def test_honest_evaluation_numbers_match_the_library(sentence: str,
                                                     check: Callable[[], bool]) -> None:
    assert sentence in prose("honest-evaluation.ipynb"), (
        f"honest-evaluation.ipynb no longer says {sentence!r}: update HONEST_CLAIMS")
    assert check()
