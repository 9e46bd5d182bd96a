"""How the local runner turns an EventBridge event into a target's input, as EventBridge does."""

from __future__ import annotations

import json

import pytest

from localrun.emulator.aws_events import object_created_event
from localrun.emulator.local_eventbridge import target_input

EVENT = object_created_event(bucket="landing", key="landing/a.csv", size=10, etag="abc")


def test_no_input_settings_passes_the_whole_event() -> None:
    assert target_input({"Arn": "arn"}, EVENT) is EVENT


def test_constant_input_replaces_the_event() -> None:
    assert target_input({"Arn": "arn", "Input": json.dumps({"run": "nightly"})}, EVENT) == {"run": "nightly"}


def test_input_path_selects_part_of_the_event() -> None:
    assert target_input({"Arn": "arn", "InputPath": "$.detail.object"}, EVENT)["key"] == "landing/a.csv"


def test_input_transformer_fills_the_template() -> None:
    target = {
        "Arn": "arn",
        "InputTransformer": {
            "InputPathsMap": {"key": "$.detail.object.key", "size": "$.detail.object.size"},
            "InputTemplate": '{"object": "<key>", "bytes": <size>}',
        },
    }
    assert target_input(target, EVENT) == {"object": "landing/a.csv", "bytes": 10}


def test_unsupported_input_path_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"input path 'detail\[0\]': only \$ and \$.field.field"):
        target_input({"Arn": "arn", "InputPath": "detail[0]"}, EVENT)


def test_object_created_event_has_the_real_shape() -> None:
    # The fields the synthesized rule matches on and the pipeline reads (S3 User Guide, EventBridge).
    assert (EVENT["source"], EVENT["detail-type"]) == ("aws.s3", "Object Created")
    assert EVENT["detail"]["bucket"]["name"] == "landing" and EVENT["detail"]["object"]["key"] == "landing/a.csv"
    assert EVENT["resources"] == ["arn:aws:s3:::landing"] and EVENT["detail"]["reason"] == "PutObject"
