"""Config validation: every rule rejects bad values with one line naming the field, the value and what is allowed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from stacks.config import (
    DEV,
    GLUE_WORKER_TYPES,
    MWAA_AIRFLOW_VERSIONS,
    MWAA_ENVIRONMENT_CLASSES,
    STAGES,
    ConfigError,
    CrawlerConfig,
    DeploymentConfig,
    GlueJobConfig,
    MwaaConfig,
    config_for,
    validate_cron,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def error_of(**fields: Any) -> str:
    """The ConfigError message of a dev config with these fields changed."""
    with pytest.raises(ConfigError) as info:
        DeploymentConfig(**{"stage": "dev", **fields})
    return str(info.value)


def assert_message(message: str, field: str, value: object, allowed: str) -> None:
    prefix = f"config {field} = {value!r}: "
    assert message.startswith(prefix), message
    assert allowed in message[len(prefix) :], message
    assert "\n" not in message


# --- stage, prefix, schedule -------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["Dev", "1dev", "dev_1", "a" * 17, "", None])
def test_stage_name_must_be_short_lower_case(stage: object) -> None:
    assert_message(error_of(stage=stage), "stage", stage, "must be 1-16 lower-case letters, digits or '-'")


@pytest.mark.parametrize("prefix", ["landing", "/landing/", "", "land ing/", "landing/x", None])
def test_landing_prefix_must_be_a_key_prefix_ending_in_slash(prefix: object) -> None:
    assert_message(
        error_of(landing_prefix=prefix), "dev.landing_prefix", prefix, "must be an S3 key prefix ending in '/'"
    )


CRON_ALLOWED = "must be an EventBridge expression cron(min hour day-of-month month day-of-week year)"


@pytest.mark.parametrize(
    ("schedule", "detail"),
    [
        ("rate(1 day)", CRON_ALLOWED),
        ("0 2 * * ? *", CRON_ALLOWED),
        ("cron()", CRON_ALLOWED),
        (None, CRON_ALLOWED),
        ("cron(0 2 * * ?)", "six fields (got 5)"),
        ("cron(0 2 * * ? * *)", "six fields (got 7)"),
        ("cron(0 2 * * * *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 2 ? * ? *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(60 2 * * ? *)", "field minutes '60' is not valid"),
        ("cron(0 24 * * ? *)", "field hours '24' is not valid"),
        ("cron(0 2 32 * ? *)", "field day-of-month '32' is not valid"),
        ("cron(0 2 0 * ? *)", "field day-of-month '0' is not valid"),
        ("cron(0 2 * 13 ? *)", "field month '13' is not valid"),
        ("cron(0 2 * JANUARY ? *)", "field month 'JANUARY' is not valid"),
        ("cron(0 2 ? * 8 *)", "field day-of-week '8' is not valid"),
        ("cron(0 2 ? * MON#6 *)", "field day-of-week 'MON#6' is not valid"),
        ("cron(0 2 * * ? 1969)", "field year '1969' is not valid"),
        ("cron(0 2-x * * ? *)", "field hours '2-x' is not valid"),
        ("cron(0 2,,3 * * ? *)", "field hours '2,,3' is not valid"),
    ],
)
def test_malformed_cron_is_rejected_with_the_reason(schedule: object, detail: str) -> None:
    message = error_of(schedule=schedule)
    assert_message(message, "dev.schedule", schedule, CRON_ALLOWED)
    assert detail in message


@pytest.mark.parametrize(
    "schedule",
    [
        "cron(0 2 * * ? *)",
        "cron(0/15 * * * ? *)",
        "cron(0 8 ? * MON-FRI *)",
        "cron(0 12 L * ? *)",
        "cron(30 1 15W * ? *)",
        "cron(0 9 ? * 6L 2027)",
        "cron(0 9 ? * MON#1 *)",
        "cron(0 8 1,15 JAN-JUN ? *)",
    ],
)
def test_valid_cron_variants_are_accepted(schedule: str) -> None:
    validate_cron("dev.schedule", schedule)
    assert DeploymentConfig(stage="dev", schedule=schedule).schedule == schedule


# --- crawler, Glue job, removal, logs ----------------------------------------------------------


@pytest.mark.parametrize(
    ("crawler", "field", "value", "allowed"),
    [
        (CrawlerConfig(poll_interval_seconds=0), "poll_interval_seconds", 0, "must be an integer > 0"),
        (CrawlerConfig(poll_interval_seconds=-30), "poll_interval_seconds", -30, "must be an integer > 0"),
        (CrawlerConfig(poll_interval_seconds=1.5), "poll_interval_seconds", 1.5, "must be an integer > 0"),  # type: ignore[arg-type]
        (CrawlerConfig(poll_interval_seconds=True), "poll_interval_seconds", True, "must be an integer > 0"),
        (CrawlerConfig(poll_interval_seconds=3601), "poll_interval_seconds", 3601, "between 1 and 3600"),
        (CrawlerConfig(max_polls=0), "max_polls", 0, "must be an integer > 0"),
        (CrawlerConfig(max_polls=1001), "max_polls", 1001, "between 1 and 1000"),
        (CrawlerConfig(busy_retry_interval_seconds=0), "busy_retry_interval_seconds", 0, "must be an integer > 0"),
        (CrawlerConfig(busy_retry_attempts=21), "busy_retry_attempts", 21, "between 1 and 20"),
    ],
)
def test_crawler_settings(crawler: CrawlerConfig, field: str, value: object, allowed: str) -> None:
    assert_message(error_of(crawler=crawler), f"dev.crawler.{field}", value, allowed)


@pytest.mark.parametrize("worker_type", ["G.3X", "g.1x", "Standard", ""])
def test_unknown_glue_worker_type_lists_the_allowed_ones(worker_type: str) -> None:
    message = error_of(glue_job=GlueJobConfig(worker_type=worker_type))
    assert_message(message, "dev.glue_job.worker_type", worker_type, f"must be one of {', '.join(GLUE_WORKER_TYPES)}")


@pytest.mark.parametrize(
    ("job", "field", "value", "allowed"),
    [
        (GlueJobConfig(number_of_workers=1), "number_of_workers", 1, "Glue Spark jobs need at least 2 workers"),
        (GlueJobConfig(number_of_workers=300), "number_of_workers", 300, "between 1 and 299"),
        (GlueJobConfig(timeout_minutes=0), "timeout_minutes", 0, "must be an integer > 0"),
        (GlueJobConfig(busy_retry_attempts=0), "busy_retry_attempts", 0, "must be an integer > 0"),
        (GlueJobConfig(max_rejected_ratio=1.5), "max_rejected_ratio", 1.5, "must be a number between 0 and 1"),
        (GlueJobConfig(max_rejected_ratio=-0.1), "max_rejected_ratio", -0.1, "must be a number between 0 and 1"),
        (GlueJobConfig(max_rejected_ratio=True), "max_rejected_ratio", True, "must be a number between 0 and 1"),
        (GlueJobConfig(max_rejected_ratio="0.1"), "max_rejected_ratio", "0.1", "must be a number between 0 and 1"),  # type: ignore[arg-type]
    ],
)
def test_glue_job_settings(job: GlueJobConfig, field: str, value: object, allowed: str) -> None:
    assert_message(error_of(glue_job=job), f"dev.glue_job.{field}", value, allowed)


def test_removal_policy_and_log_retention() -> None:
    assert_message(error_of(removal_policy="keep"), "dev.removal_policy", "keep", "must be one of destroy, retain")
    assert_message(
        error_of(log_retention_days=31),
        "dev.log_retention_days",
        31,
        "must be one of 1, 3, 5, 7, 14, 30, 60, 90, 180, 365, 400, 545, 731",
    )


# --- timeouts must nest ------------------------------------------------------------------------


def test_transform_stage_must_outlast_the_glue_job() -> None:
    assert DEV.glue_job.timeout_minutes == 60
    assert_message(
        error_of(transform_stage_timeout_minutes=60),
        "dev.transform_stage_timeout_minutes",
        60,
        "must be longer than glue_job.timeout_minutes (60)",
    )
    assert DeploymentConfig(stage="dev", transform_stage_timeout_minutes=61).transform_stage_timeout_minutes == 61


def test_crawl_stage_must_outlast_all_polls() -> None:
    # dev polls 60 times, 30 s apart: 1800 s, so the stage needs more than 30 minutes.
    assert_message(
        error_of(crawl_stage_timeout_minutes=30),
        "dev.crawl_stage_timeout_minutes",
        30,
        "must be longer than crawler.poll_interval_seconds x max_polls (1800 s)",
    )
    assert_message(
        error_of(crawler=CrawlerConfig(poll_interval_seconds=60, max_polls=60)),
        "dev.crawl_stage_timeout_minutes",
        60,
        "must be longer than crawler.poll_interval_seconds x max_polls (3600 s)",
    )
    assert DeploymentConfig(stage="dev", crawl_stage_timeout_minutes=31).crawl_stage_timeout_minutes == 31


def test_pipeline_must_outlast_its_stages() -> None:
    assert_message(
        error_of(pipeline_timeout_minutes=179),
        "dev.pipeline_timeout_minutes",
        179,
        "must be at least the sum of the stage timeouts (180)",
    )
    assert DeploymentConfig(stage="dev", pipeline_timeout_minutes=180).pipeline_timeout_minutes == 180


@pytest.mark.parametrize(
    "field", ["crawl_stage_timeout_minutes", "transform_stage_timeout_minutes", "pipeline_timeout_minutes"]
)
@pytest.mark.parametrize(
    ("value", "allowed"),
    [(0, "must be an integer > 0"), (-5, "must be an integer > 0"), (525_601, "between 1 and 525600")],
)
def test_timeouts_are_positive_and_bounded(field: str, value: int, allowed: str) -> None:
    assert_message(error_of(**{field: value}), f"dev.{field}", value, allowed)


# --- notifications ----------------------------------------------------------------------------


@pytest.mark.parametrize("email", ["ops at example.com", "ops@example", "@example.com", "o ps@example.com", ""])
def test_bad_email_is_named(email: str) -> None:
    message = error_of(notification_emails=("data-team@example.com", email))
    assert_message(message, "dev.notification_emails", email, "each must be an e-mail address")


def test_good_emails_are_accepted() -> None:
    emails = ("data-team@example.com", "on.call+pipeline@ops.example.org")
    assert DeploymentConfig(stage="dev", notification_emails=emails).notification_emails == emails


# --- MWAA ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mwaa", "field", "value", "allowed"),
    [
        (
            MwaaConfig(airflow_version="2.10.3"),
            "airflow_version",
            "2.10.3",
            f"must be one of {', '.join(MWAA_AIRFLOW_VERSIONS)}",
        ),
        (MwaaConfig(airflow_version="3.3"), "airflow_version", "3.3", "must be one of 2.11.0, 3.0.6, 3.2.1, 3.3.1"),
        (
            MwaaConfig(environment_class="mw1.tiny"),
            "environment_class",
            "mw1.tiny",
            f"must be one of {', '.join(MWAA_ENVIRONMENT_CLASSES)}",
        ),
        (MwaaConfig(environment_class="mw2.small"), "environment_class", "mw2.small", "must be one of mw1.micro"),
        (
            MwaaConfig(web_server_access="PUBLIC"),
            "web_server_access",
            "PUBLIC",
            "must be one of PRIVATE_ONLY, PUBLIC_ONLY",
        ),
        (MwaaConfig(egress="internet"), "egress", "internet", "must be one of vpc-endpoints, nat-gateway"),
        (MwaaConfig(min_workers=0), "min_workers", 0, "must be an integer > 0"),
        (MwaaConfig(max_workers=26), "max_workers", 26, "between 1 and 25"),
        (MwaaConfig(min_workers=3, max_workers=2), "max_workers", 2, "must be >= min_workers (3)"),
    ],
)
def test_mwaa_settings_are_checked_against_supported_lists(
    mwaa: MwaaConfig, field: str, value: object, allowed: str
) -> None:
    assert_message(error_of(mwaa=mwaa), f"dev.mwaa.{field}", value, allowed)


def test_supported_mwaa_lists_match_the_design() -> None:
    assert MWAA_AIRFLOW_VERSIONS == ("2.11.0", "3.0.6", "3.2.1", "3.3.1")
    assert MWAA_ENVIRONMENT_CLASSES == (
        "mw1.micro",
        "mw1.small",
        "mw1.medium",
        "mw1.large",
        "mw1.xlarge",
        "mw1.2xlarge",
    )


# --- the stages --------------------------------------------------------------------------------


def test_unknown_stage_names_the_stages_there_are() -> None:
    with pytest.raises(ConfigError) as info:
        config_for("nope")
    assert_message(str(info.value), "stage", "nope", "must be one of dev, prod, local")


@pytest.mark.parametrize("stage", ["dev", "prod", "local"])
def test_stage_configs_are_valid(stage: str) -> None:
    config = config_for(stage)
    assert config.stage == stage
    assert replace(config) == config  # building it again runs every rule again
    assert config.is_production == (stage == "prod")
    assert config.mwaa.airflow_version in MWAA_AIRFLOW_VERSIONS


def test_only_prod_retains_data() -> None:
    assert {stage: config.removal_policy for stage, config in STAGES.items()} == {
        "dev": "destroy",
        "prod": "retain",
        "local": "destroy",
    }


def test_local_stage_waits_seconds_not_minutes() -> None:
    # Local runs execute the real Wait states in real time (moto sleeps): keep them short.
    local = config_for("local")
    assert local.crawler.poll_interval_seconds <= 1
    assert local.crawler.busy_retry_interval_seconds <= 1
    assert local.glue_job.busy_retry_interval_seconds <= 1
    # Everything else is dev's: what runs locally is what deploys.
    assert (
        replace(
            local,
            stage="dev",
            crawler=DEV.crawler,
            glue_job=DEV.glue_job,
            crawl_stage_timeout_minutes=DEV.crawl_stage_timeout_minutes,
            transform_stage_timeout_minutes=DEV.transform_stage_timeout_minutes,
            pipeline_timeout_minutes=DEV.pipeline_timeout_minutes,
        )
        == DEV
    )


def test_app_rejects_an_unknown_stage_with_one_line_and_exit_2() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CDK_")}
    env["CDK_CONTEXT_JSON"] = json.dumps({"stage": "nope"})  # how the CDK CLI passes `-c stage=nope`
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == ["error: config stage = 'nope': must be one of dev, prod, local"]
    assert result.stdout == ""
