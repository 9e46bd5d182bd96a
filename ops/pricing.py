"""Prices used to cost a local run. Parameters with a date, never literals buried in code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class StepFunctionsPrice:
    as_of: str
    region: str
    usd_per_1000_standard_transitions: float

    def standard_cost(self, transitions: int) -> float:
        return transitions * self.usd_per_1000_standard_transitions / 1000


# AWS Step Functions pricing page, Standard workflows, us-east-1 (free tier of 4,000/month ignored).
STEP_FUNCTIONS = StepFunctionsPrice(as_of="2026-11-01", region="us-east-1", usd_per_1000_standard_transitions=0.025)


@dataclass(frozen=True, kw_only=True)
class ExpressWorkflowsPrice:
    """Express workflows: per request (each child workflow a Distributed Map starts is one) and per
    GB-second, the duration rounded up to 100 ms and the memory billed in 64 MB chunks."""

    as_of: str
    region: str
    usd_per_million_requests: float
    usd_per_gb_second: float  # the first tier (the first 1,000 GB-hours of a month)
    billed_memory_mb: int = 64  # one chunk: a small definition with a small payload stays in it
    duration_step_s: float = 0.1

    def gb_seconds(self, duration_s: float) -> float:
        steps = -(-round(duration_s * 1000) // round(self.duration_step_s * 1000))
        return steps * self.duration_step_s * self.billed_memory_mb / 1024

    def cost(self, requests: int, gb_seconds: float) -> float:
        return requests * self.usd_per_million_requests / 1e6 + gb_seconds * self.usd_per_gb_second


@dataclass(frozen=True, kw_only=True)
class LambdaPrice:
    as_of: str
    region: str
    usd_per_million_requests: float
    usd_per_gb_second: float  # x86_64, the first tier

    def cost(self, invocations: int, gb_seconds: float) -> float:
        return invocations * self.usd_per_million_requests / 1e6 + gb_seconds * self.usd_per_gb_second


@dataclass(frozen=True, kw_only=True)
class GluePrice:
    """Glue bills DPU-hours per second with a minimum per run: crawlers 10 minutes, Spark ETL jobs
    (Glue 2.0 and later, so 5.0 too) 1 minute. `confirmed` is False until someone checks the page."""

    as_of: str
    region: str
    usd_per_dpu_hour: float
    crawler_minimum_s: int
    job_minimum_s: int
    confirmed: bool

    def crawl_cost(self, seconds: float, dpus: float) -> float:
        return max(seconds, self.crawler_minimum_s) * dpus / 3600 * self.usd_per_dpu_hour

    def job_cost(self, seconds: float, dpus: float) -> float:
        return max(seconds, self.job_minimum_s) * dpus / 3600 * self.usd_per_dpu_hour


# AWS Step Functions pricing page, Express workflows, us-east-1: $1.00 per million requests,
# $0.00001667 per GB-second up to 1,000 GB-hours a month (cheaper tiers above it are ignored).
EXPRESS_WORKFLOWS = ExpressWorkflowsPrice(
    as_of="2026-11-01", region="us-east-1", usd_per_million_requests=1.00, usd_per_gb_second=0.00001667
)
# AWS Lambda pricing page, x86_64, us-east-1, first tier (free tier ignored).
LAMBDA = LambdaPrice(
    as_of="2026-11-01", region="us-east-1", usd_per_million_requests=0.20, usd_per_gb_second=0.0000166667
)
# AWS Glue pricing page, us-east-1: ETL jobs and crawlers $0.44 per DPU-hour, billed per second;
# crawler minimum 10 minutes per run, Spark job minimum 1 minute (Glue 2.0+). To be confirmed.
GLUE = GluePrice(
    as_of="2026-11-01",
    region="us-east-1",
    usd_per_dpu_hour=0.44,
    crawler_minimum_s=600,
    job_minimum_s=60,
    confirmed=False,
)
