from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localrun.emulator.deployment import LocalDeployment, local_aws

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything here runs the pipeline on moto or the CLI in a subprocess: the slow tier."""
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def local_assembly(synth) -> Path:
    """The `local` stage (second-long waits) synthesized once per run: what the runs execute."""
    return synth("local").outdir


@pytest.fixture
def deployment(local_assembly: Path) -> Iterator[LocalDeployment]:
    with local_aws():
        deployment = LocalDeployment.bring_up(local_assembly)
        try:
            yield deployment
        finally:
            deployment.stop_running()
