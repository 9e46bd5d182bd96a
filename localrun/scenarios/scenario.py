"""What a scenario is: its faults, what it does, and what the run must end as."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stacks import pipeline_contract as contract

if TYPE_CHECKING:
    from localrun.emulator.deployment import LocalDeployment

# expected_failed_stage of a run whose stage depends on timing: one unsuccessful notice, naming
# whichever stage the run stopped in (the scenario's check compares it with the run's history).
STOPPED_IN_ANY_STAGE = "*"
# expected_failed_stage of a run whose trigger was refused (InvalidTriggerEvent): the stage the failure
# notice names for it (lambda/failure_notice/handler.py, stage_of).
REJECTED_AT_TRIGGER = "trigger"


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str
    description: str
    faults: dict[str, Any] = field(default_factory=dict)
    act: Callable[[LocalDeployment], list[str]]
    # What the run must end as, for `make demo SCENARIO=...` to exit 0.
    expected_statuses: tuple[str, ...]
    expected_failed_stage: str | None = None
    expected_dead_letters: int = 0
    # Uploads pass the front door (stacks/pipeline/front_door.py): those that find a run in progress
    # start no pipeline execution, so how many start depends on timing. True: one or more, each
    # ending as expected_statuses[0].
    any_number_of_runs: bool = False
    # What must hold of the data and the lease once every run ended: problems found, or none.
    check: Callable[[LocalDeployment, dict[str, Any]], list[str]] | None = None

    @property
    def runs_spark(self) -> bool:
        """Whether its run gets to the Glue job and the job runs its Spark code: the CLI starts the local
        Spark ahead (a JVM, seconds of CPU) only then. Yes when a run is to succeed (a redrive after a fix
        too); not when no run starts, when the run is to stop before the transform stage, or when the job
        is to fail or time out without running. A wrong False only costs time: the job starts Spark itself
        when it needs it."""
        if "SUCCEEDED" in self.expected_statuses:
            return True
        before_the_job = (REJECTED_AT_TRIGGER, contract.ADMISSION, contract.CRAWL)
        if not self.expected_statuses or self.expected_failed_stage in before_the_job:
            return False
        return self.faults.get("job_outcome", "SUCCEEDED") in ("SUCCEEDED", "FAILED_AFTER_WRITING")
