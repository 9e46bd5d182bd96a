"""The scenarios by name: `python -m localrun list` prints them, `make demo SCENARIO=<name>` runs one."""

from __future__ import annotations

from localrun.scenarios.actions import (
    arrival_at_release,
    arrival_during_run,
    burst,
    check_burst,
    check_lease_expires_with_failed_run,
    check_mixed_drop,
    check_redriven_once,
    check_timed_out_notice,
    malformed_event,
    mixed_drop,
    pipeline_timed_out,
    put,
    put_outside_prefix,
    redrive_after_fix,
    same_object_twice,
    stale_lease,
    target_unavailable,
    thousand_files,
    upload,
)
from localrun.scenarios.scenario import REJECTED_AT_TRIGGER, STOPPED_IN_ANY_STAGE, Scenario
from stacks import pipeline_contract as contract

VOLUME_SCENARIOS = (
    Scenario(
        name="burst_50",
        description="50 uploads at once (the objects land, then their events arrive): one execution takes "
        "the lease and admits them all in one round, the others coalesce; no failure notice, every "
        "file's rows transformed exactly once.",
        act=lambda deployment: burst(deployment, 50),
        expected_statuses=("SUCCEEDED",) * 50,
        any_number_of_runs=True,
        check=check_burst(50, max_rounds=1),
    ),
    Scenario(
        name="arrival_during_run",
        description="A file lands while a run is in its crawl stage: its own execution coalesces and the "
        "running one admits it in a second round.",
        act=arrival_during_run,
        expected_statuses=("SUCCEEDED", "SUCCEEDED"),
        any_number_of_runs=True,
        check=check_burst(2, max_rounds=2),
    ),
    Scenario(
        name="arrival_at_release",
        description="A file lands as the lease is being released: it is not stranded (the holder looks "
        "again after releasing, or the file's own execution takes the lease).",
        act=arrival_at_release,
        expected_statuses=("SUCCEEDED", "SUCCEEDED"),
        any_number_of_runs=True,
        check=check_burst(2, max_rounds=2),
    ),
    Scenario(
        name="stale_lease",
        description="The lease is held by an execution that stopped without releasing it: the next run "
        "takes it over (the lease expires with its holder).",
        act=stale_lease,
        expected_statuses=("SUCCEEDED",),
        check=check_burst(1, max_rounds=1),
    ),
    Scenario(
        name="transform_fails_lease_expires",
        description="The Glue job fails: one failure notice, the admitted file kept in its run folder "
        "(nothing in limbo), the lease expired with the failed run (the next upload takes it over).",
        faults={"job_outcome": "FAILED"},
        act=lambda deployment: upload(deployment, 1),
        expected_statuses=("FAILED",),
        expected_failed_stage=contract.TRANSFORM,
        check=check_lease_expires_with_failed_run,
    ),
    Scenario(
        name="mixed_drop",
        description="Good files with odd ones (reordered header, latin-1, empty, .json, a folder marker): "
        "each admitted or quarantined with its reason and a sidecar.",
        act=mixed_drop,
        expected_statuses=("SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "SUCCEEDED"),
        any_number_of_runs=True,
        check=check_mixed_drop,
    ),
    Scenario(
        name="thousand_files",
        description="1,000 files waiting when the schedule fires: one run admits them in batches.",
        act=thousand_files,
        expected_statuses=("SUCCEEDED",),
        check=check_burst(1000, max_rounds=1),
    ),
)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="happy_path",
            description="A CSV lands under the incoming prefix; admission, crawl, transform, notify success.",
            act=put("orders.csv"),
            expected_statuses=("SUCCEEDED",),
        ),
        Scenario(
            name="crawler_already_running",
            description="StartCrawler is refused once (a crawl is running); "
            "the Retry on Glue.CrawlerRunningException waits and the run succeeds.",
            faults={"crawler_busy_starts": 1},
            act=put("orders.csv"),
            expected_statuses=("SUCCEEDED",),
        ),
        Scenario(
            name="crawl_failed",
            description="The crawl ends with LastCrawl.Status FAILED.",
            faults={"crawl_outcome": "FAILED"},
            act=put("orders.csv"),
            expected_statuses=("FAILED",),
            expected_failed_stage=contract.CRAWL,
        ),
        Scenario(
            name="crawl_never_finishes",
            description="The crawler never finishes: the bounded poll loop gives up.",
            faults={"crawl_outcome": "NEVER_ENDS"},
            act=put("orders.csv"),
            expected_statuses=("FAILED",),
            expected_failed_stage=contract.CRAWL,
        ),
        Scenario(
            name="job_failed",
            description="The Glue job run ends FAILED.",
            faults={"job_outcome": "FAILED"},
            act=put("orders.csv"),
            expected_statuses=("FAILED",),
            expected_failed_stage=contract.TRANSFORM,
        ),
        Scenario(
            name="job_timeout",
            description="The Glue job run ends TIMEOUT.",
            faults={"job_outcome": "TIMEOUT"},
            act=put("orders.csv"),
            expected_statuses=("FAILED",),
            expected_failed_stage=contract.TRANSFORM,
        ),
        Scenario(
            name="job_concurrency_exceeded",
            description="StartJobRun is refused twice with "
            "ConcurrentRunsExceededException; the Retry waits and the run succeeds.",
            faults={"job_busy_starts": 2},
            act=put("orders.csv"),
            expected_statuses=("SUCCEEDED",),
        ),
        Scenario(
            name="empty_output",
            description="Every row of the CSV is invalid: the job writes no rows; the check fails the run.",
            act=put("orders_all_invalid.csv"),
            expected_statuses=("FAILED",),
            expected_failed_stage=contract.TRANSFORM,
        ),
        Scenario(
            name="nothing_new",
            description="A header-only CSV: nothing new to process; the run succeeds and its notice says so.",
            act=put("orders_empty.csv"),
            expected_statuses=("SUCCEEDED",),
        ),
        Scenario(
            name="too_many_rejected",
            description="Most rows are invalid: the rejected share is over the threshold.",
            act=put("orders_mostly_bad.csv"),
            expected_statuses=("FAILED",),
            expected_failed_stage=contract.TRANSFORM,
        ),
        Scenario(
            name="outside_prefix",
            description="An object outside the incoming prefix starts nothing.",
            act=put_outside_prefix,
            expected_statuses=(),
        ),
        Scenario(
            name="malformed_event",
            description="An event without detail.object.key: no rule match; started by "
            "hand it fails InvalidTriggerEvent and is notified.",
            act=malformed_event,
            expected_statuses=("FAILED",),
            expected_failed_stage=REJECTED_AT_TRIGGER,
        ),
        Scenario(
            name="target_unavailable",
            description="The pipeline state machine cannot be started: the event "
            "goes to the rule's dead-letter queue, with the error, instead of being lost.",
            act=target_unavailable,
            expected_statuses=(),
            expected_dead_letters=1,
        ),
        Scenario(
            name="duplicate_event",
            description="The same object's event arrives twice: two front-door executions, both succeed; "
            "the second ends at the door (or its pipeline coalesces), the file is processed once.",
            act=same_object_twice,
            expected_statuses=("SUCCEEDED", "SUCCEEDED"),
            any_number_of_runs=True,
        ),
        Scenario(
            name="redrive_after_fix",
            description="The Glue job fails, its notice arrives, the fault is removed and the execution is "
            "redriven: the transform stage runs again (admission and crawl do not), the run publishes "
            "once, the lease ends released.",
            faults={"job_outcome": "FAILED"},
            act=redrive_after_fix,
            expected_statuses=("SUCCEEDED",),
            expected_failed_stage=contract.TRANSFORM,
            check=check_redriven_once,
        ),
        Scenario(
            name="pipeline_timed_out",
            description="The run hits the pipeline's own timeout (lowered to 4 s; the crawl keeps running): "
            "one TIMED_OUT notice naming the stage it stopped in and the redrive command.",
            faults={"crawl_seconds": 1000},
            act=pipeline_timed_out,
            expected_statuses=("TIMED_OUT",),
            expected_failed_stage=STOPPED_IN_ANY_STAGE,
            check=check_timed_out_notice,
        ),
        Scenario(
            name="job_failed_after_writing",
            description="The Glue job writes its staged output and manifest, then fails: nothing is published.",
            faults={"job_outcome": "FAILED_AFTER_WRITING"},
            act=put("orders.csv"),
            expected_statuses=("FAILED",),
            expected_failed_stage=contract.TRANSFORM,
        ),
        *VOLUME_SCENARIOS,
    )
}
