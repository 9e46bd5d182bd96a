"""Lambda: handlers run in-process (no Docker), GetAccountSettings answered as AWS answers it."""

from __future__ import annotations

import json
import os
from typing import Any

from botocore.exceptions import ClientError
from moto.awslambda import urls as lambda_urls
from moto.awslambda.responses import LambdaResponse
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

from localrun.emulator import limits, local_logs, permissions
from localrun.emulator.moto.probing import (
    plain_moto,
)
from localrun.emulator.moto.runtime import LocalRuntime, MotoPatch, to_json_safe


def _apply_lambda_in_process(runtime: LocalRuntime) -> None:
    original = lambda_eval_utils._invoke_lambda_function

    def invoke(parameters: dict, region: str, state_credentials: Any) -> Any:
        handler = runtime.lambda_handlers.get(parameters.get("FunctionName", ""))
        if handler is None:
            return original(parameters, region, state_credentials)
        payload = parameters.get("Payload")
        event: dict = json.loads(payload) if isinstance(payload, (str, bytes)) else (payload or {})
        # The caller's lambda:InvokeFunction and Lambda's payload limits (localrun/emulator/permissions.py, limits.py).
        permissions.authorize_call("lambda", "Invoke", parameters, permissions.current())
        limits.check_lambda_request(parameters["FunctionName"], event)
        try:
            with local_logs.lambda_invocation(parameters["FunctionName"].rsplit(":", 1)[-1]):
                result = handler(event, None)
        except Exception as error:  # the Lambda runtime reports an unhandled error like this
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": {"errorType": type(error).__name__, "errorMessage": str(error)},
            }
        if too_large := limits.lambda_response_error(result):
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": too_large}
        return {"StatusCode": 200, "Payload": to_json_safe(result)}

    runtime.replace(lambda_eval_utils, "_invoke_lambda_function", invoke)


# -- What only the account can say (make preflight, ops/preflight.py) ----------------------
# Lambda's default quota of concurrent executions per account and region; moto's own knob for it
# (MOTO_LAMBDA_CONCURRENCY_QUOTA, read by its PutFunctionConcurrency) sets another.
LAMBDA_DEFAULT_CONCURRENCY_QUOTA = 1000
_ACCOUNT_SETTINGS_PATH = r"{0}/(?P<api_version>[^/]+)/account-settings/?$"


def _account_settings(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """GetAccountSettings as AWS answers it: the quota, and what reservations leave unreserved."""
    response = LambdaResponse()
    response.setup_class(request, full_url, headers)
    functions = list(response.backend.list_functions())
    quota = int(os.environ.get("MOTO_LAMBDA_CONCURRENCY_QUOTA", LAMBDA_DEFAULT_CONCURRENCY_QUOTA))
    reserved = sum(int(f.reserved_concurrency or 0) for f in functions)
    settings = {
        "AccountLimit": {
            "TotalCodeSize": 80_530_636_800,
            "CodeSizeUnzipped": 262_144_000,
            "CodeSizeZipped": 52_428_800,
            "ConcurrentExecutions": quota,
            "UnreservedConcurrentExecutions": quota - reserved,
        },
        "AccountUsage": {"TotalCodeSize": sum(f.code_size for f in functions), "FunctionCount": len(functions)},
    }
    return 200, {"content-type": "application/json"}, json.dumps(settings)


def _apply_lambda_account_settings(runtime: LocalRuntime) -> None:
    # moto builds its URL table from urls.url_paths on every request: one more path routes the call.
    runtime.update(lambda_urls.url_paths, {_ACCOUNT_SETTINGS_PATH: _account_settings})


def _probe_lambda_account_settings() -> bool:
    import boto3

    with plain_moto():
        try:
            boto3.client("lambda").get_account_settings()
        except ClientError:
            return True
        return False


# -- the registry's entries (localrun/emulator/moto/__init__.py lists them) --
LAMBDA_IN_PROCESS = MotoPatch(
    "lambda-in-process",
    "Lambda tasks need Docker in moto; the synthesized handler runs in-process instead, its "
    "printed lines going to a logger as the Lambda runtime sends them to CloudWatch Logs",
    _apply_lambda_in_process,
    None,
    no_probe_because="reproducing it needs Docker; without Docker moto cannot invoke at all",
)
LAMBDA_ACCOUNT_SETTINGS = MotoPatch(
    "lambda-account-settings",
    "GetAccountSettings is not implemented (404); AWS answers the account's concurrency quota and "
    "what its functions' reservations leave unreserved (make preflight reads it)",
    _apply_lambda_account_settings,
    _probe_lambda_account_settings,
)
LAMBDA_PAYLOAD_LIMITS = MotoPatch(
    "lambda-payload-limits",
    limits.LAMBDA_GAP,
    lambda runtime: None,  # enforced inside the lambda-in-process entry, which owns the invocation
    None,
    no_probe_because="moto invokes no Lambda without Docker (see lambda-in-process)",
)
