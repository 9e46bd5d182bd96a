"""localrun/emulator/glue_standin.py: a crawl's end is seen only once its end event was delivered."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

from localrun.emulator.assembly import ACCOUNT_ID
from localrun.emulator.glue_standin import LocalGlue


def test_a_crawl_its_timer_ended_is_seen_ended_only_after_its_event_went_out() -> None:
    glue = LocalGlue(account_id=ACCOUNT_ID)
    glue.faults.crawl_outcome = "FAILED"  # ends without looking at S3
    crawl = SimpleNamespace(status="RUNNING", message_prefix="m")
    crawler = SimpleNamespace(name="crawler", role=f"arn:aws:iam::{ACCOUNT_ID}:role/r", crawls=[crawl])
    glue._crawl_started[id(crawl)] = time.monotonic() - 60  # its time is up
    order: list[str] = []
    sending = threading.Event()

    def deliver(event: dict[str, Any]) -> None:  # the local EventBridge, slow this time
        sending.set()
        time.sleep(0.3)
        order.append(f"event {event['detail']['state']}")

    glue.on_crawler_event = deliver
    timer = threading.Thread(target=glue._end_crawl_in_time, args=(crawler, crawl))  # as the timer thread
    timer.start()
    assert sending.wait(5)
    glue.crawler_polled(crawler)  # a GetCrawler while the event is on its way
    order.append(f"GetCrawler {crawl.status}")
    timer.join(5)
    assert order == ["event Failed", "GetCrawler FAILED"]
