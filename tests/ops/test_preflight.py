"""`make preflight`: each problem only the account can show is found on moto, and a clean account passes.

The plans are the dev stage as synthesized (tests/conftest.py). Whether a stage reserves Lambda
concurrency is its config's business, so the concurrency tests set the reservations they need on
the synthesized functions explicitly (`reserving`). moto lacks GetAccountSettings and confirms
e-mail subscriptions at once: the `lambda-account-settings` and `sns-email-confirmation` entries of
localrun/emulator/moto/ bend it to AWS; `MOTO_LAMBDA_CONCURRENCY_QUOTA` is moto's quota knob.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

import app as cdk_app
from localrun.emulator import moto as moto_patches
from ops import preflight
from ops.preflight import BLOCKING, BY_HAND, OK, WARNING, Finding, StackPlan
from stacks.config.stages import config_for
from tests.conftest import Synthesized

REGION = "eu-west-1"
ACCOUNT_PATCHES = [e for e in moto_patches.REGISTRY if e.name in ("lambda-account-settings", "sns-email-confirmation")]
# The admission function, the admission summary and the check: 14 concurrent executions in all.
RESERVATIONS = {"AdmissionStageAdmitFiles": 10, "AdmissionStageSummarizeAdmission": 2, "TransformStageCheckResults": 2}


@pytest.fixture(scope="module")
def dev_stacks() -> list[str]:
    return cdk_app.deployed_stack_ids(config_for("dev"))


@pytest.fixture(scope="module")
def plans(synth: Callable[[str], Synthesized], dev_stacks: list[str]) -> list[StackPlan]:
    return preflight.read_plan(synth("dev").outdir, dev_stacks)


def reserving(plans: list[StackPlan], reservations: Mapping[str, int | None]) -> list[StackPlan]:
    """The plans with these functions' reserved concurrency set (None: no reservation), as a config would."""
    changed = []
    for plan in plans:
        template = copy.deepcopy(plan.template)
        for logical_id, function in template["Resources"].items():
            for prefix, value in reservations.items():
                if function["Type"] == "AWS::Lambda::Function" and logical_id.startswith(prefix):
                    function["Properties"].pop("ReservedConcurrentExecutions", None)
                    if value is not None:
                        function["Properties"]["ReservedConcurrentExecutions"] = value
        changed.append(StackPlan(plan.name, template, plan.requires_bootstrap, plan.bootstrap_parameter))
    found = sum(
        1
        for plan in changed
        for logical_id in plan.resources("AWS::Lambda::Function")
        if any(logical_id.startswith(prefix) for prefix in reservations)
    )
    assert found == len(reservations), "a function these tests reserve for was renamed"
    return changed


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    """An empty moto account, bootstrapped as `cdk bootstrap` leaves it (version 30), default quota."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("MOTO_LAMBDA_CONCURRENCY_QUOTA", raising=False)
    with moto_patches.applied(ACCOUNT_PATCHES), mock_aws():
        session = boto3.Session(region_name=REGION)
        bootstrap(session, 30)
        yield session


def bootstrap(session: boto3.Session, version: int | None, qualifier: str = "hnb659fds") -> None:
    ssm, name = session.client("ssm"), f"/cdk-bootstrap/{qualifier}/version"
    if version is None:
        ssm.delete_parameter(Name=name)
    else:
        ssm.put_parameter(Name=name, Value=str(version), Type="String", Overwrite=True)


def deploy_storage(session: boto3.Session, stack: str) -> str:
    """A deployed Storage stack as far as the preflight reads it: its NotificationTopicArn output."""
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"NotificationTopicArn": {"Value": {"Ref": "Topic"}}},
    }
    cloudformation = session.client("cloudformation")
    cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    outputs = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == "NotificationTopicArn")


def subscribe(session: boto3.Session, topic: str, address: str, *, confirmed: bool) -> None:
    arn = session.client("sns").subscribe(TopicArn=topic, Protocol="email", Endpoint=address)["SubscriptionArn"]
    # The recipient followed the link in the confirmation message (moto sends none).
    sns_backends[DEFAULT_ACCOUNT_ID][REGION].subscriptions[arn].confirmed = confirmed


def lambda_role(session: boto3.Session) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam = session.client("iam")
    return iam.create_role(RoleName="function", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def run(session: boto3.Session, plans: list[StackPlan]) -> tuple[list[Finding], str, int]:
    findings = preflight.preflight(session, plans, stage="dev")
    text, status = preflight.render(findings, stage="dev", region=REGION, account=DEFAULT_ACCOUNT_ID)
    return findings, text, status


def of(findings: list[Finding], check: str) -> list[Finding]:
    return [f for f in findings if f.check == check]


def storage_stack(plans: list[StackPlan]) -> str:
    return next(p.name for p in plans if "NotificationTopicArn" in p.template.get("Outputs", {}))


def test_a_clean_account_passes(account: boto3.Session, plans: list[StackPlan]) -> None:
    topic = deploy_storage(account, storage_stack(plans))
    subscribe(account, topic, "ops@example.com", confirmed=True)
    findings, text, status = run(account, reserving(plans, RESERVATIONS))
    assert status == 0, text
    assert [f.line() for f in findings if f.level in (BLOCKING, WARNING)] == []
    assert of(findings, "Lambda concurrency")[0].text.startswith("14 reserved (AdmissionStageAdmitFiles")
    assert "leaves 986 of 1000 unreserved" in of(findings, "Lambda concurrency")[0].text
    assert of(findings, "CDK bootstrap") == [
        Finding(
            OK, "CDK bootstrap", "version 30 (SSM parameter /cdk-bootstrap/hnb659fds/version); the templates need 6"
        )
    ]
    assert of(findings, "notification e-mails")[0].level == OK
    # Three Lambda runtimes and the Glue version (test_what_no_api_lists_is_named_for_a_check_by_hand).
    assert text.splitlines()[-1] == "0 blocking, 0 warning(s), 4 to check by hand: nothing blocks the deploy"


def test_what_no_api_lists_is_named_for_a_check_by_hand(account: boto3.Session, plans: list[StackPlan]) -> None:
    findings, _, _ = run(account, plans)
    by_hand = {(f.check, f.text.split(" (")[0]) for f in findings if f.level == BY_HAND}
    # The pipeline's functions, CDK's own handlers (bucket notifications, auto-delete), the Glue job.
    assert by_hand == {
        ("Lambda runtime", "runtime python3.14"),
        ("Lambda runtime", "runtime python3.13"),
        ("Lambda runtime", "runtime nodejs24.x"),
        ("Glue version", "Glue 5.0"),
    }
    assert all(preflight.LAMBDA_RUNTIMES_PAGE in f.fix for f in of(findings, "Lambda runtime"))


@pytest.mark.parametrize(
    ("quota", "wanted"),
    [(10, 114), (50, 114), (113, 114)],  # new accounts' 10 and 50; one short of 14 + Lambda's 100
)
def test_a_quota_too_small_for_the_reservations_blocks_the_deploy(
    account: boto3.Session, plans: list[StackPlan], monkeypatch: pytest.MonkeyPatch, quota: int, wanted: int
) -> None:
    monkeypatch.setenv("MOTO_LAMBDA_CONCURRENCY_QUOTA", str(quota))
    findings, text, status = run(account, reserving(plans, RESERVATIONS))
    assert status == 1
    (finding,) = of(findings, "Lambda concurrency")
    assert finding.level == BLOCKING
    assert f"the account's quota in {REGION} is {quota} with {quota} unreserved" in finding.text
    assert f"Lambda keeps {min(quota, 100)} unreserved" in finding.text
    assert f"--quota-code L-B99A9384 --desired-value {wanted} --region {REGION}" in finding.fix
    assert finding.line() in text.splitlines()


def test_the_quota_asked_for_is_enough(account: boto3.Session, plans: list[StackPlan], monkeypatch) -> None:
    monkeypatch.setenv("MOTO_LAMBDA_CONCURRENCY_QUOTA", "114")
    findings, _, status = run(account, reserving(plans, RESERVATIONS))
    assert status == 0
    assert of(findings, "Lambda concurrency")[0].text.endswith(f"leaves 100 of 114 unreserved in {REGION}")


def test_other_functions_reservations_count_against_the_quota(account: boto3.Session, plans, monkeypatch) -> None:
    monkeypatch.setenv("MOTO_LAMBDA_CONCURRENCY_QUOTA", "1000")
    lambda_ = account.client("lambda")
    role = lambda_role(account)
    lambda_.create_function(
        FunctionName="other", Runtime="python3.13", Role=role, Handler="h.h", Code={"ZipFile": b"0"}
    )
    lambda_.put_function_concurrency(FunctionName="other", ReservedConcurrentExecutions=890)
    findings, _, status = run(account, reserving(plans, RESERVATIONS))
    assert status == 1
    assert "with 110 unreserved" in of(findings, "Lambda concurrency")[0].text  # 110 - 14 < 100


def test_what_the_deployed_stage_reserves_already_is_given_back_first(
    account: boto3.Session, plans: list[StackPlan], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update of a stage that holds its 14 needs no new room: 114 - 14 held + 14 again >= 100."""
    monkeypatch.setenv("MOTO_LAMBDA_CONCURRENCY_QUOTA", "114")
    reserving_plans = reserving(plans, RESERVATIONS)
    pipeline = next(p for p in reserving_plans if p.name == cdk_app.stack_ids(config_for("dev"))["pipeline"])
    resources, role = {}, lambda_role(account)
    for logical_id, function in pipeline.resources("AWS::Lambda::Function").items():
        reserved = function["Properties"].get("ReservedConcurrentExecutions")
        resources[logical_id] = {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.13",
                "Handler": "handler.handler",
                "Role": role,
                "Code": {"ZipFile": "def handler(event, context): pass"},
                **({"ReservedConcurrentExecutions": reserved} if reserved else {}),
            },
        }
    account.client("cloudformation").create_stack(
        StackName=pipeline.name, TemplateBody=json.dumps({"Resources": resources})
    )
    settings = account.client("lambda").get_account_settings()["AccountLimit"]
    assert settings["UnreservedConcurrentExecutions"] == 100  # the deployed stage holds its 14
    findings, text, status = run(account, reserving_plans)
    assert status == 0, text
    assert of(findings, "Lambda concurrency")[0].text.endswith(f"leaves 100 of 114 unreserved in {REGION}")


def test_a_stage_that_reserves_nothing_needs_no_quota(account: boto3.Session, plans, monkeypatch) -> None:
    monkeypatch.setenv("MOTO_LAMBDA_CONCURRENCY_QUOTA", "10")
    findings, _, status = run(account, reserving(plans, dict.fromkeys(RESERVATIONS)))
    assert status == 0
    assert of(findings, "Lambda concurrency") == [
        Finding(OK, "Lambda concurrency", "no function of this stage reserves concurrency")
    ]


def test_an_account_not_bootstrapped_blocks_the_deploy(account: boto3.Session, plans: list[StackPlan]) -> None:
    bootstrap(account, None)
    findings, _, status = run(account, plans)
    assert status == 1
    assert of(findings, "CDK bootstrap") == [
        Finding(
            BLOCKING,
            "CDK bootstrap",
            f"{REGION} is not bootstrapped (no SSM parameter /cdk-bootstrap/hnb659fds/version)",
            f"make bootstrap STAGE=dev (creates or upgrades the CDKToolkit stack in {REGION})",
        )
    ]


def test_an_old_bootstrap_blocks_the_deploy(account: boto3.Session, plans: list[StackPlan]) -> None:
    bootstrap(account, 5)
    findings, _, status = run(account, plans)
    assert status == 1
    (finding,) = of(findings, "CDK bootstrap")
    assert finding.level == BLOCKING
    assert (
        finding.text
        == "bootstrap version 5 (SSM parameter /cdk-bootstrap/hnb659fds/version); the templates need version 6 or later"
    )


def test_a_toolkit_bootstrapped_with_another_qualifier_is_named(account: boto3.Session, plans) -> None:
    bootstrap(account, None)
    bootstrap(account, 30, qualifier="custom")
    template = {"Resources": {"T": {"Type": "AWS::SNS::Topic"}}, "Outputs": {"BootstrapVersion": {"Value": "30"}}}
    account.client("cloudformation").create_stack(StackName="CDKToolkit", TemplateBody=json.dumps(template))
    findings, _, status = run(account, plans)
    assert status == 1
    assert of(findings, "CDK bootstrap")[0].text.endswith(
        "a CDKToolkit stack (version 30) exists: bootstrapped with another qualifier?)"
    )


def test_an_e_mail_not_confirmed_is_named_with_the_fix(account: boto3.Session, plans: list[StackPlan]) -> None:
    topic = deploy_storage(account, storage_stack(plans))
    subscribe(account, topic, "ops@example.com", confirmed=True)
    subscribe(account, topic, "on.call@example.com", confirmed=False)
    findings, text, status = run(account, plans)
    assert status == 0  # it does not stop a deploy; it stops notices
    assert of(findings, "notification e-mails") == [
        Finding(
            WARNING,
            "notification e-mails",
            f"on.call@example.com has not confirmed its subscription to {topic}: it receives nothing",
            "open the message 'AWS Notification - Subscription Confirmation' sent to it and follow 'Confirm "
            f"subscription' (to send it again: aws sns subscribe --topic-arn {topic} --protocol email "
            "--notification-endpoint on.call@example.com)",
        )
    ]
    assert "0 blocking, 1 warning(s)" in text


def test_a_topic_nobody_reads_is_a_warning(account: boto3.Session, plans: list[StackPlan]) -> None:
    topic = deploy_storage(account, storage_stack(plans))
    findings, _, _ = run(account, plans)
    assert of(findings, "notification e-mails") == [
        Finding(
            WARNING,
            "notification e-mails",
            f"{topic} has no subscriber: failure notices and alarms reach no one",
            "set notification_emails of stage dev in stacks/config/stages.py and deploy",
        )
    ]


def test_before_the_first_deploy_the_e_mails_are_checked_after_it(account: boto3.Session, plans) -> None:
    findings, _, _ = run(account, plans)
    (finding,) = of(findings, "notification e-mails")
    assert finding.level == OK
    assert finding.text.startswith("stage not deployed yet: after the deploy, run make preflight again")


def test_a_region_without_mwaa_blocks_an_mwaa_stage(
    account: boto3.Session, synth: Callable[[str], Synthesized]
) -> None:
    """mx-central-1 has Lambda and Glue but no MWAA in botocore's endpoint data; the MWAA stack needs it."""
    mwaa_plans = preflight.read_plan(synth("dev").outdir, [cdk_app.stack_ids(config_for("dev"))["orchestration"]])
    session = boto3.Session(region_name="mx-central-1")
    (finding,) = preflight.check_region(session, mwaa_plans, "mx-central-1")
    assert finding.level == BLOCKING
    assert "does not list mwaa in mx-central-1" in finding.text
    by_hand = preflight.check_by_hand(mwaa_plans, "mx-central-1")
    assert any(f.check == "MWAA Airflow version" and preflight.MWAA_VERSIONS_PAGE in f.fix for f in by_hand)
    assert preflight.check_region(account, mwaa_plans, REGION)[0].level == OK


def test_a_denied_call_is_a_warning_naming_it(account: boto3.Session, plans, monkeypatch) -> None:
    from botocore.exceptions import ClientError

    def denied(*_: Any, **__: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetAccountSettings")

    monkeypatch.setattr(preflight, "check_concurrency", denied)
    findings, _, status = run(account, plans)
    assert status == 0
    assert of(findings, "Lambda concurrency") == [
        Finding(
            WARNING,
            "Lambda concurrency",
            "could not check: GetAccountSettings answered AccessDeniedException",
            "run make preflight with a role allowed to call GetAccountSettings",
        )
    ]


def test_the_command_prints_one_line_per_finding_and_fails_on_a_blocking_one(
    account: boto3.Session, synth: Callable[[str], Synthesized], dev_stacks: list[str], capsys, monkeypatch
) -> None:
    bootstrap(account, None)
    argv = ["--stage", "dev", "--assembly", str(synth("dev").outdir), "--region", REGION, "--stacks", *dev_stacks]
    assert preflight.main(argv) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"preflight of stage dev in account {DEFAULT_ACCOUNT_ID}, {REGION}"
    assert any(
        line.startswith("BLOCKING CDK bootstrap: ") and "| fix: make bootstrap STAGE=dev" in line for line in lines
    )
    assert lines[-1].startswith("1 blocking, ")


def test_the_command_without_an_assembly_says_what_to_do(tmp_path: Path, capsys) -> None:
    assert preflight.main(["--assembly", str(tmp_path), "--stacks", "GluePipeline-dev-Storage"]) == 2
    assert capsys.readouterr().err == (
        f"error: no cloud assembly at {tmp_path}: synthesize the stage first (make preflight does)\n"
    )
