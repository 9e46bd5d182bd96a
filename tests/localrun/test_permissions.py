"""The local IAM evaluator (localrun/emulator/permissions.py) and the limits (localrun/emulator/limits.py).

Policies here are small hand-written documents in the shapes CDK synthesizes; the assembly's own
policies are exercised by tests/scenarios/test_permission_mutations.py.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from localrun.emulator import limits, permissions
from localrun.emulator.deployment import local_aws
from localrun.emulator.permissions import PolicyStore, Principal

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/worker"
OTHER = f"arn:aws:iam::{ACCOUNT}:role/other"
BUCKET = "data-bucket"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k1"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:notices"
QUEUE_URL = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/dlq"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:dlq"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/lease"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
RULE = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/on-upload"


def _store(*identity: dict[str, Any]) -> PolicyStore:
    """ROLE with `identity` statements; the bucket, topic, queue and table encrypted with KEY, whose
    policy delegates to IAM (the account root) as CDK's default key policy does."""
    store = PolicyStore()
    store._add_identity(ROLE, {"Statement": list(identity)}, "test identity")
    secure = {"Bool": {"aws:SecureTransport": "false"}}
    store._add_resource_policy(
        BUCKET_ARN,
        {
            "Statement": [
                {
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": "s3:*",
                    "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/*"],
                    "Condition": secure,
                }
            ]
        },
        "bucket policy",
    )
    store._add_resource_policy(
        KEY,
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": "*",
                },
            ]
        },
        "key policy",
    )
    store._add_resource_policy(
        QUEUE,
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": QUEUE,
                    "Condition": {"ArnEquals": {"aws:SourceArn": RULE}},
                }
            ]
        },
        "queue policy",
    )
    store.keys.update({BUCKET_ARN: KEY, TOPIC: KEY, QUEUE: KEY, TABLE: KEY})
    return store


def _allow(actions: list[str], resources: list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def _denied(store: PolicyStore, principal: Principal, service: str, operation: str, params: dict[str, Any]) -> str:
    """The AccessDenied message for the call, or '' when it is allowed."""
    try:
        store.authorize(
            principal,
            permissions.requests_for(store, service, operation, params),
            service=service,
            operation=operation,
        )
    except ClientError as error:
        return f"{error.response['Error']['Code']}: {error.response['Error']['Message']}"
    return ""


WORKER = Principal(ROLE)
GET = ("s3", "GetObject", {"Bucket": BUCKET, "Key": "incoming/a.csv"})
PUT = ("s3", "PutObject", {"Bucket": BUCKET, "Key": "landing/a.csv"})


def test_an_object_read_needs_the_s3_grant_and_the_bucket_keys_decrypt() -> None:
    s3_only = _store(_allow(["s3:GetObject*"], [f"{BUCKET_ARN}/incoming/*"]))
    message = _denied(s3_only, WORKER, *GET)
    assert message == (
        "AccessDenied: User: arn:aws:sts::123456789012:assumed-role/worker/local is not authorized to perform: "
        f"kms:Decrypt on resource: {KEY} because no identity-based policy allows the kms:Decrypt action"
    )
    both = _store(_allow(["s3:GetObject*"], [f"{BUCKET_ARN}/incoming/*"]), _allow(["kms:Decrypt"], [KEY]))
    assert _denied(both, WORKER, *GET) == ""
    assert "s3:GetObject on resource: arn:aws:s3:::data-bucket/incoming/a.csv" in _denied(_store(), WORKER, *GET)


def test_a_write_needs_generate_data_key_and_a_copy_needs_both_key_actions() -> None:
    writer = _store(_allow(["s3:PutObject"], [f"{BUCKET_ARN}/landing/*"]), _allow(["kms:GenerateDataKey*"], [KEY]))
    assert _denied(writer, WORKER, *PUT) == ""
    copy = {"Bucket": BUCKET, "Key": "landing/a.csv", "CopySource": {"Bucket": BUCKET, "Key": "incoming/a.csv"}}
    without_read = _denied(writer, WORKER, "s3", "CopyObject", copy)
    assert "s3:GetObject on resource: arn:aws:s3:::data-bucket/incoming/a.csv" in without_read
    reader_writer = _store(
        _allow(["s3:GetObject*"], [f"{BUCKET_ARN}/incoming/*"]),
        _allow(["s3:PutObject"], [f"{BUCKET_ARN}/landing/*"]),
        _allow(["kms:GenerateDataKey*"], [KEY]),
    )
    assert "kms:Decrypt" in _denied(reader_writer, WORKER, "s3", "CopyObject", copy)


def test_grants_are_scoped_to_their_prefix_and_actions_are_case_insensitive() -> None:
    store = _store(_allow(["s3:putObject"], [f"{BUCKET_ARN}/landing/*"]), _allow(["kms:GenerateDataKey*"], [KEY]))
    assert _denied(store, WORKER, *PUT) == ""
    outside = ("s3", "PutObject", {"Bucket": BUCKET, "Key": "quarantine/a.csv"})
    assert "s3:PutObject on resource: arn:aws:s3:::data-bucket/quarantine/a.csv" in _denied(store, WORKER, *outside)
    assert "because no identity-based policy" in _denied(store, Principal(OTHER), *PUT)


def test_an_explicit_deny_wins_and_a_condition_that_does_not_hold_leaves_a_statement_out() -> None:
    # The bucket's TLS-only Deny does not apply to SDK calls (HTTPS); an identity Deny does.
    grants = [_allow(["s3:PutObject"], [f"{BUCKET_ARN}/*"]), _allow(["kms:GenerateDataKey*"], [KEY])]
    assert _denied(_store(*grants), WORKER, *PUT) == ""
    deny = {"Effect": "Deny", "Action": "s3:PutObject", "Resource": f"{BUCKET_ARN}/landing/*"}
    assert "explicit deny in an identity-based policy" in _denied(_store(*grants, deny), WORKER, *PUT)


def test_a_listing_is_checked_against_the_prefix_condition() -> None:
    listing = _allow(["s3:ListBucket"], [BUCKET_ARN], Condition={"StringLike": {"s3:prefix": ["incoming/*"]}})
    store = _store(listing)
    assert _denied(store, WORKER, "s3", "ListObjectsV2", {"Bucket": BUCKET, "Prefix": "incoming/x/"}) == ""
    assert "s3:ListBucket" in _denied(store, WORKER, "s3", "ListObjectsV2", {"Bucket": BUCKET, "Prefix": "landing/"})


def test_encrypted_topic_queue_and_table_need_their_key_actions() -> None:
    publish = ("sns", "Publish", {"TopicArn": TOPIC, "Message": "m"})
    topic_only = _store(_allow(["sns:Publish"], [TOPIC]))
    assert _denied(topic_only, WORKER, *publish).startswith("KMSAccessDenied: ")
    assert "kms:GenerateDataKey on resource" in _denied(topic_only, WORKER, *publish)
    with_key = _store(_allow(["sns:Publish"], [TOPIC]), _allow(["kms:Decrypt", "kms:GenerateDataKey*"], [KEY]))
    assert _denied(with_key, WORKER, *publish) == ""

    put_item = ("dynamodb", "PutItem", {"TableName": "lease", "Item": {}})
    table_only = _store(_allow(["dynamodb:PutItem"], [TABLE]))
    assert "kms:Decrypt on resource" in _denied(table_only, WORKER, *put_item)
    assert (
        _denied(_store(_allow(["dynamodb:PutItem"], [TABLE]), _allow(["kms:Decrypt"], [KEY])), WORKER, *put_item) == ""
    )


def test_eventbridge_may_send_to_the_dead_letter_queue_only_for_the_rules_the_queue_policy_names() -> None:
    send = ("sqs", "SendMessage", {"QueueUrl": QUEUE_URL, "MessageBody": "{}"})
    store = _store()
    assert _denied(store, Principal("events.amazonaws.com", source_arn=RULE), *send) == ""
    other_rule = Principal("events.amazonaws.com", source_arn=RULE.replace("on-upload", "other"))
    assert _denied(store, other_rule, *send).startswith("AccessDenied: User: events.amazonaws.com is not authorized")
    assert "sqs:SendMessage" in _denied(store, WORKER, *send)  # a role with no grant


def test_a_key_policy_that_does_not_delegate_to_iam_refuses_even_a_granted_role() -> None:
    store = _store(_allow(["s3:GetObject"], [f"{BUCKET_ARN}/*"]), _allow(["kms:Decrypt"], [KEY]))
    store.resource_policies[KEY] = store.resource_policies[KEY][1:]  # drop the account-root statement
    assert "because no resource-based policy allows the kms:Decrypt action" in _denied(store, WORKER, *GET)


def test_unknown_condition_operators_are_refused_not_guessed() -> None:
    store = _store(_allow(["s3:GetObject"], ["*"], Condition={"DateGreaterThan": {"aws:CurrentTime": "2020"}}))
    with pytest.raises(permissions.PermissionModelError, match="DateGreaterThan"):
        _denied(store, WORKER, *GET)


# -- enforcement inside moto: a state machine's calls run as its role -----------------------------
def _run(sfn: Any, arn: str, name: str) -> dict[str, Any]:
    execution = sfn.start_execution(stateMachineArn=arn, name=name, input="{}")["executionArn"]
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return dict(described)


def test_a_state_machine_task_runs_as_the_machines_role_and_fails_as_aws_fails_it() -> None:
    definition = {
        "StartAt": "Write",
        "States": {
            "Write": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
                "Parameters": {"Bucket": BUCKET, "Key": "landing/a.csv", "Body": "x"},
                "End": True,
            }
        },
    }
    with local_aws():
        s3, sfn = boto3.client("s3"), boto3.client("stepfunctions")
        s3.create_bucket(Bucket=BUCKET)
        permissions.install(_store(_allow(["s3:PutObject"], [f"{BUCKET_ARN}/landing/*"])))
        arn = sfn.create_state_machine(name="writer", definition=json.dumps(definition), roleArn=ROLE)[
            "stateMachineArn"
        ]
        failed = _run(sfn, arn, "without-key")
        assert failed["status"] == "FAILED"
        assert "worker/local is not authorized to perform: kms:GenerateDataKey" in failed["cause"]
        assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)

        store = permissions.install(
            _store(_allow(["s3:PutObject"], [f"{BUCKET_ARN}/landing/*"]), _allow(["kms:GenerateDataKey"], [KEY]))
        )
        assert _run(sfn, arn, "with-key")["status"] == "SUCCEEDED"
        assert (ROLE, "kms:GenerateDataKey", KEY) in store.exercised
        # The operator (no principal) is not evaluated: set-up and uploads run as the account.
        s3.put_object(Bucket=BUCKET, Key="incoming/upload.csv", Body=b"x")


def test_leaving_the_registry_stops_enforcing() -> None:
    with local_aws():
        permissions.install(_store())
        assert permissions.policies() is not None
    assert permissions.policies() is None


# -- limits ------------------------------------------------------------------------------------
def test_s3_refuses_keys_longer_than_1024_bytes_whoever_writes() -> None:
    with local_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="k" * 1024, Body=b"x")  # at the limit
        with pytest.raises(ClientError, match="KeyTooLongError"):
            s3.put_object(Bucket=BUCKET, Key="é" * 513, Body=b"x")  # 1,026 bytes in UTF-8
        with pytest.raises(ClientError, match="KeyTooLongError"):
            s3.copy_object(Bucket=BUCKET, Key="c" * 1025, CopySource={"Bucket": BUCKET, "Key": "k" * 1024})


def test_lambda_payloads_are_held_to_6_mb() -> None:
    with pytest.raises(ClientError, match="RequestEntityTooLargeException"):
        limits.check_lambda_request("f", {"body": "x" * limits.LAMBDA_MAX_REQUEST_BYTES})
    limits.check_lambda_request("f", {"body": "x" * 1000})
    error = limits.lambda_response_error({"body": "x" * limits.LAMBDA_MAX_RESPONSE_BYTES})
    assert error is not None and error["errorType"] == "Function.ResponseSizeTooLarge"
    assert limits.lambda_response_error({"ok": True}) is None


def test_moto_already_fails_a_state_output_over_256_kib() -> None:
    """Left to moto (quotas.MAX_STATE_SIZE_UTF8_BYTES): a Pass state whose result is over 256 KiB."""
    big = "x" * (256 * 1024)
    definition = {"StartAt": "Big", "States": {"Big": {"Type": "Pass", "Result": {"b": big}, "End": True}}}
    with local_aws():
        sfn = boto3.client("stepfunctions")
        arn = sfn.create_state_machine(name="big", definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
        failed = _run(sfn, arn, "big")
    assert failed["status"] == "FAILED" and failed["error"] == "States.DataLimitExceeded"
