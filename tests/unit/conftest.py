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
    """The dev stage, as deployed: what the template tests read (synthesized once per session)."""
    return synth("dev")


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    # Imported here so tests that never ask for Spark don't need pyspark or a JVM.
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("unit-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.driver.memory", "512m")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    yield session
    session.stop()
    # py4j logs "Closing down clientserver connection" at interpreter exit, after pytest has
    # closed the log streams; it is noise, not a failure.
    logging.getLogger("py4j").setLevel(logging.WARNING)
