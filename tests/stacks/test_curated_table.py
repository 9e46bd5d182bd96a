"""The published view: the curated table's declared schema is the job's SCHEMA, partitioned by run."""

from __future__ import annotations

from glue.transform import SCHEMA
from stacks.storage.curated_table import CURATED_COLUMNS, PARQUET_SERDE, PARTITION_KEY
from tests.conftest import Synthesized
from tests.helpers import one_resource


def test_declared_columns_are_the_jobs_schema_in_order() -> None:
    # Spark's simple type names are Hive's for these types: string, date, decimal(12,2).
    assert CURATED_COLUMNS == tuple((spec.name, spec.spark_type.simpleString()) for spec in SCHEMA)


def test_the_table_is_declared_parquet_partitioned_by_run_and_never_inferred(dev: Synthesized) -> None:
    _, table = one_resource(dev.templates["storage"], "AWS::Glue::Table")
    table_input = table["Properties"]["TableInput"]
    assert table_input["PartitionKeys"] == [{"Name": PARTITION_KEY, "Type": "string"}]
    descriptor = table_input["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in descriptor["Columns"]] == list(CURATED_COLUMNS)
    assert descriptor["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
    # The table's own location holds nothing: runs are staged elsewhere and registered one by one.
    assert "curated/orders/" in str(descriptor["Location"])
    assert table_input["TableType"] == "EXTERNAL_TABLE"
