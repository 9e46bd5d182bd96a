"""The local Glue job stand-in must count rows exactly as the Spark transform does."""

from __future__ import annotations

from pathlib import Path

import pytest

from glue.transform import transform
from localrun.glue_standin import count_rows

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "samples").glob("*.csv"))

pytestmark = pytest.mark.slow  # a Spark session (see pyproject.toml)


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_standin_counts_match_the_spark_transform(spark, sample: Path) -> None:  # type: ignore[no-untyped-def]
    raw = spark.read.option("header", True).csv(str(sample))
    if not raw.columns:  # header-only file: Spark still sees the header columns
        pytest.fail(f"{sample.name}: Spark read no columns")
    result = transform(raw)
    expected = (raw.count(), result.curated.count(), result.rejected.count())

    assert count_rows([sample.read_text()]) == expected
