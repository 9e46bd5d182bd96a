"""What Amazon MWAA offers, and what it costs: facts with a date, in one place.

Plain values (no CDK): the config module validates a stage's settings against them, the MWAA
constructs check their own props against them, and the cost tables in docs/mwaa-costs.md are
computed from `MWAA_PRICES` (a test keeps them in step).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Airflow versions with an Amazon MWAA image in Nov 2026, and the environment classes.
MWAA_AIRFLOW_VERSIONS = ("2.11.0", "3.0.6", "3.2.1", "3.3.1")
MWAA_ENVIRONMENT_CLASSES = ("mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge")
MWAA_WEB_SERVER_ACCESS = ("PRIVATE_ONLY", "PUBLIC_ONLY")
# How the environment reaches AWS services (stacks/orchestration/mwaa_network.py).
MWAA_EGRESS = ("vpc-endpoints", "nat-gateway")
MWAA_MAX_WORKERS = 25  # the default service quota for min_workers and max_workers
MWAA_LOG_TYPES = ("dag_processing_logs", "scheduler_logs", "task_logs", "webserver_logs", "worker_logs")


@dataclass(frozen=True, kw_only=True)
class MwaaPrices:
    """On-demand prices (USD) in one region on one date: parameters of the cost estimate, not facts.

    MWAA bills the environment (scheduler, web server, one worker, metadata database) by the
    hour whether DAGs run or not; workers above the first by the worker-hour. Interface endpoints
    bill per endpoint per AZ per hour; a NAT gateway per hour (data processing comes on top).
    """

    as_of: str
    region: str
    source: str
    environment_per_hour: Mapping[str, float]
    additional_worker_per_hour: Mapping[str, float]
    confirmed: frozenset[str]  # classes whose price was checked on `as_of`; the rest: confirm first
    interface_endpoint_per_az_hour: float
    nat_gateway_per_hour: float
    hours_per_month: float = 730.0

    def environment_per_month(self, environment_class: str, *, extra_workers: float = 0.0) -> float:
        """One environment all month, with `extra_workers` workers above the first on average."""
        hourly = self.environment_per_hour[environment_class]
        hourly += extra_workers * self.additional_worker_per_hour[environment_class]
        return hourly * self.hours_per_month

    def network_per_month(self, egress: str, *, interface_endpoints: int, azs: int = 2) -> float:
        if egress == "nat-gateway":
            return self.nat_gateway_per_hour * self.hours_per_month
        return interface_endpoints * azs * self.interface_endpoint_per_az_hour * self.hours_per_month


MWAA_PRICES = MwaaPrices(
    as_of="2026-11",
    region="us-east-1",
    source="https://aws.amazon.com/managed-workflows-for-apache-airflow/pricing/",
    environment_per_hour={
        "mw1.micro": 0.26,
        "mw1.small": 0.49,
        "mw1.medium": 0.74,
        "mw1.large": 0.99,
        "mw1.xlarge": 1.98,
        "mw1.2xlarge": 3.96,
    },
    additional_worker_per_hour={
        "mw1.micro": 0.0,
        "mw1.small": 0.055,
        "mw1.medium": 0.11,
        "mw1.large": 0.22,
        "mw1.xlarge": 0.44,
        "mw1.2xlarge": 0.88,
    },
    confirmed=frozenset({"mw1.small"}),
    interface_endpoint_per_az_hour=0.01,
    nat_gateway_per_hour=0.045,
)
