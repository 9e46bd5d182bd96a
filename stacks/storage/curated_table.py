"""The published view of curated orders: a Glue Data Catalog table with a declared schema.

Readers (Athena, Spark through the catalog) see exactly the partitions registered in the
catalog, one per run that passed its check. The Glue job writes each run's Parquet to
``<staging prefix>run=<run>/`` in the curated bucket, outside the table's own location, so no
crawler, ``MSCK REPAIR TABLE`` or listing of the table location can ever pick up a run the check
refused; the transform stage publishes a valid run by registering its partition
(glue:CreatePartition, metadata only: one call, atomic for readers).

The columns are declared here, not inferred: tests/stacks/test_curated_table.py checks them
against the job's SCHEMA (glue/transform.py), which stays free of CDK as this stays free of Spark.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.pipeline_contract import STAGING_PREFIX, run_folder

# (name, Hive type), in the job's SCHEMA order.
CURATED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("order_id", "string"),
    ("customer_id", "string"),
    ("order_date", "date"),
    ("amount", "decimal(12,2)"),
    ("currency", "string"),
)
PARTITION_KEY = "run"
TABLE_NAME = "orders"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


def storage_descriptor(location: str) -> dict[str, Any]:
    """The StorageDescriptor of the table, and of each partition (as the Glue API spells it)."""
    return {
        "Columns": [{"Name": name, "Type": type_} for name, type_ in CURATED_COLUMNS],
        "Location": location,
        "InputFormat": PARQUET_INPUT,
        "OutputFormat": PARQUET_OUTPUT,
        "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}},
    }


class CuratedOrdersTable(Construct):
    """`.table` (CfnTable), `.database_name`, `.table_name`, `.table_arn`, `.bucket`, `.staging_prefix`."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        database: glue.IDatabase,
        bucket: s3.IBucket,
        table_prefix: str = "curated/orders/",
        staging_prefix: str = STAGING_PREFIX,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.bucket, self.staging_prefix = bucket, staging_prefix
        self.database_name, self.table_name = database.database_name, TABLE_NAME
        descriptor = storage_descriptor(bucket.s3_url_for_object(table_prefix))
        self.table = glue.CfnTable(
            self,
            "Table",
            catalog_id=stack.account,
            database_name=database.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=TABLE_NAME,
                description="Curated orders; one partition per run that passed its check (published by the "
                "transform stage). Never crawled: partitions are registered, not discovered.",
                table_type="EXTERNAL_TABLE",
                parameters={"classification": "parquet", "EXTERNAL": "TRUE", "parquet.compression": "SNAPPY"},
                partition_keys=[glue.CfnTable.ColumnProperty(name=PARTITION_KEY, type="string")],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in CURATED_COLUMNS],
                    location=descriptor["Location"],
                    input_format=PARQUET_INPUT,
                    output_format=PARQUET_OUTPUT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=PARQUET_SERDE, parameters={"serialization.format": "1"}
                    ),
                ),
            ),
        )
        self.table.apply_removal_policy(removal_policy)
        self.table_arn = stack.format_arn(
            service="glue", resource="table", resource_name=f"{database.database_name}/{TABLE_NAME}"
        )
        self.catalog_arns = [
            stack.format_arn(service="glue", resource="catalog"),
            database.database_arn,
            self.table_arn,
        ]

    def partition_location(self, run_name: str) -> str:
        """Where the job writes a run's curated Parquet (a JSONPath expression or a literal name)."""
        return self.bucket.s3_url_for_object(run_folder(self.staging_prefix, run_name))
