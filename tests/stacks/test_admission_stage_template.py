"""The admission stage as synthesized: a Distributed Map over the incoming/ listing that AWS runs
in batches, as EXPRESS child workflows, tolerating some failed batches, writing its results to S3."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from glue.contract import COLUMNS
from stacks.config.settings import MAX_BATCH_INPUT_BYTES
from stacks.pipeline.stages.admission_stage import ADMIT_TIMEOUT_MINUTES, MAX_CONCURRENT_BATCHES
from stacks.pipeline_contract import ADMISSION_RESULTS_PREFIX as RESULTS_PREFIX
from tests.conftest import stage_config
from tests.helpers import all_states, one_resource, render, state_machine_definition

if TYPE_CHECKING:
    from tests.conftest import Synthesized

ADMISSION = "AdmissionStageWorkflow"


@pytest.fixture(scope="module", params=["dev", "prod", "local"])
def stage(request: pytest.FixtureRequest, synth: Callable[[str], Synthesized]) -> tuple[str, Synthesized]:
    return request.param, synth(request.param)


def _map(synthesized: Synthesized) -> dict[str, Any]:
    asl = state_machine_definition(synthesized.templates["pipeline"], ADMISSION)
    [admit] = [s for s in asl["States"].values() if s["Type"] == "Map"]
    return admit


def test_the_map_reads_the_incoming_listing_in_batches_of_the_configured_size(stage: tuple[str, Any]) -> None:
    name, synthesized = stage
    config = stage_config(name)
    admit = _map(synthesized)
    reader = admit["ItemReader"]
    assert reader["Resource"].endswith(":states:::s3:listObjectsV2")
    assert reader["Parameters"]["Prefix"] == config.incoming_prefix
    assert admit["ItemBatcher"] == {
        "MaxItemsPerBatch": config.admission.batch_size,
        "MaxInputBytesPerBatch": MAX_BATCH_INPUT_BYTES,
    }
    # Each listed object, with the run it is admitted into; the listing's other fields are dropped.
    assert admit["ItemSelector"] == {
        "key.$": "$$.Map.Item.Value.Key",
        "size.$": "$$.Map.Item.Value.Size",
        "run.$": "$.run.name",
    }


def test_children_are_express_and_failed_batches_are_tolerated_up_to_the_config(stage: tuple[str, Any]) -> None:
    name, synthesized = stage
    admit = _map(synthesized)
    assert admit["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}
    assert admit["ToleratedFailurePercentage"] == stage_config(name).admission.tolerated_failure_percentage
    assert admit["MaxConcurrency"] == MAX_CONCURRENT_BATCHES
    writer = admit["ResultWriter"]
    assert writer["Resource"].endswith(":states:::s3:putObject")
    assert writer["Parameters"]["Prefix"] == RESULTS_PREFIX
    # Each child invokes the admission Lambda over its batch, retrying the Lambda service's own errors.
    [(child_name, child)] = [(n, s) for n, s in all_states(admit["ItemProcessor"]).items()]
    assert child["Parameters"] == {"items.$": "$.Items"} and child.get("End") is True
    [retry] = child["Retry"]
    assert "Lambda.TooManyRequestsException" in retry["ErrorEquals"] and "States.ALL" not in retry["ErrorEquals"]


def test_the_admission_lambda_fits_an_express_child_and_knows_the_contract(stage: tuple[str, Any]) -> None:
    name, synthesized = stage
    config = stage_config(name)
    _, function = one_resource(synthesized.templates["pipeline"], "AWS::Lambda::Function", "AdmissionStageAdmitFiles")
    props = function["Properties"]
    assert props["Timeout"] == ADMIT_TIMEOUT_MINUTES * 60 < 5 * 60  # an Express child runs 5 minutes at most
    if config.reserve_lambda_concurrency:  # never throttled by its own map
        assert props["ReservedConcurrentExecutions"] >= MAX_CONCURRENT_BATCHES
    else:  # the account's pool: a new account's quota would refuse any reservation
        assert "ReservedConcurrentExecutions" not in props
    variables = {k: render(v) for k, v in props["Environment"]["Variables"].items()}
    assert variables["CONTRACT_COLUMNS"] == ",".join(COLUMNS)
    assert (variables["INCOMING_PREFIX"], variables["LANDING_PREFIX"], variables["QUARANTINE_PREFIX"]) == (
        config.incoming_prefix,
        config.landing_prefix,
        config.quarantine_prefix,
    )
    assert int(variables["MAX_FILE_BYTES"]) == config.admission.max_file_megabytes * 1024 * 1024
