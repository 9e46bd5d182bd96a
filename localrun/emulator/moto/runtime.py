"""What the registry's patches share: the runtime they route to and the shape of an entry."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from unittest import mock

from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

from localrun.emulator.assembly import ACCOUNT_ID, PARTITION
from localrun.emulator.glue_standin import LocalGlue

LambdaHandler = Callable[[dict, Any], Any]


class MotoVersionError(RuntimeError):
    pass


@dataclass
class LocalRuntime:
    """What the patches route to while the registry is applied."""

    stack: ExitStack
    glue: LocalGlue = field(default_factory=lambda: LocalGlue(account_id=ACCOUNT_ID, partition=PARTITION))
    lambda_handlers: dict[str, LambdaHandler] = field(default_factory=dict)  # function ARN -> handler
    lambda_environment: dict[str, str] = field(default_factory=dict)  # what the routed functions set
    # (owner, attribute, value before) for each patched attribute; dicts patched in place.
    patched: list[tuple[Any, str, Any]] = field(default_factory=list)
    patched_dicts: list[dict] = field(default_factory=list)

    def replace(self, owner: Any, attribute: str, new: Any) -> Any:
        """Patch `owner.attribute` until the registry is left; returns the original."""
        if any(o is owner and a == attribute for o, a, _ in self.patched):
            raise RuntimeError(f"{getattr(owner, '__name__', owner)}.{attribute} is patched by two entries")
        original = getattr(owner, attribute)
        self.patched.append((owner, attribute, vars(owner).get(attribute, _ABSENT)))
        self.stack.enter_context(mock.patch.object(owner, attribute, new))
        return original

    def update(self, mapping: dict, values: dict) -> None:
        self.patched_dicts.append(mapping)
        self.stack.enter_context(mock.patch.dict(mapping, values))

    def route_lambda(
        self,
        function_arn: str,
        module: ModuleType,
        attribute: str,
        log: logging.Logger,
        environment: dict[str, str] | None = None,
    ) -> None:
        """Run a Lambda handler in-process; what it prints goes to `log` (CloudWatch Logs on AWS).

        Its environment variables are set in this process while the registry is applied: every
        in-process function sees them, so two functions may not give one variable two values.
        """
        for name, value in (environment or {}).items():
            if self.lambda_environment.setdefault(name, value) != value:
                raise ValueError(
                    f"Lambda environment variable {name}: {value!r} for {function_arn}, "
                    f"{self.lambda_environment[name]!r} for another function; in-process functions share one"
                )
        if environment:
            self.stack.enter_context(mock.patch.dict(os.environ, environment))
        self.stack.enter_context(
            mock.patch.object(module, "print", lambda *args, **_: log.info(" ".join(map(str, args))), create=True)
        )
        self.lambda_handlers[function_arn] = getattr(module, attribute)


_ABSENT = object()


@dataclass(frozen=True)
class MotoPatch:
    name: str
    gap: str  # the AWS behaviour moto lacks
    apply: Callable[[LocalRuntime], None]
    probe: Callable[[], bool] | None  # on plain moto: True while upstream still has the gap
    no_probe_because: str = ""
    # A stand-in runs what moto only records (Glue crawls and job runs), driven by fault knobs;
    # every other entry bends moto's behaviour to the AWS API reference.
    stand_in: bool = False


_lock = threading.Lock()
_active: LocalRuntime | None = None


def to_json_safe(value: Any) -> Any:
    """What a Step Functions state holds: JSON, with timestamps as ISO-8601 strings."""
    return json.loads(to_json_str(value))
