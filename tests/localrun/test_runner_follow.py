"""The demo's state lines (localrun.runner._follow): in the order the states happened, across executions."""

from __future__ import annotations

import datetime
from typing import Any

from localrun.runner import _follow
from stacks import pipeline_contract as contract

_T0 = datetime.datetime(2026, 12, 5, tzinfo=datetime.UTC)


def _entered(name: str, second: float) -> dict[str, Any]:
    return {
        "type": "TaskStateEntered",
        "timestamp": _T0 + datetime.timedelta(seconds=second),
        "stateEnteredEventDetails": {"name": name},
    }


def _succeeded(second: float) -> dict[str, Any]:
    return {"type": "ExecutionSucceeded", "timestamp": _T0 + datetime.timedelta(seconds=second)}


class _Deployment:
    """Two polls' worth of history: the stage ends and the pipeline goes on between them, so the second
    poll reads the pipeline's later states first (it reads the pipeline, then the stages)."""

    def __init__(self) -> None:
        self.polls = 0
        pipeline_first = [_entered("Run transform stage", 1)]
        pipeline_then = [*pipeline_first, _entered("Notify round", 5), _succeeded(6)]
        stage_first = [_entered("Run transform job", 2)]
        stage_then = [*stage_first, _entered("Check results", 3), _succeeded(4)]
        self._histories = {"pipeline-arn": (pipeline_first, pipeline_then), "stage-arn": (stage_first, stage_then)}
        self.clients = {"stepfunctions": self}

    def executions(self, state_machine: str) -> list[dict[str, str]]:
        return [{"executionArn": "stage-arn"}] if state_machine == contract.TRANSFORM else []

    def history(self, arn: str) -> list[dict[str, Any]]:
        if arn == "pipeline-arn":  # read first in each poll
            self.polls += 1
        return self._histories[arn][min(self.polls, 2) - 1]

    def describe_execution(self, *, executionArn: str) -> dict[str, str]:  # noqa: N803 (boto3's name)
        return {"status": "RUNNING" if self.polls < 2 else "SUCCEEDED"}


def test_a_stage_that_ends_within_one_poll_prints_before_the_pipeline_states_after_it() -> None:
    lines: list[str] = []
    _follow(_Deployment(), ["pipeline-arn"], lines.append, timeout_s=10)  # type: ignore[arg-type]
    assert lines == [
        " pipeline ▸ Run transform stage",
        "transform ▸ Run transform job",
        "transform ▸ Check results",
        "transform ✓ SUCCEEDED",
        " pipeline ▸ Notify round",
        " pipeline ✓ SUCCEEDED",
    ]
