"""Issue 15: what each role of the synthesized templates may do, against what its code calls.

Each test reads the dev (or prod) templates as deployed and fails on the grants of before the
issue: the ResultWriter without its key, the admit function's DeleteObject* and kms:Encrypt, the
job's whole curated bucket, the crawler's encrypt, Describe/StopExecution on `execution:<name>*`,
the lease table's key only by way of the topic, and the per-stage concurrency and logging.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from aws_cdk.assertions import Template

from stacks.config.settings import MAX_BATCH_INPUT_BYTES
from stacks.pipeline.single_flight_lease import TABLE_KEY_ACTIONS
from stacks.pipeline.stages.admission_stage import MAX_CONCURRENT_BATCHES
from stacks.pipeline_contract import ADMISSION_RESULTS_PREFIX as RESULTS_PREFIX
from stacks.pipeline_contract import MANIFEST_PREFIX, REJECTED_PREFIX
from stacks.pipeline_contract import QUARANTINE_RECORD_PREFIX as QUARANTINE_PREFIX
from tests.conftest import stage_config
from tests.helpers import as_list, exported_value, one_resource, render, state_machine_definition

if TYPE_CHECKING:
    from tests.conftest import Synthesized

ADMISSION, PIPELINE = "AdmissionStageWorkflow", "PipelineWorkflow"
STAGING_PREFIX = "staging/orders/"


def _resolved(synthesized: Synthesized, value: Any) -> Any:
    """`value` with every Fn::ImportValue replaced by what the exporting stack exports."""
    if isinstance(value, dict):
        if set(value) == {"Fn::ImportValue"}:
            return exported_value(synthesized.templates.values(), value)
        return {k: _resolved(synthesized, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(synthesized, v) for v in value]
    return value


def grants(synthesized: Synthesized, role_id: str, stack: str = "pipeline") -> set[tuple[str, str]]:
    """(action, resource) pairs the role's policies allow, resources rendered with imports resolved."""
    found: set[tuple[str, str]] = set()
    for resource in synthesized.templates[stack].to_json()["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"]["Roles"]:
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow"
                for action in as_list(statement["Action"]):
                    for arn in as_list(statement["Resource"]):
                        found.add((action, render(_resolved(synthesized, arn))))
    return found


def role_of(template: Template, type_: str, prefix: str) -> str:
    """The logical id of a state machine's or function's role, or of a role itself."""
    role_id, resource = one_resource(template, type_, prefix)
    if type_ == "AWS::IAM::Role":
        return role_id
    key = "RoleArn" if type_ == "AWS::StepFunctions::StateMachine" else "Role"
    return resource["Properties"][key]["Fn::GetAtt"][0]


def arn_of(synthesized: Synthesized, type_: str, prefix: str) -> str:
    return f"${{GetAtt:{one_resource(synthesized.templates['storage'], type_, prefix)[0]}.Arn}}"


@pytest.fixture(scope="module")
def dev(synth: Callable[[str], Synthesized]) -> Synthesized:
    return synth("dev")


@pytest.fixture(scope="module")
def names(dev: Synthesized) -> dict[str, str]:
    return {
        "landing": arn_of(dev, "AWS::S3::Bucket", "LandingBucket"),
        "curated": arn_of(dev, "AWS::S3::Bucket", "CuratedBucket"),
        "key": arn_of(dev, "AWS::KMS::Key", "DataKey"),
    }


def on(found: set[tuple[str, str]], resource: str) -> set[str]:
    return {action for action, arn in found if arn == resource}


# --- finding 1: the ResultWriter, and finding 5: the admission machine writes only its results -----


def test_admission_machine_writes_only_its_results_with_the_bucket_key(dev: Synthesized, names: dict) -> None:
    found = grants(dev, role_of(dev.templates["pipeline"], "AWS::StepFunctions::StateMachine", ADMISSION))
    landing, key = names["landing"], names["key"]
    # The ResultWriter's test manifest and result files are SSE-KMS objects: a data key to write,
    # Decrypt for the parts of a multipart upload (aws/aws-cdk#32144).
    assert on(found, key) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert on(found, f"{landing}/{RESULTS_PREFIX}*") == {
        "s3:PutObject",
        "s3:GetObject",
        "s3:ListMultipartUploadParts",
        "s3:AbortMultipartUpload",
    }
    # The listing it reads; no object anywhere else in the bucket.
    assert on(found, landing) == {"s3:ListBucket"}
    s3_objects = {arn for action, arn in found if action.startswith("s3:") and arn.startswith(f"{landing}/")}
    assert s3_objects == {f"{landing}/{RESULTS_PREFIX}*"}
    assert not any(arn.startswith("arn:${Ref:AWS::Partition}:s3:::") for _, arn in found)  # no bucket-wide /*


def test_the_results_prefix_is_the_one_the_map_writes_to(dev: Synthesized) -> None:
    asl = state_machine_definition(dev.templates["pipeline"], ADMISSION)
    [admit] = [s for s in asl["States"].values() if s["Type"] == "Map"]
    assert admit["ResultWriter"]["Parameters"]["Prefix"] == RESULTS_PREFIX


# --- finding 5: the admit function ---------------------------------------------------------------


def test_admit_function_may_only_move_files_as_its_code_does(dev: Synthesized, names: dict) -> None:
    found = grants(dev, role_of(dev.templates["pipeline"], "AWS::Lambda::Function", "AdmissionStageAdmitFiles"))
    landing, config = names["landing"], stage_config("dev")
    # CopyObject copies the uploader's tags: GetObjectTagging on the source, PutObjectTagging on the copy.
    assert on(found, f"{landing}/{config.incoming_prefix}*") == {
        "s3:GetObject",
        "s3:GetObjectTagging",
        "s3:DeleteObject",
    }
    for prefix in (config.landing_prefix, config.quarantine_prefix):
        assert on(found, f"{landing}/{prefix}*") == {
            "s3:GetObject",
            "s3:PutObject",
            "s3:PutObjectTagging",
            "s3:AbortMultipartUpload",
        }
    assert on(found, landing) == {"s3:ListBucket"}  # HeadObject of a missing key: 404, not 403
    assert on(found, names["key"]) == {"kms:Decrypt", "kms:GenerateDataKey"}  # no Encrypt, no ReEncrypt*
    assert not any("*" in action for action, _ in found if action.startswith(("s3:", "kms:")))


# --- finding 5: the Glue roles -------------------------------------------------------------------


def test_job_reads_writes_and_deletes_only_its_prefixes_of_the_curated_bucket(dev: Synthesized, names: dict) -> None:
    found = grants(dev, role_of(dev.templates["pipeline"], "AWS::IAM::Role", "TransformJobRole"))
    curated = names["curated"]
    on_curated = {(a, arn) for a, arn in found if arn.startswith(curated)}
    prefixes = {arn for _, arn in on_curated} - {curated}
    assert prefixes == {f"{curated}/{p}*" for p in (STAGING_PREFIX, REJECTED_PREFIX, MANIFEST_PREFIX)}
    for prefix in prefixes:
        assert on(found, prefix) == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
    assert on(found, curated) == {"s3:ListBucket"}
    # Those are the prefixes the transform stage hands the job (its staged output, rejected rows, manifest).
    asl = state_machine_definition(dev.templates["pipeline"], "TransformStageWorkflow")
    [job] = [s for s in asl["States"].values() if s.get("Resource", "").endswith(":glue:startJobRun.sync")]
    arguments = json.dumps(job["Parameters"]["Arguments"])
    for prefix in (STAGING_PREFIX, REJECTED_PREFIX, MANIFEST_PREFIX):
        assert prefix in arguments
    assert QUARANTINE_PREFIX not in {arn.removeprefix(f"{curated}/") for arn in prefixes}


def test_crawler_may_only_decrypt(dev: Synthesized, names: dict) -> None:
    found = grants(dev, role_of(dev.templates["pipeline"], "AWS::IAM::Role", "LandingCrawlerRole"))
    assert on(found, names["key"]) == {"kms:Decrypt", "kms:DescribeKey"}


# --- finding 5: Describe/StopExecution of the stage executions; finding 4: the lease table's key ----


def test_pipeline_describes_and_stops_only_the_executions_of_its_stage_machines(dev: Synthesized) -> None:
    template = dev.templates["pipeline"]
    found = grants(dev, role_of(template, "AWS::StepFunctions::StateMachine", PIPELINE))
    described = {arn for action, arn in found if action in ("states:DescribeExecution", "states:StopExecution")}
    stages = {
        one_resource(template, "AWS::StepFunctions::StateMachine", p)[0]
        for p in (ADMISSION, "CrawlStageWorkflow", "TransformStageWorkflow")
    }
    pipeline = one_resource(template, "AWS::StepFunctions::StateMachine", PIPELINE)[0]
    expected = {
        "arn:${Ref:AWS::Partition}:states:${Ref:AWS::Region}:${Ref:AWS::AccountId}:execution:"
        f"${{Select:6,${{Split::,${{Ref:{machine}}}}}}}:*"
        for machine in stages
    }
    # The colon: `execution:<name>*` would also match machines whose names start with <name>.
    lease_holder = (
        "arn:${Ref:AWS::Partition}:states:${Ref:AWS::Region}:${Ref:AWS::AccountId}:execution:"
        f"${{GetAtt:{pipeline}.Name}}:*"
    )
    assert described == expected | {lease_holder}


def test_pipeline_uses_the_lease_tables_key_explicitly(dev: Synthesized, names: dict) -> None:
    found = grants(dev, role_of(dev.templates["pipeline"], "AWS::StepFunctions::StateMachine", PIPELINE))
    # Reads and writes of a table under a customer managed key; the topic's grant gives Decrypt and
    # GenerateDataKey* only, so Encrypt and DescribeKey show the lease's own grant.
    assert set(TABLE_KEY_ACTIONS) <= on(found, names["key"])
    assert {"kms:Encrypt", "kms:DescribeKey"} <= set(TABLE_KEY_ACTIONS)
    _, table = one_resource(dev.templates["pipeline"], "AWS::DynamoDB::Table", "LeaseTable")
    assert render(_resolved(dev, table["Properties"]["SSESpecification"]["KMSMasterKeyId"])) == names["key"]


# --- finding 2: reserved concurrency per stage; finding 3: the batch's input --------------------------


@pytest.mark.parametrize("stage", ["dev", "prod", "local"])
def test_lambda_concurrency_is_reserved_only_where_the_stage_says(
    synth: Callable[[str], Synthesized], stage: str
) -> None:
    template = synth(stage).templates["pipeline"]
    # Every function of the stack, CDK's own included: one a construct forgets cannot slip through.
    reserved = {
        logical_id: function["Properties"].get("ReservedConcurrentExecutions")
        for logical_id, function in template.find_resources("AWS::Lambda::Function").items()
    }
    expected = {
        "AdmissionStageAdmitFiles": MAX_CONCURRENT_BATCHES,
        "AdmissionStageSummarizeAdmission": 2,
        "TransformStageCheckResults": 2,
        "FailureNoticeFunction": 2,
    }
    if stage_config(stage).reserve_lambda_concurrency:
        by_prefix = {
            next(prefix for prefix in expected if logical_id.startswith(prefix)): value
            for logical_id, value in reserved.items()
            if value is not None
        }
        assert by_prefix == expected
        assert sum(by_prefix.values()) == 16  # README "Security notes": prod needs a quota of 116
    else:
        assert [logical_id for logical_id, value in reserved.items() if value is not None] == []


@pytest.mark.parametrize("stage", ["dev", "prod", "local"])
def test_a_batch_is_cut_by_bytes_as_well_as_by_count(synth: Callable[[str], Synthesized], stage: str) -> None:
    asl = state_machine_definition(synth(stage).templates["pipeline"], ADMISSION)
    [admit] = [s for s in asl["States"].values() if s["Type"] == "Map"]
    assert admit["ItemBatcher"] == {
        "MaxItemsPerBatch": stage_config(stage).admission.batch_size,
        "MaxInputBytesPerBatch": MAX_BATCH_INPUT_BYTES,
    }
    assert MAX_BATCH_INPUT_BYTES <= 256 * 1024 // 2


# --- finding 6: prod notifies someone; finding 7: logging per stage ---------------------------------


def test_prod_subscribes_its_notification_address(synth: Callable[[str], Synthesized]) -> None:
    storage = synth("prod").templates["storage"]
    subscriptions = storage.find_resources("AWS::SNS::Subscription")
    endpoints = {s["Properties"]["Endpoint"] for s in subscriptions.values() if s["Properties"]["Protocol"] == "email"}
    assert endpoints == set(stage_config("prod").notification_emails) != set()


@pytest.mark.parametrize("stage", ["dev", "prod", "local"])
def test_state_machines_log_at_the_stages_level(synth: Callable[[str], Synthesized], stage: str) -> None:
    config = stage_config(stage)
    machines = synth(stage).templates["pipeline"].find_resources("AWS::StepFunctions::StateMachine")
    assert len(machines) == 6  # the pipeline, its three stages, the front door and the crawl callback
    for machine in machines.values():
        logging = machine["Properties"]["LoggingConfiguration"]
        assert (logging["Level"], logging["IncludeExecutionData"]) == (
            config.state_machine_log_level,
            config.state_machine_log_execution_data,
        )
    if stage == "prod":
        assert (config.state_machine_log_level, config.state_machine_log_execution_data) == ("ERROR", False)
