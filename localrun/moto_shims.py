"""Every place where moto 5.2.5 falls short of AWS for this pipeline, fixed in one module.

Each shim names the gap, bends moto towards the AWS API reference (never the other way round),
and has an `upstream_fixed()` probe used by tests/scenarios/test_moto_shims.py: when a probe
starts returning True, upstream moto has closed the gap and the shim can go.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.glue import models as glue_models
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service as base_service,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk as aws_sdk_service,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_glue as glue_service,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_sfn as sfn_service,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

_lock = threading.Lock()
_installed = False

# Lambda functions run in-process: function ARN -> handler(event, context).
LAMBDA_HANDLERS: dict[str, Callable[[dict, Any], Any]] = {}


@dataclass(frozen=True)
class Shim:
    name: str
    gap: str


# tests/scenarios/test_moto_shims.py reproduces each gap on plain moto in a fresh interpreter and
# fails once the gap is gone upstream, so the shim can be deleted.
SHIMS = (
    Shim("glue-startJobRun-sync", "glue:startJobRun.sync crashes: 'NoneType' object has no attribute 'interrupt_all'"),
    Shim("aws-sdk-glue-error-names", "aws-sdk errors from Glue are named glue.X; AWS names them Glue.X"),
    Shim(
        "sfn-startExecution-sync2-keys",
        "states:startExecution.sync:2 fails States.Runtime 'StateMachineArn': "
        "request and response keys are not translated between Step Functions and boto3 casing",
    ),
    Shim(
        "datetime-outputs", "aws-sdk and .sync outputs keep datetime objects; DescribeExecution cannot serialise them"
    ),
    Shim(
        "crawl-status-names",
        "a finished crawl reports LastCrawl.Status COMPLETED/STOPPED; AWS reports "
        "SUCCEEDED/CANCELLED/FAILED, and AWS shows no LastCrawl for a crawl still running",
    ),
    Shim("job-run-error-message", "a failed job run has no ErrorMessage in GetJobRun; AWS reports why it failed"),
    Shim("lambda-in-process", "Lambda tasks need Docker in moto; the synthesized handler runs in-process instead"),
)


def _to_json_safe(value: Any) -> Any:
    """What a Step Functions state holds: JSON, with timestamps as ISO-8601 strings."""
    return json.loads(to_json_str(value))


def install() -> None:
    """Apply every shim once per process (idempotent, thread-safe)."""
    global _installed
    with _lock:
        if _installed:
            return
        _install_glue_sync()
        _install_error_names()
        _install_sfn_key_casing()
        _install_json_outputs()
        _install_crawl_status_names()
        _install_lambda_in_process()
        _install_job_run_error_message()
        _installed = True


def _install_glue_sync() -> None:
    # The Glue integration only lists Sync; the callback base class then reaches for a
    # WaitForTaskToken-only code path. Listing it makes `.sync` run the real sync resolver.
    patterns = glue_service._SUPPORTED_INTEGRATION_PATTERNS
    patterns.add(ResourceCondition.WaitForTaskToken)  # type: ignore[arg-type]  # moto types it as str


def _install_error_names() -> None:
    aws_sdk_service._SERVICE_ERROR_NAMES["glue"] = "Glue"


def _install_sfn_key_casing() -> None:
    cls = sfn_service.StateTaskServiceSfn
    original_params = cls._normalise_parameters
    original_response = cls._normalise_response

    def normalise_parameters(self, parameters, boto_service_name=None, service_action_name=None):  # type: ignore[no-untyped-def]
        original_params(self, parameters, boto_service_name, service_action_name)
        # Step Functions spells StateMachineArn/Name/Input; the boto3 sfn client stateMachineArn/...
        for key in list(parameters):
            parameters[key[:1].lower() + key[1:]] = parameters.pop(key)

    def normalise_response(self, response, boto_service_name=None, service_action_name=None):  # type: ignore[no-untyped-def]
        original_response(self, response, boto_service_name, service_action_name)
        if isinstance(response, dict):
            cased = _step_functions_cased(response)
            response.clear()
            response.update(cased)

    cls._normalise_parameters = normalise_parameters  # type: ignore[method-assign]
    cls._normalise_response = normalise_response  # type: ignore[method-assign]

    # The start call's own response (ExecutionArn, StartDate) is read by the sync resolvers.
    original_eval = cls._eval_service_task

    def eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):  # type: ignore[no-untyped-def]
        original_eval(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        env.stack.append(_step_functions_cased(env.stack.pop()))

    cls._eval_service_task = eval_service_task  # type: ignore[method-assign]


def _step_functions_cased(response: dict) -> dict:
    """boto3's executionArn/status/output as Step Functions spells them: ExecutionArn/Status/Output.

    Datetimes are left to the datetime-outputs shim, which every task result passes through.
    """
    return {key[:1].upper() + key[1:]: value for key, value in response.items()}


def _install_json_outputs() -> None:
    # Every service task result passes through _after_eval_execution before it reaches the state.
    cls = base_service.StateTaskService
    original = cls._after_eval_execution

    def after_eval_execution(self, env, resource_runtime_part, normalised_parameters, state_credentials):  # type: ignore[no-untyped-def]
        if env.stack:
            env.stack.append(_to_json_safe(env.stack.pop()))
        original(self, env, resource_runtime_part, normalised_parameters, state_credentials)

    cls._after_eval_execution = after_eval_execution  # type: ignore[method-assign]


_CRAWL_STATUS_TO_AWS = {"COMPLETED": "SUCCEEDED", "STOPPED": "CANCELLED", "FAILED": "FAILED"}


def _install_crawl_status_names() -> None:
    original = glue_models.FakeCrawler.as_dict

    def as_dict(self):  # type: ignore[no-untyped-def]
        data = original(self)
        last = data.get("LastCrawl")
        if last:
            moto_status = last.get("Status")
            if moto_status == "RUNNING":
                # AWS has no LastCrawl for a crawl still running: it shows the previous one.
                previous = [c for c in self.crawls[:-1] if c.status != "RUNNING"]
                if previous:
                    last = {**last, "Status": _CRAWL_STATUS_TO_AWS.get(previous[-1].status, previous[-1].status)}
                    data["LastCrawl"] = last
                else:
                    data.pop("LastCrawl")
            elif moto_status in _CRAWL_STATUS_TO_AWS:
                last["Status"] = _CRAWL_STATUS_TO_AWS[moto_status]
                message = getattr(self.crawls[-1], "error_message", None)
                if message:
                    last["ErrorMessage"] = message
        return data

    glue_models.FakeCrawler.as_dict = as_dict  # type: ignore[method-assign]


def _install_lambda_in_process() -> None:
    original = lambda_eval_utils._invoke_lambda_function

    def invoke(parameters: dict, region: str, state_credentials: Any) -> dict:
        handler = LAMBDA_HANDLERS.get(parameters.get("FunctionName", ""))
        if handler is None:
            return original(parameters, region, state_credentials)
        payload = parameters.get("Payload")
        event: dict = json.loads(payload) if isinstance(payload, (str, bytes)) else (payload or {})
        try:
            result = handler(event, None)
        except Exception as error:  # the Lambda runtime reports an unhandled error like this
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": {"errorType": type(error).__name__, "errorMessage": str(error)},
            }
        return {"StatusCode": 200, "Payload": _to_json_safe(result)}

    lambda_eval_utils._invoke_lambda_function = invoke


def _install_job_run_error_message() -> None:
    original = glue_models.FakeJobRun.as_dict

    def as_dict(run):  # type: ignore[no-untyped-def]
        data = original(run)
        message = getattr(run, "error_message", None)  # set by whatever ended the run abnormally
        if message:
            data["ErrorMessage"] = message
        return data

    glue_models.FakeJobRun.as_dict = as_dict  # type: ignore[method-assign]
