"""Each gap that localrun/emulator/moto/ bends is reproduced on plain moto by its entry's probe.

The probes run in a fresh interpreter, where nothing has entered the registry. When one of these
tests fails, upstream moto has closed that gap: delete the entry and its probe.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from localrun.emulator.moto import REGISTRY

PROBED = [entry for entry in REGISTRY if entry.probe is not None]

pytestmark = pytest.mark.slow  # a fresh interpreter running every probe (see pyproject.toml)


@pytest.fixture(scope="module")
def upstream() -> dict[str, bool]:
    """entry name -> True while plain moto still has the gap (all probes, one fresh interpreter)."""
    result = subprocess.run(
        [sys.executable, "-m", "localrun.emulator.moto"], capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("entry", PROBED, ids=[entry.name for entry in PROBED])
def test_the_gap_is_still_there_upstream(upstream: dict[str, bool], entry) -> None:
    assert upstream[entry.name], (
        f"upstream moto fixed {entry.name!r} ({entry.gap}): delete its entry and probe from localrun/emulator/moto/"
    )


def test_every_entry_is_probed_or_says_why_not() -> None:
    assert [entry.name for entry in REGISTRY if entry.probe is None and not entry.no_probe_because] == []
    assert len({entry.name for entry in REGISTRY}) == len(REGISTRY)
