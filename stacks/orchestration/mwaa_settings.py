"""What an MWAA environment is given and checked against, before any construct is made.

The `pipeline.*` Airflow configuration options the DAG reads, and the checks that fail synth with
one line when a setting is one MWAA would refuse (versions, classes, workers, the requirements'
pinned Airflow) or the wiring is incomplete (subnets, stages without a timeout).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_stepfunctions as sfn

from stacks.config.cron import airflow_cron
from stacks.config.mwaa_facts import (
    MWAA_AIRFLOW_VERSIONS,
    MWAA_ENVIRONMENT_CLASSES,
    MWAA_MAX_WORKERS,
    MWAA_WEB_SERVER_ACCESS,
)

AIRFLOW_OPTIONS_SECTION = "pipeline"


def airflow_options(
    stage_state_machines: Mapping[str, sfn.IStateMachine],
    stage_timeouts: Mapping[str, Duration],
    *,
    landing_bucket_name: str,
    incoming_prefix: str,
    landing_prefix: str,
    notification_topic_arn: str,
    schedule: str,
) -> dict[str, str]:
    """The `pipeline.*` Airflow configuration options the DAG reads (dags/glue_pipeline.py).

    `schedule`: the pipeline's EventBridge `cron(...)` expression, set as Airflow's 5-field cron.
    """
    options = {
        f"{AIRFLOW_OPTIONS_SECTION}.schedule": airflow_cron(schedule, name="MwaaEnvironment schedule"),
        f"{AIRFLOW_OPTIONS_SECTION}.landing_bucket": landing_bucket_name,
        f"{AIRFLOW_OPTIONS_SECTION}.incoming_prefix": incoming_prefix,  # the DAG's sensor waits here
        f"{AIRFLOW_OPTIONS_SECTION}.landing_prefix": landing_prefix,  # runs' folders: the stages' run.landing_path
        f"{AIRFLOW_OPTIONS_SECTION}.notification_topic_arn": notification_topic_arn,
    }
    for name, state_machine in stage_state_machines.items():
        options[f"{AIRFLOW_OPTIONS_SECTION}.{name}_state_machine_arn"] = state_machine.state_machine_arn
        seconds = int(stage_timeouts[name].to_seconds())
        options[f"{AIRFLOW_OPTIONS_SECTION}.{name}_timeout_seconds"] = str(seconds)
    return options


def constraints_airflow_version(requirements: str) -> str | None:
    """The Airflow version of the `--constraint` URL in a requirements file, if there is one."""
    match = re.search(r"apache/airflow/constraints-([0-9][^/\s\"']*)/", requirements)
    return match.group(1) if match else None


def check_mwaa_settings(
    *,
    airflow_version: str,
    environment_class: str,
    min_workers: int,
    max_workers: int,
    web_server_access: str,
    requirements: str,
) -> None:
    """Raise ValueError with one line naming the first setting MWAA would refuse."""

    def fail(name: str, value: object, allowed: str) -> None:
        raise ValueError(f"MwaaEnvironment {name} = {value!r}: {allowed}")

    if airflow_version not in MWAA_AIRFLOW_VERSIONS:
        fail("airflow_version", airflow_version, f"Amazon MWAA supports {', '.join(MWAA_AIRFLOW_VERSIONS)}")
    if environment_class not in MWAA_ENVIRONMENT_CLASSES:
        fail("environment_class", environment_class, f"must be one of {', '.join(MWAA_ENVIRONMENT_CLASSES)}")
    for name, value in (("min_workers", min_workers), ("max_workers", max_workers)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MWAA_MAX_WORKERS:
            fail(name, value, f"must be an integer between 1 and {MWAA_MAX_WORKERS}")
    if max_workers < min_workers:
        fail("max_workers", max_workers, f"must be >= min_workers ({min_workers})")
    if web_server_access not in MWAA_WEB_SERVER_ACCESS:
        fail("web_server_access", web_server_access, f"must be one of {', '.join(MWAA_WEB_SERVER_ACCESS)}")
    pinned = constraints_airflow_version(requirements)
    if pinned != airflow_version:
        fail(
            "airflow_version",
            airflow_version,
            f"dags/requirements.txt pins the constraints of Airflow {pinned}; pin the constraints and the "
            "Amazon provider of the MWAA image for the configured version",
        )


def check_wiring(
    subnets: Sequence[ec2.ISubnet],
    stage_state_machines: Mapping[str, sfn.IStateMachine],
    stage_timeouts: Mapping[str, Duration],
) -> None:
    if len(subnets) != 2:
        raise ValueError(f"MwaaEnvironment subnets: MWAA takes exactly two private subnets, got {len(subnets)}")
    if not stage_state_machines:
        raise ValueError("MwaaEnvironment stage_state_machines = {}: needs at least one stage")
    missing = [name for name in stage_state_machines if name not in stage_timeouts]
    if missing:
        raise ValueError(f"MwaaEnvironment stage_timeouts: no timeout for stage(s) {', '.join(missing)}")
