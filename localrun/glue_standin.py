"""What Glue does locally: moto keeps crawler and job-run records but runs neither.

`LocalGlue` drives moto's own records so the state machines see what they would see on AWS:
a crawl that runs for a number of GetCrawler polls and then ends, a job run that ends after a
number of GetJobRun polls and then has written curated rows, rejected rows and a manifest. The
outcome of each is a fault knob (`GlueFaults`). Errors come from moto's own exception classes,
so they reach the state machine exactly as moto (and AWS) report them.

The job's data effect is computed by `count_rows`, a plain-Python twin of the Spark rules in
glue/transform.py; tests/unit/test_glue_standin.py checks the twin against the Spark transform
on every sample file so the two cannot drift apart.
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from moto.glue import models as glue_models
from moto.s3.models import s3_backends

from glue.manifest import build_manifest
from localrun import local_logs

CRAWL_OUTCOMES = ("SUCCEEDED", "FAILED", "NEVER_ENDS")
JOB_OUTCOMES = ("SUCCEEDED", "FAILED", "TIMEOUT")


@dataclass
class GlueFaults:
    """Fault knobs; the defaults are a healthy crawler and job."""

    crawler_busy_starts: int = 0  # StartCrawler refused (a crawl already running) this many times
    crawl_outcome: str = "SUCCEEDED"
    crawl_polls: int = 1  # GetCrawler calls that still see the crawl RUNNING... minus one
    job_busy_starts: int = 0  # StartJobRun refused with ConcurrentRunsExceededException this many times
    job_outcome: str = "SUCCEEDED"

    def __post_init__(self) -> None:
        if self.crawl_outcome not in CRAWL_OUTCOMES:
            raise ValueError(f"crawl_outcome = {self.crawl_outcome!r}: must be one of {', '.join(CRAWL_OUTCOMES)}")
        if self.job_outcome not in JOB_OUTCOMES:
            raise ValueError(f"job_outcome = {self.job_outcome!r}: must be one of {', '.join(JOB_OUTCOMES)}")


@dataclass
class RowCounts:
    input_rows: int = 0
    output_rows: int = 0
    rejected_rows: int = 0
    input_files: list[str] = field(default_factory=list)


_DATE = re.compile(r"^(?!0000)\d{4}-\d{2}-\d{2}$")
_AMOUNT = re.compile(r"^-?0*\d{1,10}(\.\d{1,2})?$")  # decimal(12,2), as glue/transform.py shapes it
_CURRENCY = re.compile(r"^[A-Z]{3}$")
COLUMNS = ("order_id", "customer_id", "order_date", "amount", "currency")


def _clean(value: str | None) -> str:
    return (value or "").strip()


def _row_is_valid(row: dict[str, str | None]) -> bool:
    values = {name: _clean(row.get(name)) for name in COLUMNS}
    if any(not values[name] for name in COLUMNS):
        return False
    if not _DATE.match(values["order_date"]):
        return False
    try:
        date.fromisoformat(values["order_date"])
    except ValueError:
        return False
    if not _AMOUNT.match(values["amount"]) or Decimal(values["amount"]) < 0:
        return False
    return bool(_CURRENCY.match(values["currency"].upper()))


def count_rows(csv_texts: list[str]) -> tuple[int, int, int]:
    """(input, curated, rejected) rows of CSV files, counted as glue/transform.py counts them."""
    valid_orders: dict[str, int] = {}
    total = 0
    for text in csv_texts:
        for row in csv.DictReader(io.StringIO(text)):
            total += 1
            if _row_is_valid(row):
                order_id = _clean(row["order_id"])
                valid_orders[order_id] = valid_orders.get(order_id, 0) + 1
    curated = len(valid_orders)  # one row per order_id; the other copies are rejected as duplicates
    return total, curated, total - curated


def _parse_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise ValueError(f"job argument {url!r}: must be an s3:// URL")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    return bucket, prefix


class LocalGlue:
    """The Glue stand-in's state; `faults` can be changed between runs.

    It patches nothing itself: the `glue-crawler-runs` and `glue-job-runs` entries of
    localrun/moto_patches.py route moto's crawler and job-run calls to the hooks below, and only
    while the registry is applied.
    """

    def __init__(self, *, account_id: str, partition: str = "aws") -> None:
        self.faults = GlueFaults()
        self._account_id = account_id
        self._partition = partition
        self._lock = threading.RLock()
        self._crawl_gets: dict[int, int] = {}
        self._bookmarks: dict[str, set[str]] = {}  # job name -> processed "key@etag"

    def reset(self) -> GlueFaults:
        """A fresh deployment: healthy faults, no bookmarks (moto's own records are new too)."""
        with self._lock:
            self.faults = GlueFaults()
            self._bookmarks.clear()
            self._crawl_gets.clear()
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
            return original(crawler)

    def crawler_polled(self, crawler: Any) -> None:
        """A GetCrawler call: the running crawl ends once its polls are used up."""
        with self._lock:
            self._advance_crawl(crawler)

    # -- job -----------------------------------------------------------------------------
    def start_job_run(self, original: Callable[..., str], job: Any, **kwargs: Any) -> str:
        """StartJobRun, refused with ConcurrentRunsExceededException while `job_busy_starts` lasts."""
        with self._lock:
            if self.faults.job_busy_starts > 0:
                self.faults.job_busy_starts -= 1
                raise glue_models.ConcurrentRunsExceededException(f"Job with name {job.name} already running")
            return original(job, **kwargs)

    def job_run_polled(self, job: Any, run: Any) -> None:
        """A GetJobRun call: the run ends as `job_outcome` says, having written its outputs if it succeeded."""
        with self._lock:
            self._advance_job_run(job, run)

    def _advance_crawl(self, crawler: Any) -> None:
        if not crawler.crawls or crawler.crawls[-1].status != "RUNNING":
            return
        crawl = crawler.crawls[-1]
        seen = self._crawl_gets.get(id(crawl), 0) + 1
        self._crawl_gets[id(crawl)] = seen
        outcome = self.faults.crawl_outcome
        if outcome == "NEVER_ENDS" or seen <= self.faults.crawl_polls - 1:
            return
        if outcome == "FAILED":
            crawl.status = "FAILED"
            crawl.error_message = "Internal Service Exception: the crawler could not read s3 objects (fault)"
        else:
            crawl.status = "COMPLETED"
        local_logs.crawl_ended(
            crawler_name=crawler.name,
            crawl_id=crawl.message_prefix,
            status="SUCCEEDED" if crawl.status == "COMPLETED" else crawl.status,
            error_message=getattr(crawl, "error_message", None),
        )

    def _advance_job_run(self, job: Any, run: Any) -> None:
        if run.status not in ("STARTING", "RUNNING"):
            return
        outcome = self.faults.job_outcome
        if outcome == "FAILED":
            run.status = "FAILED"
            run.error_message = "AnalysisException: path does not exist (fault)"
        elif outcome == "TIMEOUT":
            run.status = "TIMEOUT"
            run.error_message = f"Job run timed out after {run.timeout or job.timeout} minutes (fault)"
        else:
            self._write_outputs(job, run)
            run.status = "SUCCEEDED"
        local_logs.glue_job_run_ended(
            job_name=job.name,
            run_id=run.job_run_id,
            state=run.status,
            error_message=getattr(run, "error_message", None),
        )

    def _write_outputs(self, job: Any, run: Any) -> None:
        args = run.arguments or {}
        backend = s3_backends[self._account_id][self._partition]
        landing_bucket, landing_prefix = _parse_s3_url(args["--landing_path"])
        done = self._bookmarks.setdefault(job.name, set())
        texts, files = [], []
        for key in backend.get_bucket(landing_bucket).keys.values():
            if not key.name.startswith(landing_prefix) or f"{key.name}@{key.etag}" in done:
                continue
            texts.append(key.value.decode("utf-8"))
            files.append(f"s3://{landing_bucket}/{key.name}")
            done.add(f"{key.name}@{key.etag}")  # job bookmark: each object version is read once
        total, curated, rejected = count_rows(texts)
        manifest = build_manifest(
            run_id=run.job_run_id,
            input_rows=total,
            output_rows=curated,
            rejected_rows=rejected,
            output_path=args["--curated_path"],
            rejected_path=args["--rejected_path"],
            input_files=files,
        )
        backend.put_object(args["--manifest_bucket"], args["--manifest_key"], json.dumps(manifest).encode("utf-8"))
