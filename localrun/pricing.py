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
