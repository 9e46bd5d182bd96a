"""The Glue side of the pipeline: a security configuration, the landing crawler, the ETL job."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.common.nag import (
    GRANT_KMS_ACTIONS,
    GRANT_READ_ACTIONS,
    acknowledge,
    acknowledge_grant_actions,
    rendered_arn,
)
from stacks.common.paths import REPO_ROOT
from stacks.common.physical_names import physical_name
from stacks.config.settings import GLUE_WORKER_TYPES

GLUE_CODE = REPO_ROOT / "glue"
# Zip entries carry a timestamp: a fixed one keeps the archive, and so the asset hash, stable.
_ZIP_TIMESTAMP = (2020, 1, 1, 0, 0, 0)
# Glue 5.0 runs Spark 3.5.4 and Python 3.11: requirements-dev.txt pins pyspark to match.
GLUE_VERSION = glue.GlueVersion.V5_0
# What the job does under each of its curated prefixes (Spark's overwrite, write, read back; the
# manifest's PutObject), with the bucket key: a data key to write, Decrypt to read and for multipart parts.
CURATED_OBJECT_ACTIONS = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "kms:GenerateDataKey",
    "kms:Decrypt",
)

# Pure-Python libraries the job imports that Glue does not provide, shipped inside the job's zip
# (no pip install at job start, no internet needed): the installed copy, pinned in requirements.txt.
# iso4217: the ISO 4217 currency list the currency rule checks against (glue/transform.py).
JOB_LIBRARIES = ("iso4217",)


def glue_worker_type(name: str) -> glue.WorkerType:
    """A worker type as the config names it (GLUE_WORKER_TYPES, "G.1X") as CDK's WorkerType (G_1X)."""
    if name not in GLUE_WORKER_TYPES:
        raise ValueError(f"Glue worker type {name!r}: must be one of {', '.join(GLUE_WORKER_TYPES)}")
    return glue.WorkerType[name.replace(".", "_")]


def python_package_zip(package: Path, *, libraries: Sequence[str] = ()) -> Path:
    """`package` as a zip archive that keeps its inner names (`glue/transform.py`, ...), with the
    installed `libraries` (pure-Python packages, data files included) beside it.

    Glue puts each `--extra-py-files` object on the path under its S3 object name, and CDK
    names a file asset by its hash (`<hash>.py`, aws/aws-cdk#20481), so single modules cannot be
    imported by their own names; a zip on the path can (zipimport), and its entries keep theirs.
    Deterministic (sorted entries, fixed timestamps): the same sources give the same asset.
    """
    files = [(f"{package.name}/{path.relative_to(package).as_posix()}", path) for path in sorted(package.rglob("*.py"))]
    for name in libraries:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise ValueError(
                f"library {name!r} for the Glue job: not an installed package (pip install -r requirements.txt)"
            )
        root = Path(next(iter(spec.submodule_search_locations)))
        files += [
            (f"{name}/{path.relative_to(root).as_posix()}", path)
            for path in sorted(root.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts
        ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in files:
            entry = zipfile.ZipInfo(name, _ZIP_TIMESTAMP)
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, path.read_bytes(), compress_type=zipfile.ZIP_DEFLATED)
    content = buffer.getvalue()
    target = Path(tempfile.gettempdir()) / "glue-pipeline-assets" / hashlib.sha256(content).hexdigest()
    target.mkdir(parents=True, exist_ok=True)
    archive_path = target / f"{package.name}.zip"
    if not archive_path.exists():
        archive_path.write_bytes(content)
    return archive_path


class GlueSecurity(Construct):
    """KMS for S3 output, CloudWatch logs and job bookmarks (`.configuration`).

    A security configuration needs a name, unique in the account and region. It follows the
    stage's removal policy; one that is kept (RETAIN) carries its stack's unique id in its name,
    so destroying and redeploying the stack never collides with the configuration it left behind.
    """

    def __init__(self, scope: Construct, id_: str, *, key: kms.IKey, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, id_)
        name = physical_name(self, removal_policy=removal_policy, max_length=255)
        self.configuration = glue.SecurityConfiguration(
            self,
            "Configuration",
            security_configuration_name=name,
            s3_encryption=glue.S3Encryption.kms(key),
            cloud_watch_encryption=glue.CloudWatchEncryption.kms(key),
            job_bookmarks_encryption=glue.JobBookmarksEncryption.client_side_kms(key),
            removal_policy=removal_policy,
        )


def _grant_glue_logging(role: iam.IGrantable, log_group_prefix: str) -> None:
    """Glue writes to /aws-glue/<kind>... log groups it names itself; CloudWatch Logs encrypts them
    with the key (the key policy's AllowCloudWatchLogs), the role only associates it."""
    stack = Stack.of(role.grant_principal)  # type: ignore[arg-type]
    iam.Grant.add_to_principal(
        grantee=role,
        actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
        resource_arns=[
            stack.format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"{log_group_prefix}*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
        ],
    )


class LandingCrawler(Construct):
    """A Glue crawler over `s3://<bucket>/<prefix>` into `database` (`.crawler`, `.role`)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        bucket: s3.IBucket,
        prefix: str,
        database: glue.IDatabase,
        security_configuration: glue.ISecurityConfiguration,
    ) -> None:
        super().__init__(scope, id_)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="Landing crawler: read the landing prefix, write tables.",
        )
        # Reads the landing files: the bucket grant brings kms:Decrypt, the one key action a crawler
        # needs (it writes no S3 data; its logs are encrypted by CloudWatch Logs).
        bucket.grant_read(self.role, f"{prefix}*")
        self._grant_catalog_access(database)
        _grant_glue_logging(self.role, "/aws-glue/crawlers")
        self._acknowledge_findings(bucket, prefix, database)
        self.crawler = glue.CfnCrawler(
            self,
            "Crawler",
            role=self.role.role_arn,
            database_name=database.database_name,
            description="Catalogs the landing prefix for the transform job and for Athena.",
            targets=glue.CfnCrawler.TargetsProperty(
                s3_targets=[glue.CfnCrawler.S3TargetProperty(path=bucket.s3_url_for_object(prefix))]
            ),
            crawler_security_configuration=security_configuration.security_configuration_name,
            recrawl_policy=glue.CfnCrawler.RecrawlPolicyProperty(recrawl_behavior="CRAWL_NEW_FOLDERS_ONLY"),
            schema_change_policy=glue.CfnCrawler.SchemaChangePolicyProperty(
                update_behavior="LOG", delete_behavior="LOG"
            ),
        )

    def _grant_catalog_access(self, database: glue.IDatabase) -> None:
        """Read the database, create and update its tables and partitions."""
        stack = Stack.of(self)
        table_arn = stack.format_arn(service="glue", resource="table", resource_name=f"{database.database_name}/*")
        iam.Grant.add_to_principal(
            grantee=self.role,
            actions=[
                "glue:GetDatabase",
                "glue:GetTable",
                "glue:GetTables",
                "glue:CreateTable",
                "glue:UpdateTable",
                "glue:GetPartition",
                "glue:GetPartitions",
                "glue:BatchGetPartition",
                "glue:BatchCreatePartition",
                "glue:UpdatePartition",
                "glue:BatchUpdatePartition",
            ],
            resource_arns=[stack.format_arn(service="glue", resource="catalog"), database.database_arn, table_arn],
        )

    def _acknowledge_findings(self, bucket: s3.IBucket, prefix: str, database: glue.IDatabase) -> None:
        """The cdk-nag wildcard findings on the role, each with its reason."""
        acknowledge_grant_actions(self.role, *GRANT_READ_ACTIONS)
        acknowledge(
            self.role,
            "The crawler reads every object under the landing prefix.",
            f"AwsSolutions-IAM5[Resource::{rendered_arn(self, bucket)}/{prefix}*]",
        )
        acknowledge(
            self.role,
            "The crawler creates and updates tables named after the data it finds.",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/"
            f"{rendered_arn(self, database, attribute='')}/*]",
        )
        acknowledge(
            self.role,
            "Glue names its crawler log groups and streams itself, under this prefix.",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:"
            "log-group:/aws-glue/crawlers*]",
        )


class CuratedTransformJob(Construct):
    """The PySpark ETL job (`.job`): one run's landing CSV in; staged Parquet, rejected rows, a manifest out."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        landing_bucket: s3.IBucket,
        landing_prefix: str,
        curated_bucket: s3.IBucket,
        curated_prefixes: Sequence[str],
        security_configuration: glue.ISecurityConfiguration,
        key: kms.IKey,
        worker_type: str,
        number_of_workers: int,
        timeout: Duration,
    ) -> None:
        super().__init__(scope, id_)
        self.role = self._build_role()
        self._grant_access(landing_bucket, landing_prefix, curated_bucket, curated_prefixes, key)
        self._acknowledge_findings(landing_bucket, landing_prefix, curated_bucket, curated_prefixes)
        self.job = self._build_job(
            curated_bucket=curated_bucket,
            security_configuration=security_configuration,
            worker_type=worker_type,
            number_of_workers=number_of_workers,
            timeout=timeout,
        )

    def _build_role(self) -> iam.Role:
        """The job's execution role, assumed by Glue."""
        return iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="Transform job: read landing, write curated and manifests.",
        )

    def _grant_access(
        self,
        landing_bucket: s3.IBucket,
        landing_prefix: str,
        curated_bucket: s3.IBucket,
        curated_prefixes: Sequence[str],
        key: kms.IKey,
    ) -> None:
        """Read the landing prefix; read, write and delete under its curated prefixes; logs and metrics."""
        landing_bucket.grant_read(self.role, f"{landing_prefix}*")
        for prefix in curated_prefixes:
            # Spark's overwrite deletes what a redriven run wrote before, writes (multipart for large
            # files) and reads its output back to count it.
            s3.BucketGrants.from_bucket(curated_bucket).actions_on_object_keys(
                self.role, f"{prefix}*", *CURATED_OBJECT_ACTIONS
            )
        # Spark lists its output folders; a listing shows names only.
        iam.Grant.add_to_principal(
            grantee=self.role, actions=["s3:ListBucket"], resource_arns=[curated_bucket.bucket_arn]
        )
        # The security configuration: S3 output under SSE-KMS and client-side encrypted bookmarks.
        key.grant_encrypt_decrypt(self.role)
        _grant_glue_logging(self.role, "/aws-glue/jobs")
        # The job publishes job and observability metrics (--enable-metrics, on by default) to
        # CloudWatch under the Glue namespace.
        iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["cloudwatch:PutMetricData"],
            resource_arns=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
        )

    def _acknowledge_findings(
        self,
        landing_bucket: s3.IBucket,
        landing_prefix: str,
        curated_bucket: s3.IBucket,
        curated_prefixes: Sequence[str],
    ) -> None:
        """The cdk-nag wildcard findings on the role, each with its reason."""
        acknowledge(
            self.role,
            "cloudwatch:PutMetricData has no resource-level permissions; the statement is "
            "limited to the Glue metric namespace by condition.",
            "AwsSolutions-IAM5[Resource::*]",
        )
        acknowledge_grant_actions(self.role, *GRANT_READ_ACTIONS, *GRANT_KMS_ACTIONS)
        acknowledge(
            self.role,
            "The job reads every object under the landing prefix.",
            f"AwsSolutions-IAM5[Resource::{rendered_arn(self, landing_bucket)}/{landing_prefix}*]",
        )
        for prefix in curated_prefixes:
            acknowledge(
                self.role,
                f"The job writes, rereads and replaces the objects of each run under {prefix}, named at run time.",
                f"AwsSolutions-IAM5[Resource::{rendered_arn(self, curated_bucket)}/{prefix}*]",
            )
        acknowledge(
            self.role,
            "Glue names its job log groups and streams itself, under this prefix.",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:"
            "log-group:/aws-glue/jobs*]",
        )
        acknowledge(
            self.role,
            "The job script is a CDK asset; CDK grants read on the bootstrap assets bucket.",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-"
            "<AWS::Region>/*]",
        )

    def _build_job(
        self,
        *,
        curated_bucket: s3.IBucket,
        security_configuration: glue.ISecurityConfiguration,
        worker_type: str,
        number_of_workers: int,
        timeout: Duration,
    ) -> glue.PySparkEtlJob:
        """The PySpark ETL job itself, running as the role."""
        return glue.PySparkEtlJob(
            self,
            "Job",
            role=self.role,
            script=glue.Code.from_asset(str(GLUE_CODE / "job.py")),
            # The whole `glue` package in one zip, with the libraries it needs that Glue lacks.
            extra_python_files=[glue.Code.from_asset(str(python_package_zip(GLUE_CODE, libraries=JOB_LIBRARIES)))],
            glue_version=GLUE_VERSION,
            description="Validates one run's landing CSV orders; stages curated Parquet, rejected rows, a manifest.",
            worker_configuration=glue.WorkerConfiguration(
                worker_type=glue_worker_type(worker_type), number_of_workers=number_of_workers
            ),
            timeout=timeout,
            max_concurrent_runs=1,  # the lease runs one pipeline at a time; a second run would be a bug
            security_configuration=security_configuration,
            default_arguments={
                # Each run reads its own folder (--landing_path, set by the transform stage), so a
                # redriven run must read it again: no bookmark decides what is new.
                "--job-bookmark-option": "job-bookmark-disable",
                # --curated_path, --rejected_path and --manifest_key are the run's own (the transform
                # stage names them after the run): staged output that only a passed check publishes.
                "--manifest_bucket": curated_bucket.bucket_name,
            },
        )
