"""The AWS environment of a local run: fake credentials, the local region, nothing of the machine's.

No profile (a missing one raised ProfileNotFound as soon as moto was imported), no config or
credentials file (their region, endpoints, roles) and no endpoint override (`AWS_ENDPOINT_URL*`:
moto intercepts AWS's own endpoints only, so an override sent a local run's calls wherever it
points, e.g. a LocalStack of the user's). Plain Python: entered before moto is imported.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from localrun.emulator.assembly import REGION

LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
MACHINE_AWS_SETTINGS = frozenset(
    {"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"}
)


@contextlib.contextmanager
def local_aws_environment() -> Iterator[None]:
    """os.environ as a local run needs it inside the block; as it was after."""
    cleared = [k for k in os.environ if k in MACHINE_AWS_SETTINGS or k.startswith("AWS_ENDPOINT_URL")]
    saved = {k: os.environ.get(k) for k in [*LOCAL_AWS_ENV, *cleared]}
    for key in cleared:
        del os.environ[key]
    os.environ.update(LOCAL_AWS_ENV)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
