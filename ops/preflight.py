"""What only the account can say before a deploy: `make preflight STAGE=...` (`make deploy` runs it first).

    python -m ops.preflight --stage dev [--assembly cdk.out] [--region R] [--profile P]

It reads the stage's synthesized cloud assembly (what `cdk deploy` deploys) and asks the account,
through boto3's credential chain (the one the CDK CLI uses):

- Lambda concurrency: the functions' reserved concurrency against the account's quota
  (lambda:GetAccountSettings). Lambda keeps 100 executions unreserved, or the whole quota when
  it is below 100, as new accounts' 10 or 50 are: any reservation then fails the deploy.
- CDK bootstrap: the version in the SSM parameter the templates name, against the version they
  require (the manifest's requiresBootstrapStackVersion); the CDKToolkit stack's output when the
  parameter cannot be read.
- Services in the region, as far as botocore's endpoint data knows; the Lambda runtimes, the Glue
  version and the MWAA Airflow version the templates use, which no API lists: checked by hand.
- E-mail subscriptions still waiting for their confirmation (after a deploy): they receive nothing.

One line per finding, with the fix. Exit status 1 when a finding blocks the deploy, 2 when the
preflight itself cannot run (no credentials, no region, no assembly), else 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stacks.common.paths import REPO_ROOT

BLOCKING, WARNING, BY_HAND, OK = "BLOCKING", "WARNING", "BY HAND", "OK"
# Lambda keeps this many concurrent executions unreserved (fewer only when the quota is smaller).
LAMBDA_MIN_UNRESERVED = 100
LAMBDA_CONCURRENCY_QUOTA_CODE = "L-B99A9384"  # Service Quotas: AWS Lambda, Concurrent executions
TOOLKIT_STACK = "CDKToolkit"
# Services whose regional availability is the deploy's business, by CloudFormation namespace.
REGIONAL_SERVICES = {
    "AWS::Lambda": "lambda",
    "AWS::Glue": "glue",
    "AWS::StepFunctions": "stepfunctions",
    "AWS::MWAA": "mwaa",
}
LAMBDA_RUNTIMES_PAGE = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html"
GLUE_VERSIONS_PAGE = "https://docs.aws.amazon.com/glue/latest/dg/release-notes.html"
MWAA_VERSIONS_PAGE = "https://docs.aws.amazon.com/mwaa/latest/userguide/airflow-versions.html"
EMAIL_PROTOCOLS = ("email", "email-json")


class PreflightError(RuntimeError):
    """The preflight cannot run: the message says what is missing."""


@dataclass(frozen=True)
class Finding:
    level: str  # BLOCKING, WARNING, BY HAND or OK
    check: str
    text: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.level:<8} {self.check}: {self.text}" + (f" | fix: {self.fix}" if self.fix else "")


@dataclass(frozen=True)
class StackPlan:
    """One stack the deploy creates or updates, as synthesized."""

    name: str
    template: dict[str, Any]
    requires_bootstrap: int | None
    bootstrap_parameter: str | None

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.template.get("Resources", {}).items() if r.get("Type") == type_}


def read_plan(assembly: Path, stacks: Sequence[str]) -> list[StackPlan]:
    manifest_file = assembly / "manifest.json"
    if not manifest_file.is_file():
        raise PreflightError(f"no cloud assembly at {assembly}: synthesize the stage first (make preflight does)")
    artifacts = json.loads(manifest_file.read_text())["artifacts"]
    plans = []
    for name in stacks:
        artifact = artifacts.get(name)
        if artifact is None or artifact.get("type") != "aws:cloudformation:stack":
            raise PreflightError(f"stack {name} is not in the cloud assembly {assembly}: synthesize this stage again")
        properties = artifact.get("properties", {})
        plans.append(
            StackPlan(
                name=name,
                template=json.loads((assembly / properties["templateFile"]).read_text()),
                requires_bootstrap=properties.get("requiresBootstrapStackVersion"),
                bootstrap_parameter=properties.get("bootstrapStackVersionSsmParameter"),
            )
        )
    return plans


def _stack_resources(cloudformation: Any, stack: str) -> dict[str, str] | None:
    """Logical ID -> physical ID of a deployed stack, or None when it is not deployed."""
    try:
        pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack)
        return {
            r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
            for page in pages
            for r in page["StackResourceSummaries"]
        }
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise


# -- the checks: each returns its findings --------------------------------------------------------
def check_concurrency(clients: dict[str, Any], plans: Sequence[StackPlan], region: str) -> list[Finding]:
    check = "Lambda concurrency"
    reservations = {
        (plan.name, logical_id): int(function["Properties"]["ReservedConcurrentExecutions"])
        for plan in plans
        for logical_id, function in plan.resources("AWS::Lambda::Function").items()
        if function.get("Properties", {}).get("ReservedConcurrentExecutions") is not None
    }
    need = sum(reservations.values())
    if need == 0:
        return [Finding(OK, check, "no function of this stage reserves concurrency")]
    limit = clients["lambda"].get_account_settings()["AccountLimit"]
    quota, unreserved = limit["ConcurrentExecutions"], limit["UnreservedConcurrentExecutions"]
    held = _reservations_held(clients, plans, reservations)  # already counted out of `unreserved`
    floor = min(LAMBDA_MIN_UNRESERVED, quota)
    left = unreserved + held - need
    detail = ", ".join(f"{logical_id} {n}" for (_, logical_id), n in sorted(reservations.items()))
    if left >= floor:
        return [Finding(OK, check, f"{need} reserved ({detail}) leaves {left} of {quota} unreserved in {region}")]
    wanted = quota + LAMBDA_MIN_UNRESERVED - left
    return [
        Finding(
            BLOCKING,
            check,
            f"the stage reserves {need} concurrent executions ({detail}); the account's quota in {region} is "
            f"{quota} with {unreserved} unreserved, and Lambda keeps {floor} unreserved: CloudFormation would fail "
            '("decreases account\'s UnreservedConcurrentExecution below its minimum value")',
            f"ask for a quota of at least {wanted}: aws service-quotas request-service-quota-increase --service-code "
            f"lambda --quota-code {LAMBDA_CONCURRENCY_QUOTA_CODE} --desired-value {wanted} --region {region}; or "
            "deploy this stage without reserved concurrency (its config in stacks/config/stages.py)",
        )
    ]


def _reservations_held(clients: dict[str, Any], plans: Sequence[StackPlan], reservations: dict) -> int:
    """What the stage's functions reserve today, if deployed: an update gives that back first."""
    held = 0
    for plan in plans:
        deployed = _stack_resources(clients["cloudformation"], plan.name) or {}
        for stack, logical_id in reservations:
            if stack == plan.name and deployed.get(logical_id):
                answer = clients["lambda"].get_function_concurrency(FunctionName=deployed[logical_id])
                held += int(answer.get("ReservedConcurrentExecutions") or 0)
    return held


def check_bootstrap(clients: dict[str, Any], plans: Sequence[StackPlan], region: str, stage: str) -> list[Finding]:
    check = "CDK bootstrap"
    required: dict[str, int] = defaultdict(int)
    for plan in plans:
        if plan.bootstrap_parameter and plan.requires_bootstrap:
            required[plan.bootstrap_parameter] = max(required[plan.bootstrap_parameter], plan.requires_bootstrap)
    fix = f"make bootstrap STAGE={stage} (creates or upgrades the {TOOLKIT_STACK} stack in {region})"
    findings = []
    for parameter, version in required.items():
        found, where = _bootstrap_version(clients, parameter)
        if found is None:
            findings.append(Finding(BLOCKING, check, f"{region} is not bootstrapped ({where})", fix))
        elif found < version:
            text = f"bootstrap version {found} ({where}); the templates need version {version} or later"
            findings.append(Finding(BLOCKING, check, text, fix))
        else:
            findings.append(Finding(OK, check, f"version {found} ({where}); the templates need {version}"))
    return findings


def _bootstrap_version(clients: dict[str, Any], parameter: str) -> tuple[int | None, str]:
    """The bootstrap version and where it was read: the SSM parameter the templates check, or, when
    the parameter cannot be read, the toolkit stack's BootstrapVersion output."""
    try:
        return int(clients["ssm"].get_parameter(Name=parameter)["Parameter"]["Value"]), f"SSM parameter {parameter}"
    except ClientError as error:
        code = error.response["Error"]["Code"]
    toolkit = _toolkit_version(clients["cloudformation"])
    if code == "ParameterNotFound":
        other = f"; a {TOOLKIT_STACK} stack (version {toolkit}) exists: bootstrapped with another qualifier?"
        return None, f"no SSM parameter {parameter}" + (other if toolkit is not None else "")
    where = f"SSM parameter {parameter} unreadable ({code}); {TOOLKIT_STACK} stack output"
    return toolkit, where if toolkit is not None else f"{where} missing too"


def _toolkit_version(cloudformation: Any) -> int | None:
    try:
        stack = cloudformation.describe_stacks(StackName=TOOLKIT_STACK)["Stacks"][0]
    except ClientError:
        return None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return int(outputs["BootstrapVersion"]) if "BootstrapVersion" in outputs else None


def check_region(session: Any, plans: Sequence[StackPlan], region: str) -> list[Finding]:
    check = "services in the region"
    used = sorted(
        {
            service
            for plan in plans
            for resource in plan.template.get("Resources", {}).values()
            for namespace, service in REGIONAL_SERVICES.items()
            if resource.get("Type", "").startswith(f"{namespace}::")
        }
    )
    partition = session.get_partition_for_region(region)
    missing = [s for s in used if region not in session.get_available_regions(s, partition_name=partition)]
    if not missing:
        return [Finding(OK, check, f"{', '.join(used)} offered in {region} (botocore's endpoint data)")]
    return [
        Finding(
            BLOCKING,
            check,
            f"botocore's endpoint data does not list {', '.join(missing)} in {region}",
            "deploy to a region that offers them (AWS Regional Services list), or upgrade boto3 if the region is "
            "newer than its data",
        )
    ]


def check_by_hand(plans: Sequence[StackPlan], region: str) -> list[Finding]:
    """What no API lists: the runtimes, the Glue version, the Airflow version the templates use."""
    used: dict[tuple[str, str], set[str]] = defaultdict(set)
    for plan in plans:
        for type_, key in (
            ("AWS::Lambda::Function", "Runtime"),
            ("AWS::Glue::Job", "GlueVersion"),
            ("AWS::MWAA::Environment", "AirflowVersion"),
        ):
            for logical_id, resource in plan.resources(type_).items():
                value = resource.get("Properties", {}).get(key)
                if isinstance(value, str):
                    used[(type_, value)].add(logical_id)
    findings = []
    for (type_, value), users in sorted(used.items()):
        count = f"{len(users)} function{'s' * (len(users) > 1)}"
        if type_ == "AWS::Lambda::Function":
            text = f"runtime {value} ({count}): Lambda has no API listing the runtimes a region offers"
            fix = f"check {LAMBDA_RUNTIMES_PAGE}: {value} supported in {region}, not deprecated"
            findings.append(Finding(BY_HAND, "Lambda runtime", text, fix))
        elif type_ == "AWS::Glue::Job":
            text = f"Glue {value} ({', '.join(sorted(users))}): Glue has no API listing its versions"
            fix = f"check {GLUE_VERSIONS_PAGE}: Glue {value} available in {region}"
            findings.append(Finding(BY_HAND, "Glue version", text, fix))
        else:
            text = f"Airflow {value}: MWAA has no API listing the versions it offers (CreateEnvironment rejects others)"
            fix = f"check {MWAA_VERSIONS_PAGE}: Airflow {value} offered in {region}"
            findings.append(Finding(BY_HAND, "MWAA Airflow version", text, fix))
    return findings


def check_notifications(clients: dict[str, Any], plans: Sequence[StackPlan], stage: str) -> list[Finding]:
    check = "notification e-mails"
    topics = _deployed_topics(clients["cloudformation"], plans)
    if not topics:
        return [
            Finding(
                OK,
                check,
                "stage not deployed yet: after the deploy, run make preflight again to list "
                "the e-mail subscriptions still waiting for their confirmation",
            )
        ]
    findings = []
    for topic in topics:
        pages = clients["sns"].get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
        subscriptions = [s for page in pages for s in page["Subscriptions"]]
        pending = [
            s["Endpoint"]
            for s in subscriptions
            if s["Protocol"] in EMAIL_PROTOCOLS and s["SubscriptionArn"] == "PendingConfirmation"
        ]
        findings += [
            Finding(
                WARNING,
                check,
                f"{address} has not confirmed its subscription to {topic}: it receives nothing",
                "open the message 'AWS Notification - Subscription Confirmation' sent to it and follow 'Confirm "
                f"subscription' (to send it again: aws sns subscribe --topic-arn {topic} --protocol email "
                f"--notification-endpoint {address})",
            )
            for address in pending
        ]
        if not subscriptions:
            text = f"{topic} has no subscriber: failure notices and alarms reach no one"
            fix = f"set notification_emails of stage {stage} in stacks/config/stages.py and deploy"
            findings.append(Finding(WARNING, check, text, fix))
        elif not pending:
            findings.append(Finding(OK, check, f"{len(subscriptions)} subscription(s) to {topic}, none pending"))
    return findings


def _deployed_topics(cloudformation: Any, plans: Sequence[StackPlan]) -> list[str]:
    """The notification topics the deployed stacks publish as outputs (StorageStack's NotificationTopicArn)."""
    topics = []
    for plan in plans:
        if "NotificationTopicArn" not in plan.template.get("Outputs", {}):
            continue
        try:
            stack = cloudformation.describe_stacks(StackName=plan.name)["Stacks"][0]
        except ClientError as error:
            if "does not exist" in str(error):
                continue
            raise
        topics += [o["OutputValue"] for o in stack.get("Outputs", []) if o["OutputKey"] == "NotificationTopicArn"]
    return topics


# -- running them ------------------------------------------------------------------------------------
def preflight(session: Any, plans: Sequence[StackPlan], *, stage: str) -> list[Finding]:
    region = session.region_name
    clients = {name: session.client(name) for name in ("lambda", "ssm", "cloudformation", "sns")}
    checks: list[tuple[str, Callable[[], list[Finding]]]] = [
        ("Lambda concurrency", lambda: check_concurrency(clients, plans, region)),
        ("CDK bootstrap", lambda: check_bootstrap(clients, plans, region, stage)),
        ("services in the region", lambda: check_region(session, plans, region)),
        ("by hand", lambda: check_by_hand(plans, region)),
        ("notification e-mails", lambda: check_notifications(clients, plans, stage)),
    ]
    findings: list[Finding] = []
    for name, run in checks:
        try:
            findings += run()
        except ClientError as error:
            operation = error.operation_name
            code = error.response.get("Error", {}).get("Code", "")
            text = f"could not check: {operation} answered {code}"
            findings.append(Finding(WARNING, name, text, f"run make preflight with a role allowed to call {operation}"))
    return findings


def render(findings: Sequence[Finding], *, stage: str, region: str, account: str) -> tuple[str, int]:
    """The report, one line per finding, and the exit status (1 when a finding blocks the deploy)."""
    counts = {level: sum(f.level == level for f in findings) for level in (BLOCKING, WARNING, BY_HAND)}
    lines = [f"preflight of stage {stage} in account {account}, {region}"]
    lines += [f.line() for f in findings]
    verdict = "the deploy would fail: fix the BLOCKING lines first" if counts[BLOCKING] else "nothing blocks the deploy"
    lines.append(
        f"{counts[BLOCKING]} blocking, {counts[WARNING]} warning(s), {counts[BY_HAND]} to check by hand: {verdict}"
    )
    return "\n".join(lines) + "\n", int(counts[BLOCKING] > 0)


def _deployed_stack_ids(stage: str) -> list[str]:
    """What `make deploy` deploys for the stage (app.py decides; imports the CDK app, so a few seconds)."""
    from app import deployed_stack_ids
    from stacks.config.stages import config_for

    return deployed_stack_ids(config_for(stage))


def main(argv: list[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(prog="python -m ops.preflight", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--assembly", type=Path, default=REPO_ROOT / "cdk.out", help="the stage's synthesized assembly")
    parser.add_argument("--stacks", nargs="*", help="the stacks the deploy deploys (default: as app.py says)")
    parser.add_argument("--region")
    parser.add_argument("--profile")
    args = parser.parse_args(argv)
    try:
        plans = read_plan(args.assembly, args.stacks or _deployed_stack_ids(args.stage))
        session = boto3.Session(profile_name=args.profile, region_name=args.region)
        if not session.region_name:
            raise PreflightError("no region: pass REGION=... (--region) or configure one (AWS_REGION, the profile)")
        account = session.client("sts").get_caller_identity()["Account"]
    except PreflightError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as error:
        print(
            f"error: no usable AWS credentials ({error}): configure a profile (PROFILE=...) or credentials",
            file=sys.stderr,
        )
        return 2
    text, status = render(
        preflight(session, plans, stage=args.stage), stage=args.stage, region=session.region_name, account=account
    )
    print(text, end="")
    return status


if __name__ == "__main__":
    sys.exit(main())
