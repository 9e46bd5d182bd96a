"""Every place where local runs deviate from moto 5.2.5, in one reversible registry.

Each `MotoPatch` names the gap (the AWS behaviour moto lacks), bends moto towards the AWS API
reference (never the other way round) and has its probe beside it, in the module of its service
(s3.py, stepfunctions.py, distributed_map.py, awslambda.py, sns.py, glue.py, redrive.py): a
function that reproduces the gap on plain, unpatched moto and returns True while upstream still
has it.

    with moto.applied() as runtime:   # checks moto's version, applies every patch
        ...                           # moto behaves as AWS does for this pipeline
    # every patched attribute is the original again

Patches are `unittest.mock.patch.object` / `patch.dict` in one `ExitStack` (runtime.py); nothing is
patched at import time, and each moto attribute is patched by one entry only. `local_aws()` in
localrun/emulator/deployment.py enters the registry; a moto server in the same process (the DAG
tests) enters it around the server's lifetime. tests/scenarios/test_moto_patches.py runs every probe
(`python -m localrun.emulator.moto`) in a fresh interpreter and fails when one reports its gap gone:
delete that entry and its probe.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack

import moto

from localrun.emulator import permissions
from localrun.emulator.botocore_data import shared_botocore_data
from localrun.emulator.moto import awslambda, distributed_map, glue, redrive, s3, sns, stepfunctions
from localrun.emulator.moto.runtime import LocalRuntime, MotoPatch
from localrun.emulator.moto.s3 import S3_COPY_CONDITIONS, S3_KEY_LENGTH
from localrun.emulator.moto.stepfunctions import check_execution_name

__all__ = [
    "MOTO_VERSION",
    "REGISTRY",
    "S3_COPY_CONDITIONS",
    "S3_KEY_LENGTH",
    "LocalRuntime",
    "MotoPatch",
    "MotoVersionError",
    "active",
    "applied",
    "check_execution_name",
    "run_probes",
]

MOTO_VERSION = "5.2.5"  # the version every patch and probe here was written against (constraints.txt)


class MotoVersionError(RuntimeError):
    pass


REGISTRY: tuple[MotoPatch, ...] = (
    s3.S3_COPY_CONDITIONS,
    s3.S3_KEY_LENGTH,
    stepfunctions.GLUE_START_JOB_RUN_SYNC,
    stepfunctions.AWS_SDK_GLUE_ERROR_NAMES,
    stepfunctions.SFN_START_EXECUTION_SYNC2_KEYS,
    stepfunctions.AWS_SDK_SFN_KEYS,
    stepfunctions.DATETIME_OUTPUTS,
    stepfunctions.SFN_EXECUTION_NAMES,
    stepfunctions.SYNC_CHECK_PACE,
    stepfunctions.DEFINITION_VALIDATION_CACHE,
    stepfunctions.DEFINITION_PARSE_CACHE,
    stepfunctions.SFN_SERVICE_CLIENTS,
    stepfunctions.JSON_PATH_CACHE,
    distributed_map.DISTRIBUTED_MAP,
    distributed_map.S3_LISTING_READER,
    distributed_map.RESULT_WRITER_FILES,
    awslambda.LAMBDA_IN_PROCESS,
    awslambda.LAMBDA_ACCOUNT_SETTINGS,
    sns.SNS_EMAIL_CONFIRMATION,
    redrive.SFN_REDRIVE_EXECUTION,
    redrive.SFN_STATUS_CHANGE_EVENTS,
    glue.CRAWL_STATUS_NAMES,
    glue.JOB_RUN_ERROR_MESSAGE,
    glue.GLUE_CRAWLER_RUNS,
    glue.GLUE_JOB_RUNS,
    # -- permissions and limits (localrun/emulator/permissions.py, localrun/emulator/limits.py) --
    MotoPatch("iam-enforcement", permissions.GAP, permissions.apply, permissions.probe),
    awslambda.LAMBDA_PAYLOAD_LIMITS,
)

_lock = threading.Lock()
_active: LocalRuntime | None = None


@contextlib.contextmanager
def applied(entries: Sequence[MotoPatch] | None = None) -> Iterator[LocalRuntime]:
    """Apply every patch (or only `entries`); leaving undoes them all. Not re-entrant."""
    global _active
    if moto.__version__ != MOTO_VERSION:
        raise MotoVersionError(
            f"localrun/emulator/moto/ is written for moto {MOTO_VERSION}, this environment has moto "
            f"{moto.__version__}: install the pinned version (constraints.txt), or upgrade on purpose by "
            "running tests/scenarios/test_moto_patches.py and updating the registry and MOTO_VERSION"
        )
    with ExitStack() as stack:
        runtime = LocalRuntime(stack=stack)
        with _lock:
            if _active is not None:
                raise RuntimeError("moto.applied() is already entered: leave it before entering again")
            _active = runtime
        stack.callback(_deactivate)
        for entry in REGISTRY if entries is None else entries:
            entry.apply(runtime)
        yield runtime


def _deactivate() -> None:
    global _active
    with _lock:
        _active = None


def active() -> LocalRuntime:
    """The applied registry's runtime (the Glue stand-in, the in-process Lambda handlers)."""
    if _active is None:
        raise RuntimeError("moto patches are not applied: bring the deployment up inside local_aws()")
    return _active


def run_probes() -> dict[str, bool]:
    """Every probe on plain moto: entry name -> whether upstream still has the gap."""
    if _active is not None:
        raise RuntimeError("the probes run on plain moto: leave localrun.emulator.moto.applied() first")
    # Sessions share botocore's parsed data (a botocore change, not a moto one): each probe starts a
    # mock with new sessions, which would parse the same service models again (about 5 s in all).
    with shared_botocore_data():
        return {entry.name: entry.probe() for entry in REGISTRY if entry.probe is not None}
