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

import stacks.config.stages as config_module
from stacks.config.checks import ConfigError
from stacks.config.cron import validate_cron
from stacks.config.deployment import DeploymentConfig
from stacks.config.mwaa_facts import MWAA_AIRFLOW_VERSIONS, MWAA_ENVIRONMENT_CLASSES
from stacks.config.settings import GLUE_WORKER_TYPES, CrawlerConfig, GlueJobConfig, MwaaConfig
from stacks.config.stages import DEV, config_for
from tests.conftest import TEST_NOTIFICATION_EMAILS, stage_config

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


@pytest.mark.parametrize(
    ("prefix", "detail"),
    [
        ("landing", "at most 256 characters"),
        ("", "at most 256 characters"),
        ("landing/x", "at most 256 characters"),
        (None, "at most 256 characters"),
        ("a/" * 129, "at most 256 characters"),
        ("/landing/", "no empty, '.' or '..' segment"),
        ("landing//", "no empty, '.' or '..' segment"),
        ("landing//orders/", "no empty, '.' or '..' segment"),
        ("../", "no empty, '.' or '..' segment"),
        ("landing/../curated/", "no empty, '.' or '..' segment"),
        ("./landing/", "no empty, '.' or '..' segment"),
        ("*/", "no '*', '?' or spaces"),
        ("landing/*/", "no '*', '?' or spaces"),
        ("landing?/", "no '*', '?' or spaces"),
        ("land ing/", "no '*', '?' or spaces"),
        ("landing\\/", "no '*', '?' or spaces"),
    ],
)
def test_landing_prefix_must_be_a_literal_key_prefix_ending_in_slash(prefix: object, detail: str) -> None:
    message = error_of(landing_prefix=prefix)
    assert_message(message, "dev.landing_prefix", prefix, "must be an S3 key prefix ending in '/'")
    assert detail in message


@pytest.mark.parametrize("prefix", ["landing/", "landing/orders/", "in-bound/2026_q4/", "a.b/(x)/"])
def test_plain_key_prefixes_are_accepted(prefix: str) -> None:
    assert DeploymentConfig(stage="dev", landing_prefix=prefix).landing_prefix == prefix


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
        (
            "cron(0/100 * * * ? *)",
            "field minutes '0/100' is not valid: the increment in '0/100' must be between 1 and 59",
        ),
        ("cron(0/0 * * * ? *)", "field minutes '0/0' is not valid"),
        ("cron(0 5-3 * * ? *)", "field hours '5-3' is not valid: the range '5-3' runs backwards"),
        ("cron(0 2 ? * FRI-MON *)", "field day-of-week 'FRI-MON' is not valid: the range 'FRI-MON' runs backwards"),
        ("cron(0 2 * * ? ?)", "field year '?' is not valid"),
        ("cron(0 2 31 2 ? *)", "day-of-month '31' never occurs in month '2'"),
        ("cron(0 2 30,31 FEB ? *)", "day-of-month '30,31' never occurs in month 'FEB'"),
        ("cron(0 2 31 4,6,9,11 ? *)", "day-of-month '31' never occurs in month '4,6,9,11'"),
        ("cron(0 2 29 2 ? 2027)", "day-of-month '29' never occurs in month '2' of year '2027'"),
        ("cron(0 2 30W 2 ? *)", "day-of-month '30W' never occurs in month '2'"),
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
        "cron(0 2 29 2 ? *)",  # leap years only, but it does fire
        "cron(0 2 29 2 ? 2028)",
        "cron(0 2 31 1-3 ? *)",  # January and March have a 31st
        "cron(0 2 L 2 ? *)",
        "cron(*/5 * * * ? *)",
        "cron(0/59 * * * ? *)",
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
        (CrawlerConfig(event_wait_polls=0), "event_wait_polls", 0, "must be an integer > 0"),
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


def test_transform_stage_must_outlast_busy_retries_and_the_job_run() -> None:
    # dev: StartJobRun busy retries 60 + 120 + 240 + 480 + 960 = 1860 s, then a 60-minute job run.
    assert DEV.transform_stage_worst_case()[0] == 1860 + 3600
    assert_message(
        error_of(transform_stage_timeout_minutes=91),
        "dev.transform_stage_timeout_minutes",
        91,
        "must be longer than the stage's worst case, 5460 s "
        "(glue_job busy retries 1860 s + glue_job.timeout_minutes 3600 s)",
    )
    assert DeploymentConfig(stage="dev", transform_stage_timeout_minutes=92).transform_stage_timeout_minutes == 92
    # More retries need a longer stage: 6 attempts wait 3780 s.
    message = error_of(glue_job=GlueJobConfig(busy_retry_attempts=6))
    assert_message(message, "dev.transform_stage_timeout_minutes", 120, "worst case, 7380 s")


def test_crawl_stage_must_outlast_busy_retries_and_every_poll() -> None:
    # dev: StartCrawler busy retries 30 + 60 + 120 + 240 + 480 = 930 s, then 60 polls 30 s apart.
    assert DEV.crawl_stage_worst_case()[0] == 930 + 1800
    assert_message(
        error_of(crawl_stage_timeout_minutes=45),
        "dev.crawl_stage_timeout_minutes",
        45,
        "must be longer than the stage's worst case, 2730 s "
        "(crawler busy retries 930 s + max_polls x poll_interval_seconds 1800 s)",
    )
    assert DeploymentConfig(stage="dev", crawl_stage_timeout_minutes=46).crawl_stage_timeout_minutes == 46
    # The old default, 6 busy attempts (1890 s) plus 1800 s of polls, did not fit in 60 minutes.
    assert_message(
        error_of(crawler=CrawlerConfig(busy_retry_attempts=6)),
        "dev.crawl_stage_timeout_minutes",
        60,
        "worst case, 3690 s (crawler busy retries 1890 s + max_polls x poll_interval_seconds 1800 s)",
    )


@pytest.mark.parametrize("stage", ["dev", "prod", "local"])
def test_every_stage_fits_its_worst_case_inside_its_timeouts(stage: str) -> None:
    config = stage_config(stage)
    assert config.crawl_stage_worst_case()[0] < config.crawl_stage_timeout_minutes * 60
    assert config.transform_stage_worst_case()[0] < config.transform_stage_timeout_minutes * 60
    assert (
        config.crawl_stage_timeout_minutes + config.transform_stage_timeout_minutes <= config.pipeline_timeout_minutes
    )


def test_pipeline_must_outlast_every_round_of_its_stages() -> None:
    # A timeout never cuts a round short: max_rounds x (admission 30 + crawl 60 + transform 120).
    assert_message(
        error_of(pipeline_timeout_minutes=629),
        "dev.pipeline_timeout_minutes",
        629,
        "must be at least admission.max_rounds (3) x the sum of the stage timeouts (210) = 630",
    )
    assert DeploymentConfig(stage="dev", pipeline_timeout_minutes=630).pipeline_timeout_minutes == 630


def test_prefixes_may_not_lie_inside_each_other() -> None:
    assert_message(
        error_of(quarantine_prefix="incoming/bad/"),
        "dev.quarantine_prefix",
        "incoming/bad/",
        "must not lie inside incoming_prefix ('incoming/')",
    )


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("batch_size", 0, "must be an integer > 0"),
        ("tolerated_failure_percentage", 101, "must be an integer from 0 to 100"),
        ("max_rounds", 0, "must be an integer > 0"),
    ],
)
def test_admission_settings(field: str, value: object, allowed: str) -> None:
    from stacks.config.settings import AdmissionConfig

    with pytest.raises(ConfigError) as raised:
        DeploymentConfig(stage="dev", admission=AdmissionConfig(**{field: value}))  # type: ignore[arg-type]
    assert_message(str(raised.value), f"dev.admission.{field}", value, allowed)


def test_a_batch_of_the_largest_files_must_fit_the_admission_lambda() -> None:
    from stacks.config.settings import AdmissionConfig

    with pytest.raises(ConfigError) as raised:
        DeploymentConfig(stage="dev", admission=AdmissionConfig(batch_size=100, max_file_megabytes=200))
    assert_message(
        str(raised.value),
        "dev.admission.max_file_megabytes",
        200,
        "batch_size x max_file_megabytes must be at most 10,240 MB",
    )


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


@pytest.mark.parametrize(
    "emails", [("ops@example.com", "ops@example.com"), ("ops@example.com", "a@example.com", "OPS@example.com")]
)
def test_an_address_listed_twice_is_named(emails: tuple[str, ...]) -> None:
    message = error_of(notification_emails=emails)
    assert_message(message, "dev.notification_emails", emails[-1], "each address once (it is listed twice)")


@pytest.mark.parametrize("emails", ["ops@example.com", ["ops@example.com"], None])
def test_emails_must_be_a_tuple_not_a_string(emails: object) -> None:
    message = error_of(notification_emails=emails)
    assert_message(
        message, "dev.notification_emails", emails, "must be a tuple of e-mail addresses, e.g. ('ops@example.com',)"
    )


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
        (
            MwaaConfig(environment_class="mw1.micro", max_workers=2),
            "max_workers",
            2,
            "must be 1 with mw1.micro (one worker, no extra workers)",
        ),
    ],
)
def test_mwaa_settings_are_checked_against_supported_lists(
    mwaa: MwaaConfig, field: str, value: object, allowed: str
) -> None:
    assert_message(error_of(mwaa=mwaa), f"dev.mwaa.{field}", value, allowed)


def test_mw1_micro_with_its_one_worker_is_accepted() -> None:
    mwaa = MwaaConfig(environment_class="mw1.micro", min_workers=1, max_workers=1)
    assert DeploymentConfig(stage="dev", mwaa=mwaa).mwaa == mwaa


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
    config = stage_config(stage)
    assert config.stage == stage
    assert replace(config) == config  # building it again runs every rule again
    assert config.is_production == (stage == "prod")
    assert config.mwaa.airflow_version in MWAA_AIRFLOW_VERSIONS


def test_an_invalid_stage_does_not_stop_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if dev's settings in stacks/config/stages.py had a mistake: only dev (and local, which is dev
    # with short waits) fail; prod is built and validated on its own.
    def broken_dev(**_: object) -> DeploymentConfig:
        return DeploymentConfig(stage="dev", schedule="cron(0 2 31 2 ? *)")

    monkeypatch.setattr(config_module, "dev_stage", broken_dev)
    monkeypatch.setitem(config_module.STAGE_BUILDERS, "dev", broken_dev)
    assert stage_config("prod").stage == "prod"
    for stage in ("dev", "local"):
        with pytest.raises(ConfigError, match=r"^config dev\.schedule = 'cron\(0 2 31 2 \? \*\)': "):
            config_for(stage)


@pytest.mark.parametrize("stage", ["", None, 1, "Dev", " dev"])
def test_stage_must_be_named_exactly(stage: object) -> None:
    with pytest.raises(ConfigError) as info:
        config_for(stage)
    assert_message(str(info.value), "stage", stage, "must be one of dev, prod, local")


def test_only_prod_retains_data() -> None:
    assert {stage: stage_config(stage).removal_policy for stage in ("dev", "prod", "local")} == {
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
            admission_stage_timeout_minutes=DEV.admission_stage_timeout_minutes,
            crawl_stage_timeout_minutes=DEV.crawl_stage_timeout_minutes,
            transform_stage_timeout_minutes=DEV.transform_stage_timeout_minutes,
            pipeline_timeout_minutes=DEV.pipeline_timeout_minutes,
        )
        == DEV
    )


@pytest.mark.slow  # app.py in a subprocess
def test_app_rejects_an_unknown_stage_with_one_line_and_exit_2() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CDK_")}
    env["CDK_CONTEXT_JSON"] = json.dumps({"stage": "nope"})  # how the CDK CLI passes `-c stage=nope`
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == ["error: config stage = 'nope': must be one of dev, prod, local"]
    assert result.stdout == ""


# --- issue 15: limits, notices, concurrency and logging per stage -------------------------------


def test_a_full_batch_of_the_longest_keys_fits_half_the_state_limit() -> None:
    """A child workflow's input is its batch; with 1,024-byte keys it must stay far below 256 KiB."""
    from stacks.config.settings import MAX_BATCH_INPUT_BYTES, MAX_BATCH_SIZE, AdmissionConfig

    run = "r" * 80 + "-r20"
    items = [{"key": "k" * 1024, "size": 5 * 1024**4, "run": run} for _ in range(MAX_BATCH_SIZE)]
    batch = json.dumps({"Items": items}, separators=(",", ":")).encode()
    assert len(batch) <= MAX_BATCH_INPUT_BYTES <= 256 * 1024 // 2
    assert DeploymentConfig(stage="dev", admission=AdmissionConfig(batch_size=MAX_BATCH_SIZE, max_file_megabytes=1))
    # On main, batch_size 1000 (and 10 MB files) was accepted: about 1.1 MB of input per batch.
    with pytest.raises(ConfigError) as raised:
        DeploymentConfig(stage="dev", admission=AdmissionConfig(batch_size=1000, max_file_megabytes=10))
    assert_message(
        str(raised.value),
        "dev.admission.batch_size",
        1000,
        f"must be an integer between 1 and {MAX_BATCH_SIZE}: a batch of 1024-byte keys must fit 131,072 bytes",
    )
    for stage in ("dev", "prod", "local"):
        assert stage_config(stage).admission.batch_size <= MAX_BATCH_SIZE


def test_prod_refuses_to_build_without_a_notification_address() -> None:
    with pytest.raises(ConfigError) as raised:
        config_for("prod")
    assert_message(
        str(raised.value),
        "prod.notification_emails",
        (),
        "stage prod needs at least one address for its failure notices and alarms: -c notification_emails=",
    )
    assert config_for("prod", notification_emails=TEST_NOTIFICATION_EMAILS).notification_emails == ("ops@example.com",)
    # The address is checked like any other; dev and local need none.
    with pytest.raises(ConfigError, match=r"^config prod\.notification_emails = 'ops': each must be an e-mail"):
        config_for("prod", notification_emails=("ops",))
    assert config_for("dev").notification_emails == () and config_for("local").notification_emails == ()


def test_lambda_concurrency_is_reserved_in_prod_only() -> None:
    assert {stage: stage_config(stage).reserve_lambda_concurrency for stage in ("dev", "prod", "local")} == {
        "dev": False,
        "prod": True,
        "local": False,
    }
    assert_message(error_of(reserve_lambda_concurrency="yes"), "dev.reserve_lambda_concurrency", "yes", "True or False")


def test_state_machine_logging_is_per_stage() -> None:
    levels = {
        stage: (stage_config(stage).state_machine_log_level, stage_config(stage).state_machine_log_execution_data)
        for stage in ("dev", "prod", "local")
    }
    # prod: failures only, without every state's input and output (file keys, at a price per event).
    assert levels == {"dev": ("ALL", True), "prod": ("ERROR", False), "local": ("ALL", True)}
    assert_message(
        error_of(state_machine_log_level="DEBUG"), "dev.state_machine_log_level", "DEBUG", "must be one of ALL, ERROR"
    )
    assert_message(
        error_of(state_machine_log_level="OFF"),
        "dev.state_machine_log_execution_data",
        True,
        "must be False when state_machine_log_level is OFF",
    )
