"""The Storage stack as synthesized: encrypted, versioned, private, TLS-only, and kept in prod."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from aws_cdk.assertions import Template

from tests.helpers import as_list, exported_value, one_resource, render

if TYPE_CHECKING:
    from tests.conftest import Synthesized

# Changing one of these logical IDs makes CloudFormation REPLACE the resource: a new, empty bucket
# (the old one retained or deleted with its data), a new KMS key (data encrypted with the old one
# unreadable once it is deleted), a new topic (subscriptions lost). Renaming a construct or moving
# it to another scope changes its logical ID. If this test fails, do not update the IDs here
# unless the replacement is intended and the data has been migrated.
STATEFUL_LOGICAL_IDS = {
    "AWS::KMS::Key": {"DataKey17AFBB84"},
    "AWS::S3::Bucket": {"AccessLogsBucket83982689", "LandingBucket23FE90FB", "CuratedBucket6A59C97E"},
    "AWS::Glue::Database": {"DatabaseB269D8BB"},
    "AWS::SNS::Topic": {"NotificationTopicEB7A0DF1"},
}


@pytest.fixture(scope="module")
def storage(dev: Synthesized) -> Template:
    return dev.templates["storage"]


def resources(template: Template, type_: str) -> dict[str, dict[str, Any]]:
    return {lid: r["Properties"] for lid, r in template.find_resources(type_).items()}


def key_arn(storage: Template) -> dict[str, Any]:
    return {"Fn::GetAtt": [one_resource(storage, "AWS::KMS::Key")[0], "Arn"]}


def access_log_bucket_id(storage: Template) -> str:
    """The bucket the others deliver their server access logs to."""
    destinations = {
        json.dumps(b["LoggingConfiguration"]["DestinationBucketName"])
        for b in resources(storage, "AWS::S3::Bucket").values()
        if "LoggingConfiguration" in b
    }
    assert len(destinations) == 1, destinations
    ref = json.loads(destinations.pop())
    return str(ref["Ref"])


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_stateful_logical_ids_are_pinned(synth: Callable[[str], Synthesized], stage: str) -> None:
    storage = synth(stage).templates["storage"]
    for type_, logical_ids in STATEFUL_LOGICAL_IDS.items():
        assert set(storage.find_resources(type_)) == logical_ids, f"{type_}: replacing these replaces data"


def test_key_rotates(storage: Template) -> None:
    [key] = resources(storage, "AWS::KMS::Key").values()
    assert key["EnableKeyRotation"] is True


def test_every_bucket_is_versioned_private_and_owner_enforced(storage: Template) -> None:
    buckets = resources(storage, "AWS::S3::Bucket")
    assert len(buckets) == 3
    for logical_id, bucket in buckets.items():
        assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id
        assert bucket["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}, logical_id


def test_data_buckets_use_the_key_and_log_access_the_log_bucket_uses_sse_s3(storage: Template) -> None:
    buckets = resources(storage, "AWS::S3::Bucket")
    logs_id = access_log_bucket_id(storage)
    for logical_id, bucket in buckets.items():
        [rule] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        if logical_id == logs_id:
            # S3 server access logging delivers only to SSE-S3 buckets.
            assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
            assert "LoggingConfiguration" not in bucket
        else:
            assert rule["ServerSideEncryptionByDefault"] == {
                "SSEAlgorithm": "aws:kms",
                "KMSMasterKeyID": key_arn(storage),
            }, logical_id
            assert rule["BucketKeyEnabled"] is True
            assert bucket["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs_id}


def denies_insecure_transport(statement: dict[str, Any], action: str) -> bool:
    return (
        statement["Effect"] == "Deny"
        and statement.get("Principal") in ("*", {"AWS": "*"})
        and action in as_list(statement["Action"])
        and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    )


def test_every_bucket_policy_denies_requests_without_tls(storage: Template) -> None:
    policies = resources(storage, "AWS::S3::BucketPolicy").values()
    for logical_id in resources(storage, "AWS::S3::Bucket"):
        [policy] = [p for p in policies if p["Bucket"] == {"Ref": logical_id}]
        denials = [s for s in policy["PolicyDocument"]["Statement"] if denies_insecure_transport(s, "s3:*")]
        assert len(denials) == 1, logical_id
        covered = {render(resource) for resource in as_list(denials[0]["Resource"])}
        arn = f"${{GetAtt:{logical_id}.Arn}}"
        assert covered == {arn, f"{arn}/*"}, "the bucket and every object in it"


def test_the_bucket_the_pipeline_watches_sends_events_to_eventbridge(dev: Synthesized, storage: Template) -> None:
    [pattern] = [
        r["EventPattern"]
        for r in resources(dev.templates["pipeline"], "AWS::Events::Rule").values()
        if "EventPattern" in r and r["EventPattern"].get("source") == ["aws.s3"]
    ]
    watched = exported_value(dev.templates.values(), pattern["detail"]["bucket"]["name"][0])
    notifications = resources(storage, "Custom::S3BucketNotifications")
    assert [n["BucketName"] for n in notifications.values()] == [watched]  # that bucket, and only that one
    [config] = notifications.values()
    assert "EventBridgeConfiguration" in config["NotificationConfiguration"]


def test_topic_is_encrypted_with_the_key_and_accepts_tls_only(storage: Template) -> None:
    [(topic_id, topic)] = resources(storage, "AWS::SNS::Topic").items()
    assert topic["KmsMasterKeyId"] == key_arn(storage)
    [policy] = [p for p in resources(storage, "AWS::SNS::TopicPolicy").values() if {"Ref": topic_id} in p["Topics"]]
    assert any(denies_insecure_transport(s, "sns:Publish") for s in policy["PolicyDocument"]["Statement"])


def test_alarms_may_publish_to_the_topic(storage: Template) -> None:
    [(topic_id, _)] = resources(storage, "AWS::SNS::Topic").items()
    [policy] = [p for p in resources(storage, "AWS::SNS::TopicPolicy").values() if {"Ref": topic_id} in p["Topics"]]
    assert any(
        s["Effect"] == "Allow"
        and "sns:Publish" in as_list(s["Action"])
        and "cloudwatch.amazonaws.com" in as_list(s.get("Principal", {}).get("Service", []))
        for s in policy["PolicyDocument"]["Statement"]
    )


def test_key_lets_the_services_that_encrypt_for_the_pipeline_use_it(storage: Template) -> None:
    [key] = resources(storage, "AWS::KMS::Key").values()
    principals: set[str] = set()
    for statement in key["KeyPolicy"]["Statement"]:
        actions = set(as_list(statement["Action"]))
        # kms:GenerateDataKey* (what AWS documents for CloudWatch alarms) includes GenerateDataKey.
        generates = "kms:GenerateDataKey" in actions or "kms:GenerateDataKey*" in actions
        if statement["Effect"] == "Allow" and "kms:Decrypt" in actions and generates:
            services = statement.get("Principal", {}).get("Service", [])
            principals |= {render(service) for service in as_list(services)}
    # Log groups, the dead-letter queue (EventBridge) and alarms publishing to the encrypted topic.
    assert {"logs.${Ref:AWS::Region}.amazonaws.com", "events.amazonaws.com", "cloudwatch.amazonaws.com"} <= principals


@pytest.mark.parametrize(("stage", "protected"), [("dev", False), ("prod", True)])
def test_only_prod_keeps_data_when_the_stack_goes(
    synth: Callable[[str], Synthesized], stage: str, protected: bool
) -> None:
    synthesized = synth(stage)
    storage = synthesized.templates["storage"].to_json()["Resources"]
    policy = "Retain" if protected else "Delete"
    for type_ in ("AWS::S3::Bucket", "AWS::KMS::Key"):
        for logical_id, resource in storage.items():
            if resource["Type"] == type_:
                assert (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")) == (policy, policy), (
                    logical_id
                )
    # Auto-delete empties buckets when the stack is deleted: never where data is kept.
    auto_delete = [r for r in storage.values() if r["Type"] == "Custom::S3AutoDeleteObjects"]
    assert bool(auto_delete) is not protected
    # Termination protection, as the CLI reads it from the cloud assembly.
    stack = synthesized.stacks["storage"]
    manifest = json.loads((synthesized.outdir / "manifest.json").read_text())
    assert manifest["artifacts"][stack.artifact_id]["properties"].get("terminationProtection", False) is protected
