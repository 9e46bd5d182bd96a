"""The moto patch registry: reversible, version-checked, one entry per moto attribute; and the
execution-name rules it adds, checked against the AWS StartExecution reference."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import moto
import pytest
from botocore.exceptions import ClientError
from moto.stepfunctions import exceptions as sfn_exceptions

from localrun.emulator import moto as moto_patches
from localrun.emulator.deployment import local_aws

ROLE = "arn:aws:iam::123456789012:role/r"


def _snapshot(runtime: moto_patches.LocalRuntime) -> list[tuple[Any, str, Any]]:
    return [(owner, attribute, vars(owner).get(attribute)) for owner, attribute, _ in runtime.patched]


def test_leaving_the_registry_restores_every_moto_attribute() -> None:
    with moto_patches.applied() as runtime:
        patched = list(runtime.patched)
        dicts = list(runtime.patched_dicts)
    assert len(patched) >= 10 and dicts
    before = _snapshot(runtime)
    dict_copies = [dict(mapping) for mapping in dicts]

    with moto_patches.applied() as again:
        during = _snapshot(again)
        assert [value for *_, value in during] != [value for *_, value in before]
        for (owner, attribute, original), (_, _, now) in zip(before, during, strict=True):
            assert now is not original, f"{owner.__name__}.{attribute} is not patched inside the registry"
        assert dicts[0] != dict_copies[0]

    for owner, attribute, original in before:  # after exit: the very same objects as before
        assert vars(owner).get(attribute) is original, f"{owner.__name__}.{attribute} left patched"
    assert [dict(mapping) for mapping in dicts] == dict_copies
    with pytest.raises(RuntimeError, match="not applied"):
        moto_patches.active()


def test_the_originals_recorded_are_moto_s_own() -> None:
    from moto.glue import models as glue_models
    from moto.stepfunctions.parser import models as parser_models

    as_dict, start = glue_models.FakeCrawler.as_dict, parser_models.StepFunctionsParserBackend.start_execution
    with moto_patches.applied():
        assert glue_models.FakeCrawler.as_dict is not as_dict
        assert parser_models.StepFunctionsParserBackend.start_execution is not start
    assert glue_models.FakeCrawler.as_dict is as_dict
    assert parser_models.StepFunctionsParserBackend.start_execution is start


def test_another_moto_version_is_a_clear_error_and_patches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.glue import models as glue_models

    as_dict = glue_models.FakeCrawler.as_dict
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    with pytest.raises(
        moto_patches.MotoVersionError, match=r"written for moto 5\.2\.5, this environment has moto 5\.3\.0"
    ):
        with moto_patches.applied():
            pass
    assert glue_models.FakeCrawler.as_dict is as_dict


def test_the_registry_is_not_entered_twice() -> None:
    with moto_patches.applied() as runtime:
        with pytest.raises(RuntimeError, match="already entered"):
            with moto_patches.applied():
                pass
        assert moto_patches.active() is runtime  # the outer one is untouched


def test_an_attribute_is_patched_by_one_entry_only() -> None:
    from moto.glue import models as glue_models

    with moto_patches.applied() as runtime:
        with pytest.raises(RuntimeError, match="FakeCrawler.as_dict is patched by two entries"):
            runtime.replace(glue_models.FakeCrawler, "as_dict", lambda crawler: {})


@pytest.mark.parametrize("name", ["a", "x" * 80, "3f1c-uuid_like-NAME", "run.1+2=3@x", "naïve"])
def test_names_aws_accepts(name: str) -> None:
    moto_patches.check_execution_name(name)


@pytest.mark.parametrize("name", ["x" * 81, ""])
def test_names_outside_1_to_80_characters_fail_validation(name: str) -> None:
    with pytest.raises(sfn_exceptions.ValidationException, match="Member must have length"):
        moto_patches.check_execution_name(name)


@pytest.mark.parametrize(
    "character", [" ", "\t", "\n", *"<>{}[]?*", *'"#%\\^|~`$&,;:/', "\x00", "\x1f", "\x7f", "\x9f"]
)
def test_names_with_characters_aws_forbids_are_invalid_name(character: str) -> None:
    with pytest.raises(sfn_exceptions.InvalidName, match="Invalid Name"):
        moto_patches.check_execution_name(f"run{character}1")


def _wait(sfn: Any, arn: str) -> dict[str, Any]:
    for _ in range(100):
        execution = sfn.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            return execution
        time.sleep(0.1)
    raise TimeoutError(arn)


@pytest.mark.slow  # executes state machines on moto
def test_start_execution_rejects_invalid_names_from_the_api_and_from_a_task() -> None:
    with local_aws():
        sfn = boto3.client("stepfunctions")
        child = sfn.create_state_machine(
            name="child",
            roleArn=ROLE,
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        )["stateMachineArn"]
        for name, code in (("x" * 81, "ValidationException"), ("white space", "InvalidName")):
            with pytest.raises(ClientError) as raised:
                sfn.start_execution(stateMachineArn=child, name=name)
            assert raised.value.response["Error"]["Code"] == code
        assert sfn.list_executions(stateMachineArn=child)["executions"] == []

        # The pipeline's way: a child named after the parent (`.sync:2`), 73 + 10 characters.
        task = {
            "Type": "Task",
            "End": True,
            "Resource": "arn:aws:states:::states:startExecution.sync:2",
            "Parameters": {
                "StateMachineArn": child,
                "Name.$": "States.Format('{}-transform', $$.Execution.Name)",
                "Input": {},
            },
        }
        parent = sfn.create_state_machine(
            name="parent", roleArn=ROLE, definition=json.dumps({"StartAt": "T", "States": {"T": task}})
        )["stateMachineArn"]
        long_name = f"{'e' * 36}_{'u' * 36}"  # as EventBridge names the executions it starts
        execution = _wait(sfn, sfn.start_execution(stateMachineArn=parent, name=long_name)["executionArn"])
        assert execution["status"] == "FAILED"
        assert execution["error"].startswith("StepFunctions.ValidationException")  # moto's spelling of it
        assert (
            "at 'name' failed to satisfy constraint: Member must have length less than or equal to 80"
            in (execution["cause"])
        )
        assert sfn.list_executions(stateMachineArn=child)["executions"] == []

        short = _wait(sfn, sfn.start_execution(stateMachineArn=parent, name="short")["executionArn"])
        assert short["status"] == "SUCCEEDED"  # the same task with a name AWS accepts


FIXES = [entry for entry in moto_patches.REGISTRY if not entry.stand_in]


@pytest.mark.slow  # executes state machines on moto
@pytest.mark.parametrize("entry", [e for e in FIXES if e.probe], ids=lambda e: e.name)
def test_each_fix_closes_the_gap_its_probe_reproduces(entry: moto_patches.MotoPatch) -> None:
    """With the fixes applied, the probe finds moto behaving as AWS does.

    (The Glue stand-ins are left out: they run what moto only records, and their probes check
    that moto itself runs nothing, which no patch changes.)
    """
    assert entry.probe is not None
    with moto_patches.applied(FIXES):
        assert entry.probe() is False
