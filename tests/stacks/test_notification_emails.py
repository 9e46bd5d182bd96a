"""`notification_emails`: any addresses synthesize (cdk-nag included), each subscription with an encrypted DLQ."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

import app as cdk_app
from stacks.config.stages import config_for

EMAILS = ("data-team@example.com", "on.call+pipeline@ops.example.org")


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    """The dev stage with two addresses, synthesized (cdk-nag fails synth on any finding)."""
    config = replace(config_for("dev"), notification_emails=EMAILS)
    app, stacks = cdk_app.build_app(config=config, outdir=str(tmp_path_factory.mktemp("cdk-emails")))
    app.synth()
    yield Template.from_stack(stacks["storage"])


def only(resources: Mapping[str, Any]) -> tuple[str, Any]:
    assert len(resources) == 1, resources
    return next(iter(resources.items()))


def test_each_address_is_subscribed_with_the_dead_letter_queue(storage: Template) -> None:
    queue_id, _ = only(storage.find_resources("AWS::SQS::Queue"))
    topic_id, _ = only(storage.find_resources("AWS::SNS::Topic"))
    subscriptions = storage.find_resources("AWS::SNS::Subscription")
    assert sorted(s["Properties"]["Endpoint"] for s in subscriptions.values()) == sorted(EMAILS)
    for subscription in subscriptions.values():
        assert subscription["Properties"]["Protocol"] == "email"
        assert subscription["Properties"]["TopicArn"] == {"Ref": topic_id}
        assert subscription["Properties"]["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [queue_id, "Arn"]}}


def test_the_dead_letter_queue_is_encrypted_and_only_the_topic_sends_to_it(storage: Template) -> None:
    queue_id, queue = only(storage.find_resources("AWS::SQS::Queue"))
    key_id, _ = only(storage.find_resources("AWS::KMS::Key"))
    topic_id, _ = only(storage.find_resources("AWS::SNS::Topic"))
    assert queue["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    storage.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": queue_id}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "sqs:SendMessage",
                                "Effect": "Allow",
                                "Principal": {"Service": "sns.amazonaws.com"},
                                "Condition": {"ArnEquals": {"aws:SourceArn": {"Ref": topic_id}}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_sns_may_use_the_key_for_the_queue(storage: Template) -> None:
    _, key = only(storage.find_resources("AWS::KMS::Key"))
    statements = {s.get("Sid"): s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    assert statements["AllowSnsDeadLetterQueue"]["Principal"] == {"Service": "sns.amazonaws.com"}
    assert sorted(statements["AllowSnsDeadLetterQueue"]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]


def test_without_addresses_there_is_no_queue(synth: Any) -> None:
    dev = synth("dev").templates["storage"]
    assert dev.find_resources("AWS::SNS::Subscription") == {}
    assert dev.find_resources("AWS::SQS::Queue") == {}
    key = only(dev.find_resources("AWS::KMS::Key"))[1]
    assert "AllowSnsDeadLetterQueue" not in {s.get("Sid") for s in key["Properties"]["KeyPolicy"]["Statement"]}
