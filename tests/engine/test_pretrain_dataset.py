"""`covidlib pretrain --source DATASET --root DIR`: a labelled folder dataset as the source."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from covidlib.cli import main
from covidlib.engine.pretrain_dataset import holdout_split


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Phantom slices in the class folders of sars-cov-2-ct (COVID/, non-COVID/)."""
    import pandas as pd

    from covidlib.data.phantom import generate_phantom

    base = tmp_path_factory.mktemp("labelled")
    phantom = generate_phantom(base / "phantom", n=20, seed=3, difficulty=0.2)
    root = base / "source"
    labels = pd.read_csv(phantom / "labels.csv")
    for row in labels.itertuples():
        folder = root / ("COVID" if row.label == 1 else "non-COVID")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(phantom / row.file, folder / Path(row.file).name)
    return root


def test_pretrain_from_a_labelled_folder(labelled_folder: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from covidlib.models.factory import create_model

    out = tmp_path / "sq-sars.pt"
    assert main(["pretrain", "--source", "sars-cov-2-ct", "--root", str(labelled_folder),
                 "--model", "squeezenet", "--profile", "quick", "--epochs", "1",
                 "--device", "cpu", "--out", str(out)]) == 0
    assert "held-out accuracy" in capsys.readouterr().out
    provenance = json.loads(out.with_suffix(".json").read_text())
    assert provenance["source"] == "sars-cov-2-ct" and provenance["data"]["images"] == 20
    assert provenance["data"]["train_images"] + provenance["data"]["test_images"] == 20
    low, high = provenance["source_accuracy_ci"]
    assert 0 <= low <= provenance["source_accuracy"] <= high <= 1
    assert {"hardware", "commit", "date", "weights_sha256"} <= set(provenance)
    create_model("squeezenet", pretrained=out)  # the backbone loads


def test_pretrain_root_needs_a_dataset_source(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pretrain", "--model", "squeezenet", "--root", str(tmp_path),
                 "--out", str(tmp_path / "x.pt")]) == 2
    assert "--root is for a dataset --source" in capsys.readouterr().err


@pytest.mark.parametrize("fraction", [0.2, 0.25, 0.5])
def test_holdout_split_keeps_groups_apart(fraction: float) -> None:
    labels = [0, 1] * 20
    groups = [i // 4 for i in range(40)]  # patients with four slices each
    train, test = holdout_split(labels, groups, fraction, seed=1)
    assert not {groups[i] for i in train} & {groups[i] for i in test}
    assert {labels[i] for i in test} == {0, 1} and len(train) + len(test) == 40
    with pytest.raises(ValueError, match="held-out fraction"):
        holdout_split(labels, groups, 0.9)
