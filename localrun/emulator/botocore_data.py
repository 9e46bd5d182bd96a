"""One botocore data loader per process while local AWS runs: each model file is parsed once.

Every botocore session gets its own loader, and every loader parses the JSON it needs again: the
endpoint rules (endpoints.json, partitions.json) when the session makes its first client, and each
service's model (s3's is 1.5 MB). Local runs make sessions all the time: moto makes a new default
boto3 session each time a mock starts and another to list regions for every backend it creates, the
bring-up makes one, `python -m ops.why` one, and each test another. That parsing was a third of the
interpreter's CPU in the scenario tests.

Inside `shared_botocore_data()` every new session shares one loader (per AWS_DATA_PATH), as the
clients of one session always do: same files, same parsed data, nothing else changed. Leaving the
outermost context restores botocore's own factory; the parsed data stay for the next context.
`botocore_still_parses_per_session()` is the probe: True while plain botocore parses per session.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

import botocore.loaders
import botocore.session


class _SearchPaths(list):
    """boto3 appends its own data folder to the loader of every session it makes; once is enough."""

    def append(self, path: Any) -> None:
        if path not in self:
            super().append(path)


_LOADERS: dict[str | None, botocore.loaders.Loader] = {}  # AWS_DATA_PATH -> its loader
_LOCK = threading.Lock()
_depth = 0


def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    with _LOCK:
        loader = _LOADERS.get(search_path_string)
        if loader is None:
            loader = botocore.loaders.create_loader(search_path_string)
            loader._search_paths = _SearchPaths(loader.search_paths)  # the list boto3 appends to
            _LOADERS[search_path_string] = loader
        return loader


@contextlib.contextmanager
def shared_botocore_data() -> Iterator[None]:
    """Sessions made inside share one data loader; re-entrant (an inner context changes nothing)."""
    global _depth
    with _LOCK:
        outermost = _depth == 0
        _depth += 1
    try:
        if outermost:
            with mock.patch.object(botocore.session, "create_loader", _shared_loader):
                yield
        else:
            yield
    finally:
        with _LOCK:
            _depth -= 1


@contextlib.contextmanager
def files_parsed() -> Iterator[list[str]]:
    """The JSON files botocore parses inside the context (paths without their extension)."""
    parsed: list[str] = []
    original = botocore.loaders.JSONFileLoader.load_file

    def counting(self: Any, file_path: str) -> Any:
        parsed.append(file_path)
        return original(self, file_path)

    with mock.patch.object(botocore.loaders.JSONFileLoader, "load_file", counting):
        yield parsed


def botocore_still_parses_per_session() -> bool:
    """The probe: two plain sessions resolving one client's endpoint each parse endpoints.json."""
    with files_parsed() as parsed:
        for _ in range(2):
            session = botocore.session.get_session()
            session.create_client("sqs", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    return sum(path.endswith("endpoints") for path in parsed) == 2
