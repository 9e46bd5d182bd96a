"""The pipeline contract (stacks/pipeline_contract.py) is what every consumer reads: the stacks
emit each output it names, and the DAG's own copy of the stage names (it is deployed alone) agrees."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dags import glue_pipeline_support as dag_support
from stacks import pipeline_contract as contract


def test_the_dag_runs_the_contract_stages_in_order() -> None:
    assert tuple(stage.name for stage in dag_support.STAGES) == contract.STAGES
    assert dag_support.ADMISSION_STAGE == contract.ADMISSION


@pytest.mark.parametrize("stage", ["dev", "local"])
def test_every_output_a_consumer_reads_is_emitted(synth: Callable[[str], Any], stage: str) -> None:
    synthesized = synth(stage)
    outputs = {name: set(template.to_json().get("Outputs", {})) for name, template in synthesized.templates.items()}
    expected = {
        "storage": {contract.LANDING_BUCKET_OUTPUT, contract.CURATED_BUCKET_OUTPUT, contract.NOTIFICATION_TOPIC_OUTPUT},
        "pipeline": {contract.state_machine_output(name) for name in (*contract.STAGES, contract.PIPELINE)}
        | {contract.INCOMING_PREFIX_OUTPUT, contract.LANDING_PREFIX_OUTPUT, contract.QUARANTINE_PREFIX_OUTPUT},
        "orchestration": {contract.MWAA_ENVIRONMENT_OUTPUT, contract.DAG_BUCKET_OUTPUT},
    }
    for stack, names in expected.items():
        assert names <= outputs[stack], f"{stack} misses {sorted(names - outputs[stack])}"


def test_the_prefix_outputs_hold_the_configured_prefixes(synth: Callable[[str], Any]) -> None:
    pipeline = synth("dev").templates["pipeline"].to_json()["Outputs"]
    assert pipeline[contract.INCOMING_PREFIX_OUTPUT]["Value"] == "incoming/"
    assert pipeline[contract.LANDING_PREFIX_OUTPUT]["Value"] == "landing/"
    assert pipeline[contract.QUARANTINE_PREFIX_OUTPUT]["Value"] == "quarantine/"


def test_an_unknown_state_machine_is_refused_by_name() -> None:
    assert contract.state_machine_output(contract.ADMISSION) == "AdmissionStageStateMachineArn"
    assert contract.state_machine_output(contract.PIPELINE) == "PipelineStateMachineArn"
    with pytest.raises(ValueError, match="'crawler' is not one of admission, crawl, transform, pipeline"):
        contract.state_machine_output("crawler")
