"""The envelope EventBridge gives every AWS service event (EventBridge user guide, event structure)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from localrun.emulator.assembly import ACCOUNT_ID, PARTITION, REGION


def aws_event(
    *,
    source: str,
    detail_type: str,
    detail: dict[str, Any],
    resources: Sequence[str] = (),
    account: str = ACCOUNT_ID,
    region: str = REGION,
) -> dict[str, Any]:
    """An event of `source` as EventBridge delivers it to a rule: a fresh id, the time now."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": list(resources),
        "detail": detail,
    }


def object_created_event(*, bucket: str, key: str, size: int, etag: str) -> dict[str, Any]:
    """An S3 "Object Created" event as EventBridge delivers it (S3 User Guide, EventBridge event structure)."""
    return aws_event(
        source="aws.s3",
        detail_type="Object Created",
        resources=[f"arn:{PARTITION}:s3:::{bucket}"],
        detail={
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "etag": etag, "sequencer": f"{time.time_ns():X}"},
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": ACCOUNT_ID,
            "source-ip-address": "198.51.100.7",
            "reason": "PutObject",
        },
    )


def scheduled_event(*, rule_arn: str) -> dict[str, Any]:
    return aws_event(source="aws.events", detail_type="Scheduled Event", resources=[rule_arn], detail={})
