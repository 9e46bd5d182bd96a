"""Least privilege, measured: the granted actions no local scenario exercises.

    python -m ops.least_privilege [--assembly cdk.out.local] [--scenario NAME ...]

Runs the scenarios with enforcement on (localrun/emulator/permissions.py records every call it allows),
then lists each Allow of the assembly's roles, one (action, resource) at a time, that no allowed
call matched, with the reason it is still granted. A grant is exercised when some call the run
made as that role matches its action pattern and its resource pattern. The report goes to
reports/least-privilege.json; the README quotes its totals.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import json
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from localrun.emulator.deployment import LocalDeployment, local_aws
from localrun.emulator.permissions import PolicyStore
from localrun.runner import run_scenario
from localrun.scenarios.catalogue import SCENARIOS

# One scenario per pipeline path: success, stages failing, retries, quarantine, the lease, the DLQ,
# odd files; the others (timeouts, bursts, 1,000 files) repeat these calls.
DEFAULT_SCENARIOS = (
    "happy_path",
    "crawler_already_running",
    "crawl_failed",
    "job_failed",
    "job_concurrency_exceeded",
    "too_many_rejected",
    "nothing_new",
    "target_unavailable",
    "stale_lease",
    "mixed_drop",
)

# Why a grant no scenario exercises is still there: (role logical id prefix or "", action pattern, reason).
_REASONS: tuple[tuple[str, str, str], ...] = (
    ("Custom", "*", "deploy time: a CloudFormation custom resource's role; nothing a run calls"),
    ("BucketNotificationsHandler", "*", "deploy time: a CloudFormation custom resource's role"),
    ("NetworkVpcFlowLog", "*", "VPC flow log delivery, by the service"),
    (
        "Mwaa",
        "*",
        "MWAA's own workers (logs, metrics, Celery queue, DAG bucket) and the DAG's operators: "
        "exercised on MWAA and by tests/dags, not by the scenarios",
    ),
    ("", "logs:*", "log delivery, done by the service for the role: no API call of the run"),
    ("", "xray:*", "tracing, done by the service for the role: no API call of the run"),
    ("", "events:*", "the managed rule Step Functions keeps for .sync integrations on AWS; moto polls instead"),
    ("", "states:StopExecution", "stops a child when its parent is stopped or times out; no scenario stops one"),
    ("", "states:RedriveExecution", "Map Run redrive; RedriveExecution is not in moto"),
    ("", "cloudwatch:PutMetricData", "Glue job metrics, sent by the Glue runtime"),
    (
        "LandingCrawler",
        "glue:*",
        "catalog writes of a real crawl; the crawl stand-in checks GetDatabase, GetTables and CreateTable only",
    ),
    ("", "glue:BatchStopJobRun", "stops the job when the transform state is stopped or times out"),
    ("", "glue:GetJobRuns", "granted with .sync by CDK; Step Functions polls GetJobRun"),
    (
        "",
        "kms:Encrypt",
        "added by CDK's key grants; S3, SNS, SQS and DynamoDB ask callers for "
        "GenerateDataKey/Decrypt only: candidate to drop",
    ),
    ("", "kms:ReEncrypt*", "added by CDK's key grants; no call re-encrypts: candidate to drop"),
    ("", "kms:DescribeKey", "added by CDK's key grants; no call describes the key: candidate to drop"),
    ("", "s3:PutObject*", "added by CDK's grant_write (legal hold, retention, tagging): candidate to drop"),
    ("", "s3:Abort*", "aborts multipart uploads; the code writes small objects in one request"),
    ("", "s3:AbortMultipartUpload", "the ResultWriter's multipart writes; its files are small here"),
    ("", "s3:ListMultipartUploadParts", "the ResultWriter's multipart writes; its files are small here"),
    ("", "s3:GetBucket*", "added by CDK's grant_read (bucket location, versioning...); no call reads them"),
)
_DEFAULT_REASON = "no scenario exercises it: a candidate to drop, or a scenario is missing"


@dataclass(frozen=True)
class Grant:
    role: str  # stack/logical id
    action: str
    resource: str
    source: str
    reason: str = ""


def _matches(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    if case_sensitive:
        return fnmatch.fnmatchcase(value, pattern)
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())


# Grants whose resource can never match what their action acts on, or that only AWS's side uses.
_RESOURCE_REASONS: tuple[tuple[str, str, str, str], ...] = (
    ("", "s3:Get*", "arn:*:s3:::*[!*]", "CDK's grant_read pairs object actions with the bucket ARN too: never matches"),
    ("", "s3:List*", "arn:*:s3:::*/*", "CDK's grant_read pairs bucket actions with object ARNs too: never matches"),
    ("", "lambda:InvokeFunction", "*:*:*:*:*:function:*:*", "the function's versions and aliases; none is invoked"),
    ("TransformJob", "s3:*", "arn:*:s3:::cdk-*", "Glue loads the job's script and libraries; not emulated locally"),
    ("TransformJob", "s3:*", "*", "Spark's overwrite and read-back of existing output; local runs write new prefixes"),
    ("AdmissionStageAdmitFiles", "s3:*", "*", "a retried batch looks for a file it moved; no scenario retries one"),
    ("AdmissionStageWorkflow", "states:*", "*", "the Distributed Map's children, started by the service"),
    ("AdmissionStageWorkflow", "s3:*", "*", "the ResultWriter's multipart upload and read-back; small files here"),
    ("AdmissionStageWorkflow", "kms:Decrypt", "*", "the ResultWriter's multipart upload; its files are small here"),
    ("PipelineWorkflow", "states:StartExecution", "*", "continues as a new execution after many rounds"),
)


def _reason(role: str, action: str, resource: str = "") -> str:
    logical = role.split("/")[-1]
    for role_prefix, action_pattern, resource_pattern, reason in _RESOURCE_REASONS:
        if (
            logical.startswith(role_prefix)
            and _matches(action_pattern, action, case_sensitive=False)
            and _matches(resource_pattern, resource, case_sensitive=True)
        ):
            return reason
    for role_prefix, action_pattern, reason in _REASONS:
        if logical.startswith(role_prefix) and _matches(action_pattern, action, case_sensitive=False):
            return reason
    return _DEFAULT_REASON


def unexercised(store: PolicyStore, exercised: Iterable[tuple[str, str, str]]) -> tuple[int, list[Grant]]:
    """(granted (action, resource) pairs in all, those no exercised call matched, with reasons)."""
    calls = list(exercised)
    total, left = 0, []
    for role_arn, statements in store.identity.items():
        role = store.role_names.get(role_arn, role_arn)
        for statement in statements:
            if statement.effect != "Allow" or statement.not_resource:
                continue
            for action in statement.actions:
                for resource in statement.resources:
                    total += 1
                    used = any(
                        arn == role_arn
                        and _matches(action, called, case_sensitive=False)
                        and _matches(resource, on, case_sensitive=True)
                        for arn, called, on in calls
                    )
                    if not used:
                        left.append(Grant(role, action, resource, statement.source, _reason(role, action, resource)))
    return total, left


def measure(assembly: Path, scenarios: Iterable[str]) -> dict[str, object]:
    exercised: set[tuple[str, str, str]] = set()
    store: PolicyStore | None = None
    for name in scenarios:
        with local_aws():
            deployment = LocalDeployment.bring_up(assembly)
            # A measurement, not a test of speed: a loaded machine's first Spark job may take minutes.
            deployment.wait = functools.partial(deployment.wait, timeout_s=900)  # type: ignore[method-assign]
            from localrun.emulator import permissions

            store = permissions.policies()
            try:
                report = run_scenario(deployment, SCENARIOS[name])
            finally:
                deployment.stop_running()
            assert store is not None
            exercised |= store.exercised
            print(
                f"  {name}: {'as expected' if report['as_expected'] else 'NOT as expected'}, "
                f"{len(store.exercised)} distinct calls allowed",
                file=sys.stderr,
            )
    assert store is not None, "no scenario given"
    total, left = unexercised(store, exercised)
    return summarize(list(scenarios), total, [asdict(g) for g in left])


def summarize(scenarios: list[str], total: int, grants: list[dict[str, str]]) -> dict[str, object]:
    """The report: totals, and each unexercised grant with its reason (re-derived, so reasons can be refined)."""
    for grant in grants:
        grant["reason"] = _reason(grant["role"], grant["action"], grant["resource"])
    return {
        "scenarios": scenarios,
        "granted": total,
        "exercised": total - len(grants),
        "unexercised": len(grants),
        "candidates_to_drop": sum(1 for g in grants if "candidate" in g["reason"]),
        "grants": grants,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.least_privilege", description=__doc__.split("\n")[0])
    parser.add_argument("--assembly", type=Path, default=Path("cdk.out.local"))
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="default: a path-covering set")
    parser.add_argument("--report", type=Path, default=Path("reports/least-privilege.json"))
    args = parser.parse_args(argv)
    result = measure(args.assembly, args.scenario or DEFAULT_SCENARIOS)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(result, indent=2))
    print(
        f"{result['granted']} granted (action, resource) pairs; {result['exercised']} exercised by "
        f"{len(args.scenario or DEFAULT_SCENARIOS)} scenarios; {result['unexercised']} not, of which "
        f"{result['candidates_to_drop']} candidates to drop"
    )
    by_reason: dict[str, list[dict[str, str]]] = {}
    for grant in result["grants"]:  # type: ignore[attr-defined]
        by_reason.setdefault(grant["reason"], []).append(grant)
    for reason, grants in sorted(by_reason.items(), key=lambda item: -len(item[1])):
        print(f"\n{len(grants):3} {reason}")
        for grant in grants:
            print(f"      {grant['role'].split('/')[-1]}: {grant['action']} on {grant['resource']}")
    print(f"\nreport: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
