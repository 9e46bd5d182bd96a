from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from tests.conftest import Synthesized


@pytest.fixture(scope="module")
def dev(synth: Callable[[str], Synthesized]) -> Synthesized:
    """The dev stage, as deployed: what the template tests read (synthesized once per run)."""
    return synth("dev")


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    # Imported here so tests that never ask for Spark don't need pyspark or a JVM. The session is
    # the local Glue stand-in's: one per process, whoever asks first.
    from localrun.emulator.glue_standin import spark_session

    session = spark_session()
    yield session
    session.stop()
    # py4j logs "Closing down clientserver connection" at interpreter exit, after pytest has
    # closed the log streams; it is noise, not a failure.
    logging.getLogger("py4j").setLevel(logging.WARNING)
