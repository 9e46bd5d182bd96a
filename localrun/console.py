"""What the local runs print and where the rest goes: the console is for the run, a file for the logs."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

# A drop of thousands of files logs an admission decision per file: the console shows the first
# lines, the run's log file holds them all.
LAMBDA_LINES_SHOWN = 40


class FirstLines(logging.Filter):
    """Let the first `limit` records through; at the next, say once where the rest are."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.seen = limit, 0

    def filter(self, record: logging.LogRecord) -> bool:
        self.seen += 1
        if self.seen == self.limit + 1:
            print("             λ … more Lambda log lines: every one is in the log file named below", flush=True)
        return self.seen <= self.limit


def configure_logging(command: str) -> None:
    # moto's interpreter logs every failed state at ERROR with its whole parse tree; a failing
    # state is what the fault scenarios are about, and the run report shows it readably.
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
    if command == "demo":  # the Lambda's own log lines, as CloudWatch Logs would hold them
        lambda_log = logging.StreamHandler(sys.stdout)
        lambda_log.setFormatter(logging.Formatter("             λ %(message)s"))
        lambda_log.addFilter(FirstLines(LAMBDA_LINES_SHOWN))
        logging.getLogger("localrun.lambda").addHandler(lambda_log)
        logging.getLogger("localrun.lambda").setLevel(logging.INFO)


def log_to_file(path: Path, *, truncate: bool = True) -> Path:
    """Spark's and moto's log lines (and py4j's, Python warnings and the demo's Lambda lines) into `path`,
    not the demo's output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if truncate:
        path.write_text("")
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.captureWarnings(True)
    for name, level in (
        ("moto", logging.WARNING),
        ("moto.stepfunctions.parser", logging.ERROR),
        ("py4j", logging.INFO),
        ("py.warnings", logging.WARNING),
    ):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.addHandler(handler)
        logger.propagate = False
    # The Lambda lines too, when the demo shows them (its level INFO); elsewhere nothing is logged there.
    logging.getLogger("localrun.lambda").addHandler(handler)
    return path
