"""The pipeline's contract with everything that consumes it: stages, stack outputs, run folders.

Pure Python (no CDK import) so the stacks, the local emulator, the operator tools (`why`, `cost`,
`graphs`) and the tests read one spelling. The DAG is deployed alone to MWAA and keeps its own copy
of the stage names (dags/glue_pipeline_support.py); tests/stacks/test_pipeline_contract.py pins the two.
Consumers find a deployment's resources through the stack outputs named here, never through
logical-ID prefixes or a function's environment variables.
"""

from __future__ import annotations

from typing import Final

# The stages in the order the pipeline runs them; each is its own state machine.
ADMISSION: Final = "admission"
CRAWL: Final = "crawl"
TRANSFORM: Final = "transform"
STAGES: Final[tuple[str, ...]] = (ADMISSION, CRAWL, TRANSFORM)
# The state machine that runs the stages in order under the single-flight lease.
PIPELINE: Final = "pipeline"
# EXPRESS machines (billed per request, not per transition): the uploads' front door, and the one
# that resumes the crawl stage when its crawler's crawl ends.
FRONT_DOOR: Final = "front_door"
CRAWL_CALLBACK: Final = "crawl_callback"
EXPRESS_MACHINES: Final[tuple[str, ...]] = (FRONT_DOOR, CRAWL_CALLBACK)
_OUTPUT_PREFIXES: Final = {PIPELINE: "Pipeline", FRONT_DOOR: "FrontDoor", CRAWL_CALLBACK: "CrawlCallback"}


def state_machine_output(name: str) -> str:
    """The Pipeline stack's output holding the ARN of `name` (a stage, PIPELINE or an EXPRESS machine)."""
    known = (*STAGES, PIPELINE, *EXPRESS_MACHINES)
    if name not in known:
        raise ValueError(f"state machine: {name!r} is not one of {', '.join(known)}")
    return f"{_OUTPUT_PREFIXES.get(name, f'{name.capitalize()}Stage')}StateMachineArn"


# Storage stack outputs.
LANDING_BUCKET_OUTPUT: Final = "LandingBucketName"
CURATED_BUCKET_OUTPUT: Final = "CuratedBucketName"
NOTIFICATION_TOPIC_OUTPUT: Final = "NotificationTopicArn"
# Pipeline stack outputs: where uploads wait, where runs admit them, where quarantine records go.
INCOMING_PREFIX_OUTPUT: Final = "IncomingPrefix"
LANDING_PREFIX_OUTPUT: Final = "LandingPrefix"
QUARANTINE_PREFIX_OUTPUT: Final = "QuarantinePrefix"  # files quarantined at admission, with reasons
DASHBOARD_OUTPUT: Final = "DashboardName"  # the stage's CloudWatch dashboard (`make why` links it)
# Orchestration stack outputs.
MWAA_ENVIRONMENT_OUTPUT: Final = "MwaaEnvironmentName"
DAG_BUCKET_OUTPUT: Final = "DagBucketName"

# Objects in the curated bucket, per run (`run=<run>/` folders or `run=<run>.json` records).
STAGING_PREFIX: Final = "staging/orders/"
REJECTED_PREFIX: Final = "rejected/orders/"
MANIFEST_PREFIX: Final = "manifests/"
QUARANTINE_RECORD_PREFIX: Final = "quarantine/orders/"
# The admission stage's Distributed Map writes its result files here (landing bucket).
ADMISSION_RESULTS_PREFIX: Final = "admission-results/"


def run_folder(prefix: str, run: str) -> str:
    """`<prefix>run=<run>/`: a run's folder under a prefix (landing, staging, rejected, quarantine)."""
    return f"{prefix}run={run}/"


def run_record(prefix: str, run: str) -> str:
    """`<prefix>run=<run>.json`: a run's one record under a prefix (manifests, quarantine records)."""
    return f"{prefix}run={run}.json"


# Metrics the Lambdas emit in CloudWatch embedded metric format, with one dimension: FunctionName
# (Lambda sets AWS_LAMBDA_FUNCTION_NAME), so the dashboard finds each deployment's own figures.
METRICS_NAMESPACE: Final = "GluePipeline"
FILES_ADMITTED_METRIC: Final = "FilesAdmitted"
FILES_QUARANTINED_METRIC: Final = "FilesQuarantined"
ROWS_PUBLISHED_METRIC: Final = "RowsPublished"
ROWS_REJECTED_METRIC: Final = "RowsRejected"
