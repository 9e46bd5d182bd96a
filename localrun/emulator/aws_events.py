"""The envelope EventBridge gives every AWS service event (EventBridge user guide, event structure)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from localrun.emulator.assembly import ACCOUNT_ID, REGION


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
