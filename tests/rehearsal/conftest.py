"""The deploy rehearsal runs over the synthesized assembly of every stage, never the repository tree."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.conftest import Synthesized

STAGES = ("dev", "prod", "local")


@pytest.fixture(scope="module", params=STAGES)
def assembly(request: pytest.FixtureRequest, synth: Callable[[str], Synthesized]) -> tuple[str, Path]:
    """(stage, cloud assembly directory), one synth per stage per run."""
    return request.param, synth(request.param).outdir
