"""What Glue does locally: moto keeps crawler and job-run records but runs neither.

`LocalGlue` drives moto's own records so the state machines see what they would see on AWS:
a crawl that runs for `crawl_seconds` and then ends, sending its "Glue Crawler State Change"
event to the local EventBridge (unless the event is lost: `drop_crawl_events`), a job run that ends after a
number of GetJobRun polls and then has written curated rows, rejected rows and a manifest. The
outcome of each is a fault knob (`GlueFaults`). Errors come from moto's own exception classes,
so they reach the state machine exactly as moto (and AWS) report them.

A run that succeeds runs the job's own code: `glue.run.run_job`, the function glue/job.py calls
on Glue, on a local SparkSession (one per process, started at the first job run, or earlier in
the background by `start_spark_in_background` as the demo does: local[1], UI off, small memory).
The objects the run folder's admission records name (as glue/job.py reads them) are copied out
of moto S3 into a temporary folder under their keys, Spark reads and writes there, and what it
wrote is put back into moto S3 at the job's s3:// paths, as the job would have written it. The
verdict a local run shows is the one the deployed job gives on the same files.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from moto.glue import models as glue_models
from moto.s3.models import FakeDeleteMarker, s3_backends

from localrun.emulator import local_logs, permissions
from localrun.emulator.aws_events import aws_event
from stacks.common.paths import REPO_ROOT

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CRAWL_OUTCOMES = ("SUCCEEDED", "FAILED", "NEVER_ENDS")
# FAILED_AFTER_WRITING: the job writes its staged output and manifest, then fails (e.g. a lost
# executor at commit): nothing may be published, and the next run must not see it twice.
JOB_OUTCOMES = ("SUCCEEDED", "FAILED", "TIMEOUT", "FAILED_AFTER_WRITING")


@dataclass
class GlueFaults:
    """Fault knobs; the defaults are a healthy crawler and job."""

    crawler_busy_starts: int = 0  # StartCrawler refused (a crawl already running) this many times
    crawl_outcome: str = "SUCCEEDED"
    crawl_seconds: float = 0.3  # how long a crawl runs (it ends on its own, then sends its end event)
    # EventBridge delivers AWS service events best effort: True loses the crawls' end events.
    drop_crawl_events: bool = False
    job_busy_starts: int = 0  # StartJobRun refused with ConcurrentRunsExceededException this many times
    job_outcome: str = "SUCCEEDED"

    def __post_init__(self) -> None:
        if self.crawl_outcome not in CRAWL_OUTCOMES:
            raise ValueError(f"crawl_outcome = {self.crawl_outcome!r}: must be one of {', '.join(CRAWL_OUTCOMES)}")
        if self.job_outcome not in JOB_OUTCOMES:
            raise ValueError(f"job_outcome = {self.job_outcome!r}: must be one of {', '.join(JOB_OUTCOMES)}")


def crawler_state_change_event(
    *, crawler_name: str, account_id: str, succeeded: bool, error: str | None, region: str = "us-east-1"
) -> dict[str, Any]:
    """A crawl's end as EventBridge delivers it ("Glue Crawler State Change", EventBridge user guide)."""
    state = "Succeeded" if succeeded else "Failed"
    # The console link to the crawl's log stream, as Glue sends it in both events.
    log_link = (
        f"https://console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logEventViewer:group=/aws-glue/crawlers;stream={crawler_name}"
    )
    detail: dict[str, Any] = {
        "crawlerName": crawler_name,
        "state": state,
        "message": f"Crawler {state}",
        "cloudWatchLogLink": log_link,
    }
    if error:
        detail["errorMessage"] = error
    return aws_event(
        source="aws.glue",
        detail_type="Glue Crawler State Change",
        detail={**detail, "accountId": account_id},
        account=account_id,
        region=region,
    )


def job_state_change_event(
    *, job_name: str, run_id: str, state: str, message: str | None, account_id: str, region: str = "us-east-1"
) -> dict[str, Any]:
    """A job run's end as EventBridge delivers it ("Glue Job State Change", EventBridge user guide)."""
    failed = state in ("FAILED", "TIMEOUT", "ERROR")
    detail = {
        "jobName": job_name,
        "severity": "ERROR" if failed else "INFO",
        "state": state,
        "jobRunId": run_id,
        "message": message or f"Job run {state.lower()}",
    }
    return aws_event(
        source="aws.glue", detail_type="Glue Job State Change", detail=detail, account=account_id, region=region
    )


def _parse_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise ValueError(f"job argument {url!r}: must be an s3:// URL")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    return bucket, prefix


class LocalGlue:
    """The Glue stand-in's state; `faults` can be changed between runs.

    It patches nothing itself: the `glue-crawler-runs` and `glue-job-runs` entries of
    localrun/emulator/moto/ route moto's crawler and job-run calls to the hooks below, and only
    while the registry is applied.
    """

    def __init__(self, *, account_id: str, partition: str = "aws") -> None:
        self.faults = GlueFaults()
        self._account_id = account_id
        self._partition = partition
        self._lock = threading.RLock()
        self._crawl_started: dict[int, float] = {}
        # Where a crawl's "Glue Crawler State Change" event goes (the local EventBridge), and when
        # each crawl ended (what the scenarios measure the crawl stage's reaction against).
        self.on_crawler_event: Callable[[dict[str, Any]], object] | None = None
        self.on_job_event: Callable[[dict[str, Any]], object] | None = None  # each job run's end
        self.crawls_ended: list[datetime] = []

    def reset(self) -> GlueFaults:
        """A fresh deployment: healthy faults (moto's own records are new too)."""
        with self._lock:
            self.faults = GlueFaults()
            self._crawl_started.clear()
            self.crawls_ended.clear()
            self.on_crawler_event = None
            self.on_job_event = None
            return self.faults

    # -- crawler -------------------------------------------------------------------------
    def start_crawler(self, original: Callable[[Any], None], crawler: Any) -> None:
        """StartCrawler, refused while `crawler_busy_starts` lasts (someone else's crawl is running)."""
        with self._lock:
            if self.faults.crawler_busy_starts > 0:
                self.faults.crawler_busy_starts -= 1
                if not (crawler.crawls and crawler.crawls[-1].status == "RUNNING"):
                    crawler.crawls.append(glue_models.FakeCrawl(crawler.name))  # someone else's crawl
                earlier = crawler.crawls[-1]
                try:
                    return original(crawler)  # moto raises CrawlerRunningException
                finally:
                    if self.faults.crawler_busy_starts == 0:
                        earlier.status = "COMPLETED"
            original(crawler)
            crawl = crawler.crawls[-1]
            self._crawl_started[id(crawl)] = time.monotonic()
        # The crawl ends on its own after crawl_seconds, as Glue's would, whoever is looking.
        timer = threading.Timer(self.faults.crawl_seconds, self._end_crawl_in_time, args=(crawler, crawl))
        timer.daemon = True
        timer.start()
        return None

    def crawler_polled(self, crawler: Any) -> None:
        """A GetCrawler call: shows the crawl ended once its time is up (the timer may be late)."""
        self._end_crawl_in_time(crawler, crawler.crawls[-1] if crawler.crawls else None)

    def _end_crawl_in_time(self, crawler: Any, crawl: Any) -> None:
        # The end event goes out under the lock: a GetCrawler meanwhile (crawler_polled) waits for
        # it, so no one sees the crawl ended before its event was delivered. Ended by the timer
        # thread, the event could otherwise still be on its way when the run had settled and was
        # looked at (a flaky CrawlerFailed test: no callback, no alarm yet). `drop_crawl_events`
        # is how a local run loses the event.
        with self._lock:
            ended = self._advance_crawl(crawler, crawl)
            if ended is not None and self.on_crawler_event is not None and not self.faults.drop_crawl_events:
                self.on_crawler_event(ended)

    # -- job -----------------------------------------------------------------------------
    def start_job_run(self, original: Callable[..., str], job: Any, **kwargs: Any) -> str:
        """StartJobRun, refused with ConcurrentRunsExceededException while `job_busy_starts` lasts."""
        with self._lock:
            if self.faults.job_busy_starts > 0:
                self.faults.job_busy_starts -= 1
                raise glue_models.ConcurrentRunsExceededException(f"Job with name {job.name} already running")
            return original(job, **kwargs)

    def job_run_polled(self, job: Any, run: Any) -> None:
        """A GetJobRun call: the run ends as `job_outcome` says, having written its outputs if it succeeded,
        and Glue sends its end event (the alarm rule on failed runs reads it)."""
        with self._lock:
            ended = self._advance_job_run(job, run)
        if ended is not None and self.on_job_event is not None:
            self.on_job_event(ended)

    def _advance_crawl(self, crawler: Any, crawl: Any) -> dict[str, Any] | None:
        """End `crawl` if it is the running one and its time is up: its end event, or None."""
        if crawl is None or crawl.status != "RUNNING" or id(crawl) not in self._crawl_started:
            return None
        outcome = self.faults.crawl_outcome
        if outcome == "NEVER_ENDS" or time.monotonic() - self._crawl_started[id(crawl)] < self.faults.crawl_seconds:
            return None
        denied = self._crawler_denied(crawler) if outcome != "FAILED" else None
        if outcome == "FAILED":
            crawl.status = "FAILED"
            crawl.error_message = "Internal Service Exception: the crawler could not read s3 objects (fault)"
        elif denied:
            crawl.status = "FAILED"
            crawl.error_message = denied
        else:
            crawl.status = "COMPLETED"
        self.crawls_ended.append(datetime.now(UTC))
        status = "SUCCEEDED" if crawl.status == "COMPLETED" else crawl.status
        error_message = getattr(crawl, "error_message", None)
        local_logs.crawl_ended(
            crawler_name=crawler.name, crawl_id=crawl.message_prefix, status=status, error_message=error_message
        )
        return crawler_state_change_event(
            crawler_name=crawler.name, account_id=self._account_id, succeeded=status == "SUCCEEDED", error=error_message
        )

    def _crawler_denied(self, crawler: Any) -> str | None:
        """What the crawler's role may not do of what a crawl does (AccessDenied's message), or None."""
        principal = permissions.Principal(crawler.role)
        backend = s3_backends[self._account_id][self._partition]
        try:
            for target in crawler.targets.get("S3Targets", []):
                bucket, prefix = _parse_s3_url(target["Path"])
                permissions.authorize_call("s3", "ListObjectsV2", {"Bucket": bucket, "Prefix": prefix}, principal)
                for key in [k for k in _live_keys(backend, bucket) if k.startswith(prefix)]:
                    permissions.authorize_call("s3", "GetObject", {"Bucket": bucket, "Key": key}, principal)
                # It reads the database and creates (or updates) a table named after the folder it crawls.
                table = prefix.rstrip("/").rsplit("/", 1)[-1] or bucket
                database = {"DatabaseName": crawler.database_name}
                for operation, params in (
                    ("GetDatabase", database),
                    ("GetTables", database),
                    ("CreateTable", {**database, "TableName": table}),
                ):
                    permissions.authorize_call("glue", operation, params, principal)
        except ClientError as error:
            return str(error.response["Error"]["Message"])
        return None

    def _advance_job_run(self, job: Any, run: Any) -> dict[str, Any] | None:
        """End `run` if it is still going: its "Glue Job State Change" event, or None."""
        if run.status not in ("STARTING", "RUNNING"):
            return None
        try:
            self._end_job_run(job, run)
        except ClientError as error:  # the job's role may not read or write what it must: Spark fails the run
            run.status = "FAILED"
            run.error_message = f"AmazonS3Exception: {error.response['Error']['Message']}"
        error_message = getattr(run, "error_message", None)
        local_logs.glue_job_run_ended(
            job_name=job.name, run_id=run.job_run_id, state=run.status, error_message=error_message
        )
        return job_state_change_event(
            job_name=job.name,
            run_id=run.job_run_id,
            state=run.status,
            message=error_message,
            account_id=self._account_id,
        )

    def _end_job_run(self, job: Any, run: Any) -> None:
        outcome = self.faults.job_outcome
        if outcome == "FAILED_AFTER_WRITING":
            self._write_outputs(job, run)
            run.status = "FAILED"
            run.error_message = "SparkException: Job aborted after writing its output (fault)"
        elif outcome == "FAILED":
            run.status = "FAILED"
            run.error_message = "AnalysisException: path does not exist (fault)"
        elif outcome == "TIMEOUT":
            run.status = "TIMEOUT"
            run.error_message = f"Job run timed out after {run.timeout or job.timeout} minutes (fault)"
        else:
            try:
                self._write_outputs(job, run)
            except Exception as error:  # noqa: BLE001 - the job's own crash: the run FAILED, as Glue records it
                run.status, run.error_message = "FAILED", glue_error_message(error)
            else:
                run.status = "SUCCEEDED"

    def _write_outputs(self, job: Any, run: Any) -> None:
        """Run the job's own code (`glue.run.run_job`) on the run's admitted objects in moto S3."""
        from glue.admission_records import admitted_file, in_upload_order, is_record_key
        from glue.reader import SourceFile
        from glue.run import run_job

        args = {**(job.default_arguments or {}), **(run.arguments or {})}
        backend = s3_backends[self._account_id][self._partition]
        role = permissions.Principal(job.role)  # what the job reads and writes, it does as its role
        landing_bucket, landing_prefix = _parse_s3_url(args["--landing_path"])
        landing_prefix = landing_prefix if landing_prefix.endswith("/") else f"{landing_prefix}/"
        # As glue/job.py: exactly the objects the run folder's admission records name.
        permissions.authorize_call("s3", "ListObjectsV2", {"Bucket": landing_bucket, "Prefix": landing_prefix}, role)
        records = [key for key in sorted(_live_keys(backend, landing_bucket)) if is_record_key(key, landing_prefix)]
        for key in records:
            permissions.authorize_call("s3", "GetObject", {"Bucket": landing_bucket, "Key": key}, role)
        files = in_upload_order(
            admitted_file(
                json.loads(backend.get_object(landing_bucket, key).value),  # type: ignore[union-attr]
                run_prefix=landing_prefix,
                where=f"s3://{landing_bucket}/{key}",
            )
            for key in records
        )
        for item in files:
            permissions.authorize_call("s3", "GetObject", {"Bucket": landing_bucket, "Key": item.object_key}, role)
        with tempfile.TemporaryDirectory(prefix="glue-standin-") as folder:
            root = Path(folder)
            inputs: list[SourceFile] = []
            for item in files:
                path = root / "in" / item.object_key
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(backend.get_object(landing_bucket, item.object_key).value)  # type: ignore[union-attr]
                inputs.append(SourceFile(path=str(path), original_key=item.original_key, uploaded=item.uploaded))
            outputs = {str(root / "out" / name): args[f"--{name}_path"] for name in ("curated", "rejected")}
            manifest = run_job(
                spark_session(),
                inputs=inputs,
                admitted_records=sum(item.records for item in files),
                curated_path=str(root / "out" / "curated"),
                rejected_path=str(root / "out" / "rejected"),
                run_id=run.job_run_id,
                recorded_as={
                    **{str(root / "in" / f.object_key): f"s3://{landing_bucket}/{f.object_key}" for f in files},
                    **outputs,
                },
            )
            for local, url in outputs.items():
                _put_folder(backend, Path(local), url, role)
        manifest_at = {"Bucket": args["--manifest_bucket"], "Key": args["--manifest_key"]}
        permissions.authorize_call("s3", "PutObject", manifest_at, role)
        backend.put_object(args["--manifest_bucket"], args["--manifest_key"], json.dumps(manifest).encode("utf-8"))


# Glue's JobRun.ErrorMessage is a line or two, not the driver's stack trace (that goes to the error log).
ERROR_MESSAGE_CHARS = 1000


def glue_error_message(error: BaseException) -> str:
    """What Glue records as a crashed run's ErrorMessage: the exception's class and its first line
    (a Py4J error's Java exception rather than its "An error occurred while calling" preamble)."""
    lines = [line.strip().removeprefix(": ") for line in str(error).splitlines() if line.strip()]
    java = next((line for line in lines if re.match(r"^[\w.$]+(Exception|Error)\b", line)), None)
    if type(error).__name__ == "Py4JJavaError" and java is not None:
        message = java
    else:
        message = f"{type(error).__name__}: {lines[0] if lines else 'no message'}"
    return message if len(message) <= ERROR_MESSAGE_CHARS else message[: ERROR_MESSAGE_CHARS - 1] + "…"


def _live_keys(backend: Any, bucket: str) -> list[str]:
    """Keys ListObjectsV2 would list (a versioned bucket keeps delete markers in moto's store)."""
    store = backend.get_bucket(bucket).keys
    return [key for key in store.keys() if not isinstance(store.get(key), FakeDeleteMarker)]


def _put_folder(backend: Any, folder: Path, url: str, role: permissions.Principal) -> None:
    """Replace what is under `url` with the files Spark wrote to `folder` (overwrite mode on S3)."""
    bucket, prefix = _parse_s3_url(url)
    prefix = prefix if prefix.endswith("/") else f"{prefix}/"
    permissions.authorize_call("s3", "ListObjectsV2", {"Bucket": bucket, "Prefix": prefix}, role)
    for key in [k for k in _live_keys(backend, bucket) if k.startswith(prefix)]:
        permissions.authorize_call("s3", "DeleteObject", {"Bucket": bucket, "Key": key}, role)
        backend.delete_object(bucket, key)
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith("."):  # Hadoop's local .crc files
            key = prefix + path.relative_to(folder).as_posix()
            permissions.authorize_call("s3", "PutObject", {"Bucket": bucket, "Key": key}, role)
            backend.put_object(bucket, key, path.read_bytes())


_spark_lock = threading.Lock()  # one session per process, however many threads ask at once
_spark: SparkSession | None = None


def spark_session(*, log_file: Path | None = None) -> SparkSession:
    """The process's one local SparkSession (about 5-10 s to start, once).

    With `log_file`, the JVM's own output (log4j's startup warnings, anything it prints) is
    appended there instead of the terminal; only the call that starts the session chooses.
    """
    global _spark
    with _spark_lock:
        if _spark is None:
            _spark = _start_spark(log_file)
        return _spark


def _start_spark(log_file: Path | None) -> SparkSession:
    import pyspark
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    conf = (
        SparkConf()
        .setMaster("local[1]")
        .setAppName("glue-standin")
        .set("spark.ui.enabled", "false")
        .set("spark.ui.showConsoleProgress", "false")
        .set("spark.driver.memory", "512m")
        .set("spark.sql.shuffle.partitions", "1")
        .set("spark.sql.session.timeZone", "UTC")
        # A local run is one short-lived JVM over a few small files: what costs is starting up, not
        # running. C1 only and the serial collector start faster, and interpreting the query plans
        # (no whole-stage code generation; NO_CODEGEN, Spark's own switch for testing both paths)
        # skips compiling them; neither changes a result. Measured 2026-12-03 (2 cores): the session
        # 4.5 -> 3.5 s, the first job 15 -> 9.3 s (later ones about 3 s); the demo run 20 -> 15-17 s.
        .set("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        .set("spark.sql.codegen.wholeStage", "false")
        .set("spark.sql.adaptive.enabled", "false")
        .set("spark.sql.codegen.factoryMode", "NO_CODEGEN")
        # Past 32 input paths Spark lists them in a Spark job of its own, one task per path: on a
        # cluster over S3 that spreads the requests' latency; on one local core it is 1,000 tasks for
        # 1,000 files (run_job on 1,000 one-row files 10-15 s -> 5-5.7 s, measured 2026-12-04). The
        # deployed job keeps Spark's default; the paths listed, and so the result, are the same.
        .set("spark.sql.sources.parallelPartitionDiscovery.threshold", "100000")
        # The reader parses each file in a Python worker (glue/reader.py), which imports the `glue`
        # package from the repository, as Glue's workers do from the job's --extra-py-files zip.
        .set("spark.executorEnv.PYTHONPATH", str(REPO_ROOT))
        # PySpark's own worker daemon, minus the archives Spark puts on its path (see spark_daemon.py).
        .set("spark.python.daemon.module", "localrun.emulator.spark_daemon")
    )
    # The workers run PYSPARK_PYTHON, or else whatever `python3` is on PATH (SparkContext reads only
    # the variable; spark.pyspark.python is spark-submit's): where that is another minor version than
    # the venv's (python3 is 3.12, the venv 3.11), every task fails with PYTHON_VERSION_MISMATCH.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    # The Spark that runs is the pinned pyspark's own (Glue 5.0's version): a SPARK_HOME of the
    # machine's (another Spark, or none there) would start that instead, or fail to start.
    os.environ["SPARK_HOME"] = str(Path(pyspark.__file__).parent)
    if log_file is not None:  # launch_gateway's popen_kwargs: PySpark's hook for the JVM's output
        with log_file.open("ab") as log:
            SparkContext(conf=conf, gateway=launch_gateway(conf, popen_kwargs={"stdout": log, "stderr": log}))
    session = SparkSession.builder.config(conf=conf).getOrCreate()
    # The reader's extra-fields column makes Spark warn about every file's header; errors still show.
    session.sparkContext.setLogLevel("ERROR")
    return session


def start_spark_in_background(*, log_file: Path | None = None) -> threading.Thread:
    """Start the session in a thread, so the JVM comes up while the stacks do; a job run that
    asks for it meanwhile waits for it. (A warm-up job on top was measured and dropped: on two
    busy cores it only moved the first job's compile time ahead of the real one.)"""
    thread = threading.Thread(target=lambda: spark_session(log_file=log_file), name="spark-start", daemon=True)
    thread.start()
    return thread
