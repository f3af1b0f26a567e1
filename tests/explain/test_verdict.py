"""The Grad-CAM chapter's verdicts follow the evidence standard on a real localization table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from covidlib import book
from covidlib.explain.localization import localize_run


@pytest.mark.parametrize("score", ["energy", "pointing_game"])
def test_paired_verdict_on_a_localized_run(tiny_run: Path, score: str) -> None:
    result = localize_run(tiny_run)
    verdict = book.localization_verdict(result.summary, score, table=result.table)
    words = re.findall(r"(beats|falls below|cannot be told apart from) the (\w+) baseline", verdict)
    assert [name for _, name in words] == ["random", "center"], verdict
    assert "does not beat" not in verdict  # the non-overlap wording is for stored summaries only
