"""`make demo FILES="orders.csv exports/"`: the pipeline run locally on your own files.

The files land under the drop zone at once, as a burst of uploads would, then their Object Created events
arrive: what the S3 rule matches (a non-empty `.csv`) starts a run through the front door, and that run
admits or quarantines everything under `incoming/`. When nothing matches (no `.csv` among them), the
schedule fires once instead, as it would at its next tick. The run's check is the one every run owes its
files: each one admitted or quarantined with a reason, nothing left waiting, the lease released.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from localrun.scenarios.actions import admitted_copies, left_waiting
from localrun.scenarios.scenario import Scenario

if TYPE_CHECKING:
    from localrun.emulator.deployment import LocalDeployment

NAME = "files"  # the report's name: reports/files.json, reports/files.log


class Progress:
    """A line every few seconds while a long loop runs (thousands of files), none for a short one."""

    EVERY_S = 5.0

    def __init__(self, what: str, total: int) -> None:
        self.what, self.total, self.done = what, total, 0
        self.last = time.monotonic()

    def step(self, detail: str = "") -> None:
        self.done, now = self.done + 1, time.monotonic()
        if now - self.last >= self.EVERY_S and self.done < self.total:
            self.last = now
            print(f"  … {self.done:,}/{self.total:,} {self.what}{f' ({detail})' if detail else ''}", flush=True)


class FilesError(ValueError):
    """A FILES entry that cannot be uploaded: one line, naming it."""


def upload_names(paths: Sequence[Path]) -> dict[str, Path]:
    """Each file's name under `incoming/`: a file given by itself keeps its name, a folder's files keep
    their path inside the folder (hidden files and folders left out, as `ls` does). The same file
    given twice counts once; two files that would get the same name are refused."""
    if not paths:
        raise FilesError("FILES is empty: give one or more files or folders, e.g. FILES=samples/orders.csv")
    names: dict[str, Path] = {}
    for path in paths:
        if path.is_dir():
            found = sorted(
                file
                for file in path.rglob("*")
                if file.is_file() and not any(part.startswith(".") for part in file.relative_to(path).parts)
            )
            if not found:
                raise FilesError(f"FILES: {str(path)!r} is a folder with no files in it")
            pairs = [(file.relative_to(path).as_posix(), file) for file in found]
        elif path.is_file():
            pairs = [(path.name, path)]
        elif not path.exists():
            raise FilesError(f"FILES: {str(path)!r}: no such file or folder")
        else:
            raise FilesError(f"FILES: {str(path)!r} is neither a file nor a folder")
        for name, file in pairs:
            if not os.access(file, os.R_OK):
                raise FilesError(f"FILES: {str(file)!r} cannot be read (permission denied)")
            known = names.setdefault(name, file)
            if known.resolve() != file.resolve():
                raise FilesError(
                    f"FILES: {str(known)!r} and {str(file)!r} would both land as incoming/{name}: rename one"
                )
    return names


@dataclass
class YourFiles:
    """The happy path's run on `names` (name under incoming/ -> file): every run is to succeed."""

    names: dict[str, Path]
    refused: dict[str, str] = field(default_factory=dict)  # uploads S3 refuses (a key over 1,024 bytes)

    def scenario(self) -> Scenario:
        return Scenario(
            name=NAME,
            description=f"your {len(self.names)} file(s) land under incoming/ at once, then their upload events",
            act=self.act,
            expected_statuses=("SUCCEEDED",),
            any_number_of_runs=True,  # the front door coalesces a burst into one run or a few
            check=self.check,
        )

    def act(self, deployment: LocalDeployment) -> list[str]:
        print(
            f"  landing {len(self.names)} file(s) under s3://{deployment.landing_bucket}/{deployment.incoming_prefix}"
        )
        events, landing = [], Progress("files landed", len(self.names))
        for name, path in self.names.items():
            try:
                events.append(deployment.land_object(f"{deployment.incoming_prefix}{name}", path.read_bytes()))
            except ClientError as error:  # as on AWS: no object, no event
                self.refused[name] = error.response["Error"]["Code"]
                shown = name if len(name) <= 80 else f"{name[:40]}…{name[-39:]}"
                print(f"  ✗ upload refused by S3: {shown} ({error.response['Error']['Message'][:100]})")
            landing.step()
        started, delivering = [], Progress("upload events through the front door", len(events))
        for event in events:  # each one runs the front door (an EXPRESS execution) before the next arrives
            started += deployment.deliver(event)
            delivering.step(f"{len(started)} pipeline execution(s) started")
        if events and not started:
            print("  no upload matched the S3 rule (a non-empty .csv): the schedule fires once instead")
            return deployment.schedule_tick()
        return started

    def check(self, deployment: LocalDeployment, report: dict[str, Any]) -> list[str]:
        # A failed run keeps the lease: it expires with its holder, and the next run takes it over.
        released = set(report["statuses"]) == {"SUCCEEDED"}
        uploaded = len(self.names) - len(self.refused)
        return every_file_accounted_for(deployment, uploaded, lease_released=released)

    def verdict(self, report: dict[str, Any]) -> str:
        """The demo's last line: how the runs ended, whether every file is accounted for, what S3 refused."""
        statuses = ", ".join(report["statuses"]) or "no run started"
        refused = f"; {len(self.refused)} upload(s) refused by S3 (above)" if self.refused else ""
        if report["as_expected"]:
            return f"every run SUCCEEDED ({statuses}); each upload admitted or quarantined with a reason{refused}"
        problems = f"; {len(report['problems'])} problem(s) above" if report["problems"] else ""
        return f"NOT every run succeeded ({statuses}){problems}{refused}"


def every_file_accounted_for(deployment: LocalDeployment, uploaded: int, *, lease_released: bool) -> list[str]:
    """Problems, if any: files left waiting, a lease still held when it should not be, admitted +
    quarantined not the uploads."""
    problems = left_waiting(deployment, lease_released=lease_released)
    admitted = admitted_copies(deployment)
    quarantined = [k for k in deployment.keys_under(deployment.quarantine_prefix) if k.endswith(".reason.json")]
    if len(admitted) + len(quarantined) != uploaded:
        problems.append(
            f"{uploaded} file(s) uploaded, {len(admitted)} admitted and {len(quarantined)} quarantined with a reason"
        )
    return problems
