"""Every place where local runs deviate from moto 5.2.5, in one reversible registry.

Each `MotoPatch` names the gap (the AWS behaviour moto lacks), bends moto towards the AWS API
reference (never the other way round) and has its probe beside it: a function that reproduces the
gap on plain, unpatched moto and returns True while upstream still has it.

    with moto_patches.applied() as runtime:   # checks moto's version, applies every patch
        ...                                   # moto behaves as AWS does for this pipeline
    # every patched attribute is the original again

Patches are `unittest.mock.patch.object` / `patch.dict` in one `ExitStack`; nothing is patched at
import time, and each moto attribute is patched by one entry only. `local_aws()` in
localrun/deployment.py enters the registry; a moto server in the same process (the DAG tests)
enters it around the server's lifetime. tests/scenarios/test_moto_patches.py runs every probe in a
fresh interpreter and fails when one reports its gap gone: delete that entry and its probe.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, cast
from unittest import mock
from urllib.parse import parse_qs, unquote, urlparse

import moto
from botocore.exceptions import ClientError
from moto.awslambda import urls as lambda_urls
from moto.awslambda.responses import LambdaResponse
from moto.core.responses import ActionResult
from moto.core.utils import str_to_rfc_1123_datetime
from moto.glue import models as glue_models
from moto.glue import responses as glue_responses
from moto.moto_api import state_manager
from moto.s3 import exceptions as s3_exceptions
from moto.s3 import responses as s3_responses
from moto.sns import responses as sns_responses
from moto.stepfunctions import exceptions as sfn_exceptions
from moto.stepfunctions.parser import models as sfn_parser_models
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

from localrun import limits, local_logs, moto_redrive, permissions
from localrun.assembly import ACCOUNT_ID, PARTITION
from localrun.glue_standin import LocalGlue

MOTO_VERSION = "5.2.5"  # the version every patch and probe here was written against (constraints.txt)

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


@contextlib.contextmanager
def applied(entries: Sequence[MotoPatch] | None = None) -> Iterator[LocalRuntime]:
    """Apply every patch (or only `entries`); leaving undoes them all. Not re-entrant."""
    global _active
    if moto.__version__ != MOTO_VERSION:
        raise MotoVersionError(
            f"localrun/moto_patches.py is written for moto {MOTO_VERSION}, this environment has moto "
            f"{moto.__version__}: install the pinned version (constraints.txt), or upgrade on purpose by "
            "running tests/scenarios/test_moto_patches.py and updating the registry and MOTO_VERSION"
        )
    with ExitStack() as stack:
        runtime = LocalRuntime(stack=stack)
        with _lock:
            if _active is not None:
                raise RuntimeError("moto_patches.applied() is already entered: leave it before entering again")
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


def _to_json_safe(value: Any) -> Any:
    """What a Step Functions state holds: JSON, with timestamps as ISO-8601 strings."""
    return json.loads(to_json_str(value))


# -- Step Functions ----------------------------------------------------------------------------
def _apply_glue_sync(runtime: LocalRuntime) -> None:
    # The Glue integration lists only Sync; the callback base class then reaches for a
    # WaitForTaskToken-only code path. Listing it makes `.sync` run the real sync resolver.
    # Read when a Glue task state is built, i.e. when an execution parses its definition.
    patterns = {*glue_service._SUPPORTED_INTEGRATION_PATTERNS, ResourceCondition.WaitForTaskToken}
    runtime.replace(glue_service, "_SUPPORTED_INTEGRATION_PATTERNS", patterns)


def _probe_glue_sync() -> bool:
    with _plain_moto() as clients:
        clients["glue"].create_job(
            Name="j", Role=_ROLE, Command={"Name": "glueetl", "ScriptLocation": "s3://probe-bucket/s.py"}
        )
        task = {"Resource": "arn:aws:states:::glue:startJobRun.sync", "Parameters": {"JobName": "j"}}
        return _run_task(clients, "gluesync", task)["status"] != "SUCCEEDED"


def _apply_error_names(runtime: LocalRuntime) -> None:
    runtime.update(aws_sdk_service._SERVICE_ERROR_NAMES, {"glue": "Glue"})


def _probe_error_names() -> bool:
    with _plain_moto() as clients:
        task = {"Resource": "arn:aws:states:::aws-sdk:glue:getCrawler", "Parameters": {"Name": "missing"}}
        return str(_run_task(clients, "sdkerr", task).get("error", "")).startswith("glue.")


def _apply_sfn_key_casing(runtime: LocalRuntime) -> None:
    cls = sfn_service.StateTaskServiceSfn
    original_params = cls._normalise_parameters
    original_response = cls._normalise_response
    original_eval = cls._eval_service_task

    def normalise_parameters(
        self: Any, parameters: dict, boto_service_name: Any = None, service_action_name: Any = None
    ) -> None:
        original_params(self, parameters, boto_service_name, service_action_name)
        # Step Functions spells StateMachineArn/Name/Input; the boto3 sfn client stateMachineArn/...
        for key in list(parameters):
            parameters[key[:1].lower() + key[1:]] = parameters.pop(key)

    def normalise_response(
        self: Any, response: Any, boto_service_name: Any = None, service_action_name: Any = None
    ) -> None:
        original_response(self, response, boto_service_name, service_action_name)
        if isinstance(response, dict):
            cased = _step_functions_cased(response)
            response.clear()
            response.update(cased)

    def eval_service_task(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: Any, state_credentials: Any
    ) -> None:
        # The start call's own response (ExecutionArn, StartDate) is read by the sync resolvers.
        original_eval(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        env.stack.append(_step_functions_cased(env.stack.pop()))

    runtime.replace(cls, "_normalise_parameters", normalise_parameters)
    runtime.replace(cls, "_normalise_response", normalise_response)
    runtime.replace(cls, "_eval_service_task", eval_service_task)


def _step_functions_cased(response: dict) -> dict:
    """boto3's executionArn/status/output as Step Functions spells them: ExecutionArn/Status/Output.

    Datetimes are left to the datetime-outputs patch, which every task result passes through.
    """
    return {key[:1].upper() + key[1:]: value for key, value in response.items()}


def _probe_sfn_key_casing() -> bool:
    with _plain_moto() as clients:
        child = _create_machine(clients, "child", {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
        task = {
            "Resource": "arn:aws:states:::states:startExecution.sync:2",
            "Parameters": {"StateMachineArn": child, "Name": "c1", "Input": {}},
        }
        return _run_task(clients, "parent", task)["status"] != "SUCCEEDED"


def _apply_aws_sdk_sfn_keys(runtime: LocalRuntime) -> None:
    # AWS SDK integrations spell every request and response member with a capital first letter
    # (ExecutionArn, Status); boto3's Step Functions client spells them executionArn, status.
    cls = aws_sdk_service.StateTaskServiceAwsSdk
    original = cls._eval_service_task

    def eval_service_task(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: Any, state_credentials: Any
    ) -> None:
        if self.resource.api_name != "sfn":
            original(self, env, resource_runtime_part, normalised_parameters, state_credentials)
            return
        boto_cased = {key[:1].lower() + key[1:]: value for key, value in normalised_parameters.items()}
        original(self, env, resource_runtime_part, boto_cased, state_credentials)
        env.stack.append(_step_functions_cased(env.stack.pop()))

    runtime.replace(cls, "_eval_service_task", eval_service_task)


def _probe_aws_sdk_sfn_keys() -> bool:
    with _plain_moto() as clients:
        target = _create_machine(clients, "target", {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
        execution = clients["stepfunctions"].start_execution(stateMachineArn=target, name="t")["executionArn"]
        task = {
            "Resource": "arn:aws:states:::aws-sdk:sfn:describeExecution",
            "Parameters": {"ExecutionArn": execution},
            "ResultSelector": {"status.$": "$.Status"},
        }
        return _run_task(clients, "describe", task)["status"] != "SUCCEEDED"


def _apply_json_outputs(runtime: LocalRuntime) -> None:
    # Every service task result passes through _after_eval_execution before it reaches the state.
    cls = base_service.StateTaskService
    original = cls._after_eval_execution

    def after_eval_execution(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: Any, state_credentials: Any
    ) -> None:
        if env.stack:
            env.stack.append(_to_json_safe(env.stack.pop()))
        original(self, env, resource_runtime_part, normalised_parameters, state_credentials)

    runtime.replace(cls, "_after_eval_execution", after_eval_execution)


def _probe_json_outputs() -> bool:
    with _plain_moto() as clients:
        _create_crawler(clients)
        task = {"Resource": "arn:aws:states:::aws-sdk:glue:getCrawler", "Parameters": {"Name": "c"}}
        return _run_task(clients, "dates", task)["status"] != "SUCCEEDED"


# StartExecution's `name` (AWS Step Functions API reference, StartExecution; botocore's model has
# min 1, max 80): a length outside 1-80 fails the request's validation (ValidationException, as
# moto's non-executing backend reports it too); a name holding white space, brackets, wildcards,
# the special characters below or control characters is InvalidName.
_NAME_FORBIDDEN = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")


def check_execution_name(name: str | None) -> None:
    """Raise what AWS StartExecution raises for `name` (None: AWS generates a name)."""
    if name is None:
        return
    if len(name) < 1:
        raise sfn_exceptions.ValidationException(
            f"1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1"
        )
    if len(name) > 80:
        raise sfn_exceptions.NameTooLongException(name)
    if _NAME_FORBIDDEN.search(name):
        raise sfn_exceptions.InvalidName(f"Invalid Name: '{name}'")


def _apply_execution_names(runtime: LocalRuntime) -> None:
    # StartExecution, from the API and from `states:startExecution(.sync:2)` tasks alike (both reach
    # the backend through moto's StartExecution response), validates the name as AWS does.
    cls = sfn_parser_models.StepFunctionsParserBackend
    original = cls.start_execution

    def start_execution(backend: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any) -> Any:
        check_execution_name(name)
        return original(backend, state_machine_arn, name, *args, **kwargs)

    runtime.replace(cls, "start_execution", start_execution)


def _probe_execution_names() -> bool:
    with _plain_moto() as clients:
        arn = _create_machine(clients, "names", {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
        accepted = []
        for name in ("x" * 81, "white space", "colon:name"):
            with contextlib.suppress(clients["stepfunctions"].exceptions.ClientError):
                clients["stepfunctions"].start_execution(stateMachineArn=arn, name=name)
                accepted.append(name)
        return bool(accepted)


def _apply_lambda_in_process(runtime: LocalRuntime) -> None:
    original = lambda_eval_utils._invoke_lambda_function

    def invoke(parameters: dict, region: str, state_credentials: Any) -> Any:
        handler = runtime.lambda_handlers.get(parameters.get("FunctionName", ""))
        if handler is None:
            return original(parameters, region, state_credentials)
        payload = parameters.get("Payload")
        event: dict = json.loads(payload) if isinstance(payload, (str, bytes)) else (payload or {})
        # The caller's lambda:InvokeFunction and Lambda's payload limits (localrun/permissions.py, limits.py).
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
        return {"StatusCode": 200, "Payload": _to_json_safe(result)}

    runtime.replace(lambda_eval_utils, "_invoke_lambda_function", invoke)


# -- Glue ----------------------------------------------------------------------------------------
_CRAWL_STATUS_TO_AWS = {"COMPLETED": "SUCCEEDED", "STOPPED": "CANCELLED", "FAILED": "FAILED"}
_NEVER = {"progression": "manual", "times": 10**9}  # moto must not advance these records itself


def _apply_crawl_status_names(runtime: LocalRuntime) -> None:
    original = glue_models.FakeCrawler.as_dict

    def as_dict(crawler: Any) -> dict:
        data = original(crawler)
        last = data.get("LastCrawl")
        if last:
            moto_status = last.get("Status")
            if moto_status == "RUNNING":
                # AWS has no LastCrawl for a crawl still running: it shows the previous one.
                previous = [c for c in crawler.crawls[:-1] if c.status != "RUNNING"]
                if previous:
                    last = {**last, "Status": _CRAWL_STATUS_TO_AWS.get(previous[-1].status, previous[-1].status)}
                    data["LastCrawl"] = last
                else:
                    data.pop("LastCrawl")
            elif moto_status in _CRAWL_STATUS_TO_AWS:
                last["Status"] = _CRAWL_STATUS_TO_AWS[moto_status]
                message = getattr(crawler.crawls[-1], "error_message", None)
                if message:
                    last["ErrorMessage"] = message
        return data

    runtime.replace(glue_models.FakeCrawler, "as_dict", as_dict)


def _probe_crawl_status_names() -> bool:
    with _plain_moto() as clients:
        _create_crawler(clients)
        state_manager.set_transition(model_name="glue::crawl", transition={"progression": "immediate"})
        clients["glue"].start_crawler(Name="c")
        return clients["glue"].get_crawler(Name="c")["Crawler"].get("LastCrawl", {}).get("Status") != "SUCCEEDED"


def _apply_job_run_error_message(runtime: LocalRuntime) -> None:
    original = glue_models.FakeJobRun.as_dict

    def as_dict(run: Any) -> dict:
        data = original(run)
        message = getattr(run, "error_message", None)  # set by whatever ended the run abnormally
        if message:
            data["ErrorMessage"] = message
        return data

    runtime.replace(glue_models.FakeJobRun, "as_dict", as_dict)


def _probe_job_run_error_message() -> bool:
    with _plain_moto() as clients:
        glue = clients["glue"]
        glue.create_job(Name="j", Role=_ROLE, Command={"Name": "glueetl", "ScriptLocation": "s3://probe-bucket/s.py"})
        run_id = glue.start_job_run(JobName="j")["JobRunId"]
        # moto never fails a run itself: end it FAILED, with its reason, on its own record (as the
        # Glue stand-in does), as AWS would on an error.
        run: Any = glue_models.glue_backends[ACCOUNT_ID][_REGION].jobs["j"].job_runs[0]
        run.status, run.error_message = "FAILED", "AnalysisException: path does not exist"
        return "ErrorMessage" not in glue.get_job_run(JobName="j", RunId=run_id)["JobRun"]


def _apply_crawler_runs(runtime: LocalRuntime) -> None:
    # The stand-in (localrun/glue_standin.py) decides when a crawl ends, and how (fault knobs).
    runtime.update(state_manager._transitions, {"glue::crawl": _NEVER})
    original_start = glue_models.FakeCrawler.start_crawler
    original_get = glue_responses.GlueResponse.get_crawler

    def start_crawler(crawler: Any) -> None:
        runtime.glue.start_crawler(original_start, crawler)

    def get_crawler(response: Any) -> Any:  # each GetCrawler call is one poll of the crawl
        crawler = response.glue_backend.crawlers.get(response.parameters.get("Name"))
        if crawler is not None:
            runtime.glue.crawler_polled(crawler)
        return original_get(response)

    runtime.replace(glue_models.FakeCrawler, "start_crawler", start_crawler)
    runtime.replace(glue_responses.GlueResponse, "get_crawler", get_crawler)


def _probe_crawler_runs() -> bool:
    with _plain_moto() as clients:
        clients["s3"].create_bucket(Bucket=_BUCKET)
        clients["s3"].put_object(Bucket=_BUCKET, Key="landing/orders.csv", Body=b"order_id,amount\n1,2.50\n")
        clients["glue"].create_database(DatabaseInput={"Name": "db"})
        _create_crawler(clients)
        state_manager.set_transition(model_name="glue::crawl", transition={"progression": "immediate"})
        clients["glue"].start_crawler(Name="c")
        clients["glue"].get_crawler(Name="c")  # the crawl has ended by now
        return clients["glue"].get_tables(DatabaseName="db")["TableList"] == []  # and crawled nothing


def _apply_job_runs(runtime: LocalRuntime) -> None:
    # The stand-in decides how a run ends and writes what the transform would (fault knobs).
    runtime.update(state_manager._transitions, {"glue::job_run": _NEVER})
    original_start = glue_models.FakeJob.start_job_run
    original_get = glue_models.FakeJob.get_job_run

    def start_job_run(job: Any, **kwargs: Any) -> str:
        return runtime.glue.start_job_run(original_start, job, **kwargs)

    def get_job_run(job: Any, run_id: str) -> Any:
        run = original_get(job, run_id)
        runtime.glue.job_run_polled(job, run)
        return run

    runtime.replace(glue_models.FakeJob, "start_job_run", start_job_run)
    runtime.replace(glue_models.FakeJob, "get_job_run", get_job_run)


_JOB_SCRIPT = b"""import boto3
boto3.client("s3").put_object(Bucket="probe-bucket", Key="out/written-by-the-job", Body=b"1")
"""


def _probe_job_runs() -> bool:
    with _plain_moto() as clients:
        clients["s3"].create_bucket(Bucket=_BUCKET)
        clients["s3"].put_object(Bucket=_BUCKET, Key="job.py", Body=_JOB_SCRIPT)
        glue = clients["glue"]
        glue.create_job(Name="j", Role=_ROLE, Command={"Name": "glueetl", "ScriptLocation": "s3://probe-bucket/job.py"})
        state_manager.set_transition(model_name="glue::job_run", transition={"progression": "immediate"})
        run_id = glue.start_job_run(JobName="j")["JobRunId"]
        state = glue.get_job_run(JobName="j", RunId=run_id)["JobRun"]["JobRunState"]
        written = clients["s3"].list_objects_v2(Bucket=_BUCKET, Prefix="out/").get("KeyCount", 0)
        return state == "SUCCEEDED" and written == 0  # "succeeded" without running the script


# -- Distributed Map ---------------------------------------------------------------------------
# moto 5.2.5's ASL grammar has no ItemBatcher, accepts ExecutionType STANDARD only for child
# workflows, reads ToleratedFailurePercentage only as a float literal (AWS and CDK write 10), never
# fails a map run over its tolerated failures, and its ResultWriter writes the manifest but no
# result files. The definition keeps the AWS features; here moto is taught them: the definition is
# rewritten for moto's parser (batcher set aside, children STANDARD, percentage a float) and the
# map run batches items, applies ItemSelector per item, enforces the threshold and writes results.


def rewrite_distributed_maps(definition: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(a definition moto parses, {Map state name: its ItemBatcher}) for an AWS definition."""
    rewritten = json.loads(json.dumps(definition))
    batchers: dict[str, dict[str, Any]] = {}

    def visit(asl: dict[str, Any]) -> None:
        for name, state in asl.get("States", {}).items():
            processor = state.get("ItemProcessor") or {}
            config = processor.get("ProcessorConfig") or {}
            if state.get("Type") == "Map" and config.get("Mode") == "DISTRIBUTED":
                if "ItemBatcher" in state:
                    batchers[name] = state.pop("ItemBatcher")
                if config.get("ExecutionType") == "EXPRESS":
                    config["ExecutionType"] = "STANDARD"  # runs the same here; billing differs on AWS
                if isinstance(state.get("ToleratedFailurePercentage"), int):
                    state["ToleratedFailurePercentage"] = float(state["ToleratedFailurePercentage"])
            for inner in [processor, state.get("Iterator") or {}, *state.get("Branches", [])]:
                visit(inner)

    visit(rewritten)
    return rewritten, batchers


def _apply_distributed_map(runtime: LocalRuntime) -> None:
    batchers = _remember_item_batchers(runtime)

    def batcher_for(env: Any, state_name: str) -> dict[str, Any] | None:
        machine_arn = env.states.context_object.context_object_data["StateMachine"]["Id"]
        return batchers.get((machine_arn, state_name))

    _batch_map_runs(runtime, batcher_for)
    _select_items_per_batch(runtime, batcher_for)


def _remember_item_batchers(runtime: LocalRuntime) -> dict[tuple[str, str], dict[str, Any]]:
    """Definitions rewritten for moto's parser; each Map state's ItemBatcher kept aside."""
    batchers: dict[tuple[str, str], dict[str, Any]] = {}  # (state machine ARN, Map state) -> ItemBatcher
    backend_cls = sfn_parser_models.StepFunctionsParserBackend
    original_create = backend_cls.create_state_machine

    def create_state_machine(self: Any, name: str, definition: str, *args: Any, **kwargs: Any) -> Any:
        rewritten, found = rewrite_distributed_maps(json.loads(definition))
        machine = original_create(self, name, json.dumps(rewritten), *args, **kwargs)
        for state, batcher in found.items():
            batchers[(machine.arn, state)] = batcher
        return machine

    runtime.replace(backend_cls, "create_state_machine", create_state_machine)

    return batchers


def _batch_map_runs(runtime: LocalRuntime, batcher_for: Callable[[Any, str], dict[str, Any] | None]) -> None:
    """Items in batches, one child per batch; a run over its tolerated failures fails as on AWS."""
    from moto.stepfunctions.parser.api import HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        distributed_iteration_component as iteration,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    component = iteration.DistributedIterationComponent
    original_map_run = component._map_run

    def map_run(self: Any, env: Any, eval_input: Any) -> None:
        batcher = batcher_for(env, eval_input.state_name)
        if batcher:  # AWS: each child workflow gets {"Items": [...]} of at most MaxItemsPerBatch items
            items = env.stack.pop()
            size = int(batcher.get("MaxItemsPerBatch") or len(items) or 1)
            env.stack.append([items[i : i + size] for i in range(0, len(items), size)])
        original_map_run(self, env, eval_input)
        outputs = env.stack[-1]
        failed = sum(1 for output in outputs if output is None)
        count, percentage = eval_input.tolerated_failure_count or 0, eval_input.tolerated_failure_percentage or 0
        if outputs and failed > count and failed * 100.0 / len(outputs) > percentage:
            error = StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold)
            cause = f"{failed} of {len(outputs)} child workflow executions failed (tolerated: {count}, {percentage}%)"
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=error,
                    event_type=HistoryEventType.MapRunFailed,
                    event_details=cast(
                        EventDetails, {"mapRunFailedEventDetails": {"error": error.error_name, "cause": cause}}
                    ),
                )
            )

    runtime.replace(component, "_map_run", map_run)


def _select_items_per_batch(runtime: LocalRuntime, batcher_for: Callable[[Any, str], dict[str, Any] | None]) -> None:
    """A child's input is {"Items": [...]} with ItemSelector applied to each item (AWS's order)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
        distributed_item_processor as processor,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
        distributed_item_processor_worker as worker_module,
    )
    from moto.stepfunctions.parser.asl.eval.states import ItemData, MapData

    processor_cls = processor.DistributedItemProcessor
    original_create_worker = processor_cls._create_worker

    def create_worker(self: Any, env: Any, eval_input: Any, job_pool: Any) -> Any:
        worker: Any = original_create_worker(self, env, eval_input, job_pool)
        worker.local_batcher = batcher_for(env, eval_input.state_name)
        return worker

    runtime.replace(processor_cls, "_create_worker", create_worker)

    worker_cls = worker_module.DistributedItemProcessorWorker
    original_eval_input = worker_cls._eval_input

    def eval_input_(self: Any, env_frame: Any) -> None:
        batcher = getattr(self, "local_batcher", None)
        if not batcher:
            original_eval_input(self, env_frame)
            return
        context = env_frame.states.context_object.context_object_data
        job_index = context["Map"]["Item"]["Index"]
        batch, map_state_input, items = env_frame.states.get_input(), self._env.stack[-1], []
        for index, raw in enumerate(batch):  # ItemSelector applies to each item, then items are batched
            context["Map"] = MapData(Item=ItemData(Index=index, Value=raw))
            if self._item_selector is None:
                items.append(raw)
                continue
            depth = len(env_frame.stack)
            env_frame.states.reset(input_value=map_state_input)
            env_frame.stack.append(map_state_input)
            self._item_selector.eval(env_frame)
            items.append(env_frame.stack[-1])
            del env_frame.stack[depth:]
        child_input = {"Items": items, **({"BatchInput": batcher["BatchInput"]} if "BatchInput" in batcher else {})}
        self._map_run_record.local_inputs = getattr(self._map_run_record, "local_inputs", {})
        self._map_run_record.local_inputs[job_index] = child_input
        env_frame.stack.append(child_input)
        env_frame.states.reset(input_value=child_input)

    runtime.replace(worker_cls, "_eval_input", eval_input_)


_DISTRIBUTED_MAP = {
    "StartAt": "Each",
    "States": {
        "Each": {
            "Type": "Map",
            "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "b"}},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Pass",
                "States": {"Pass": {"Type": "Pass", "End": True}},
            },
            "End": True,
        }
    },
}


def _probe_distributed_map() -> bool:
    """Still a gap while moto's parser refuses any of ItemBatcher, EXPRESS children, an integer percentage."""
    variants = []
    for change in ("batcher", "express", "percentage"):
        definition = json.loads(json.dumps(_DISTRIBUTED_MAP))
        each = definition["States"]["Each"]
        if change == "batcher":
            each["ItemBatcher"] = {"MaxItemsPerBatch": 2}
        elif change == "express":
            each["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] = "EXPRESS"
        else:
            each["ToleratedFailurePercentage"] = 10
        variants.append(definition)
    with _plain_moto() as clients:
        refused = 0
        for index, definition in enumerate(variants):
            try:
                _create_machine(clients, f"map{index}", definition)
            except ClientError:  # moto reports its parser's refusal without an error code
                refused += 1
        return refused > 0


def _apply_result_writer(runtime: LocalRuntime) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
        resource_eval_s3,
    )
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    cls = resource_eval_s3.ResourceEvalS3

    def handle_put_object(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
        """As AWS writes them: <prefix><map run id>/manifest.json and SUCCEEDED_0.json / FAILED_0.json."""
        parameters, outputs = env.stack.pop(), env.stack.pop()
        s3 = boto_client_for(service="s3", region=resource_runtime_part.region, state_credentials=state_credentials)
        record = env.map_run_record_pool_manager.get_all().pop()
        inputs = getattr(record, "local_inputs", {})
        prefix = parameters.get("Prefix", "")
        prefix = prefix if prefix in ("", None) or prefix.endswith("/") else prefix + "/"
        folder = f"{prefix or ''}{record.map_run_arn.split(':')[-1]}/"
        files: dict[str, list[dict[str, object]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        for status in ("SUCCEEDED", "FAILED"):
            children = [
                {
                    "ExecutionArn": f"{record.map_run_arn}:{index}",
                    "Name": str(index),
                    "Input": to_json_str(inputs.get(index, {})),
                    "Status": status,
                    **({"Output": to_json_str(output)} if status == "SUCCEEDED" else {}),
                }
                for index, output in enumerate(outputs)
                if (output is None) == (status == "FAILED")
            ]
            if children:
                body = json.dumps(children).encode()
                key = f"{folder}{status}_0.json"
                s3.put_object(Bucket=parameters["Bucket"], Key=key, Body=body)
                files[status].append({"Key": key, "Size": len(body)})
        manifest_key = f"{folder}manifest.json"
        manifest = {"DestinationBucket": parameters["Bucket"], "MapRunArn": record.map_run_arn, "ResultFiles": files}
        s3.put_object(Bucket=parameters["Bucket"], Key=manifest_key, Body=json.dumps(manifest).encode())
        env.stack.append(
            {
                "MapRunArn": record.map_run_arn,
                "ResultWriterDetails": {"Bucket": parameters["Bucket"], "Key": manifest_key},
            }
        )

    runtime.replace(cls, "_handle_put_object", staticmethod(handle_put_object))


def _probe_result_writer() -> bool:
    """Still a gap while a map run's ResultWriter manifest lists no result file for a child that succeeded."""
    definition = json.loads(json.dumps(_DISTRIBUTED_MAP))
    each = definition["States"]["Each"]
    each["ItemReader"]["Parameters"] = {"Bucket": _BUCKET}
    each["ResultWriter"] = {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": _BUCKET, "Prefix": "r"},
    }
    with _plain_moto() as clients:
        clients["s3"].create_bucket(Bucket=_BUCKET)
        clients["s3"].put_object(Bucket=_BUCKET, Key="in/a.csv", Body=b"x")
        arn = _create_machine(clients, "writer", definition)
        execution = clients["stepfunctions"].start_execution(stateMachineArn=arn, name="w")["executionArn"]
        deadline = time.monotonic() + 30
        while clients["stepfunctions"].describe_execution(executionArn=execution)["status"] == "RUNNING":
            if time.monotonic() > deadline:
                return True
            time.sleep(0.1)
        manifests = [
            o["Key"]
            for o in clients["s3"].list_objects_v2(Bucket=_BUCKET, Prefix="r/").get("Contents", [])
            if o["Key"].endswith("manifest.json")
        ]
        if not manifests:
            return True
        body = json.loads(clients["s3"].get_object(Bucket=_BUCKET, Key=manifests[0])["Body"].read())
        return not body["ResultFiles"]["SUCCEEDED"]


def _apply_s3_listing_reader(runtime: LocalRuntime) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval import resource_eval_s3

    cls = resource_eval_s3.ResourceEvalS3

    def handle_list_objects_v2(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
        """Every object under the prefix, page after page; none is an empty list (AWS: a map over 0 items)."""
        s3 = cls._get_s3_client(resource_runtime_part=resource_runtime_part, state_credentials=state_credentials)
        parameters, contents = env.stack.pop(), []
        for page in s3.get_paginator("list_objects_v2").paginate(**parameters):
            contents += page.get("Contents", [])
        env.stack.append(contents)

    runtime.replace(cls, "_handle_list_objects_v2", staticmethod(handle_list_objects_v2))


def _probe_s3_listing_reader() -> bool:
    """Still a gap while a Distributed Map over an empty prefix fails (KeyError 'Contents')."""
    definition = json.loads(json.dumps(_DISTRIBUTED_MAP))
    definition["States"]["Each"]["ItemReader"]["Parameters"] = {"Bucket": _BUCKET, "Prefix": "nothing-here/"}
    with _plain_moto() as clients:
        clients["s3"].create_bucket(Bucket=_BUCKET)
        arn = _create_machine(clients, "empty-listing", definition)
        execution = clients["stepfunctions"].start_execution(stateMachineArn=arn, name="e")["executionArn"]
        deadline = time.monotonic() + 30
        while (status := clients["stepfunctions"].describe_execution(executionArn=execution)["status"]) == "RUNNING":
            if time.monotonic() > deadline:
                return True
            time.sleep(0.1)
        return status != "SUCCEEDED"


# -- What only the account can say (make preflight, localrun/preflight.py) ----------------------
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

    with _plain_moto():
        try:
            boto3.client("lambda").get_account_settings()
        except ClientError:
            return True
        return False


_PENDING = "PendingConfirmation"


def _listed(subscription: Any) -> dict[str, str]:
    """A subscription as ListSubscriptions(ByTopic) shows it: an unconfirmed one has no ARN yet."""
    pending = subscription.protocol in ("email", "email-json") and not subscription.confirmed
    return {
        "SubscriptionArn": _PENDING if pending else subscription.arn,
        "Owner": subscription.owner,
        "Protocol": subscription.protocol,
        "Endpoint": subscription.endpoint,
        "TopicArn": subscription.topic_arn,
    }


def _apply_email_confirmation(runtime: LocalRuntime) -> None:
    # Only the API's answer changes (moto's own publishing lists subscriptions too, and delivers).
    # The recipient's click is `subscription.confirmed = True` on moto's model (no e-mail is sent).
    for method in ("list_subscriptions", "list_subscriptions_by_topic"):
        original = getattr(sns_responses.SNSResponse, method)

        def listed(self: Any, _original: Any = original) -> ActionResult:
            result = cast(dict[str, Any], _original(self).result)
            return ActionResult({**result, "Subscriptions": [_listed(s) for s in result["Subscriptions"]]})

        runtime.replace(sns_responses.SNSResponse, method, listed)


def _probe_email_confirmation() -> bool:
    import boto3

    with _plain_moto():
        sns = boto3.client("sns")
        topic = sns.create_topic(Name="probe")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
        listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        return listed[0]["SubscriptionArn"] != _PENDING


# -- S3: the copy conditions admission relies on (the key limit: localrun/limits.py) ----------------


def _copy_source(response: Any) -> Any:
    """The object a CopyObject / UploadPartCopy request names (as moto parses x-amz-copy-source), or None."""
    copy_source = response.headers.get("x-amz-copy-source")
    if isinstance(copy_source, bytes):
        copy_source = copy_source.decode("utf-8")
    parsed = urlparse(copy_source)
    bucket, _, key = unquote(parsed.path).lstrip("/").partition("/")
    version_id = parse_qs(parsed.query).get("versionId", [None])[0]
    return response.backend.get_object(bucket, key, version_id=version_id)


def _check_copy_source_conditions(response: Any) -> None:
    """x-amz-copy-source-if-match / -if-unmodified-since: 412 PreconditionFailed when they do not hold."""
    source = _copy_source(response)
    if source is None:
        return  # moto's own NoSuchKey follows
    if_match = response.headers.get("x-amz-copy-source-if-match")
    if if_match is not None and if_match.strip('"') != source.etag.strip('"'):
        raise s3_exceptions.PreconditionFailed("x-amz-copy-source-If-Match")
    unmodified_since = response.headers.get("x-amz-copy-source-if-unmodified-since")
    if unmodified_since is not None:
        if source.last_modified.replace(microsecond=0) > str_to_rfc_1123_datetime(unmodified_since):
            raise s3_exceptions.PreconditionFailed("x-amz-copy-source-If-Unmodified-Since")


def _apply_s3_copy_conditions(runtime: LocalRuntime) -> None:
    cls = s3_responses.S3Response
    for name in ("copy_object", "upload_part_copy"):
        original = getattr(cls, name)

        def conditional(self: Any, _original: Callable[[Any], Any] = original) -> Any:
            _check_copy_source_conditions(self)
            return _original(self)

        runtime.replace(cls, name, conditional)


def _probe_s3_copy_conditions() -> bool:
    """Still a gap while a copy whose CopySourceIfMatch names another ETag succeeds."""
    with _plain_moto() as clients:
        s3 = clients["s3"]
        s3.create_bucket(Bucket=_BUCKET)
        s3.put_object(Bucket=_BUCKET, Key="source", Body=b"v1")
        try:
            s3.copy_object(
                CopySource={"Bucket": _BUCKET, "Key": "source"}, Bucket=_BUCKET, Key="copy", CopySourceIfMatch='"0"'
            )
        except ClientError:
            return False
        return True


S3_COPY_CONDITIONS = MotoPatch(
    "s3-copy-source-conditions",
    "CopyObject and UploadPartCopy ignore x-amz-copy-source-if-match and -if-unmodified-since; S3 "
    "refuses the copy with 412 PreconditionFailed when the source is no longer that version",
    _apply_s3_copy_conditions,
    _probe_s3_copy_conditions,
)
S3_KEY_LENGTH = MotoPatch("s3-key-length", limits.S3_KEY_GAP, limits.apply_s3_key_length, limits.probe_s3_key_length)


REGISTRY: tuple[MotoPatch, ...] = (
    S3_COPY_CONDITIONS,
    S3_KEY_LENGTH,
    MotoPatch(
        "glue-startJobRun-sync",
        "glue:startJobRun.sync crashes: 'NoneType' object has no attribute 'interrupt_all'",
        _apply_glue_sync,
        _probe_glue_sync,
    ),
    MotoPatch(
        "aws-sdk-glue-error-names",
        "aws-sdk errors from Glue are named glue.X; AWS names them Glue.X",
        _apply_error_names,
        _probe_error_names,
    ),
    MotoPatch(
        "sfn-startExecution-sync2-keys",
        "states:startExecution.sync:2 fails States.Runtime 'StateMachineArn': "
        "request and response keys are not translated between Step Functions and boto3 casing",
        _apply_sfn_key_casing,
        _probe_sfn_key_casing,
    ),
    MotoPatch(
        "aws-sdk-sfn-keys",
        "aws-sdk:sfn tasks pass ExecutionArn (as AWS SDK integrations spell members) to boto3, which "
        "wants executionArn, and return status/executionArn where AWS returns Status/ExecutionArn",
        _apply_aws_sdk_sfn_keys,
        _probe_aws_sdk_sfn_keys,
    ),
    MotoPatch(
        "datetime-outputs",
        "aws-sdk and .sync outputs keep datetime objects; DescribeExecution cannot serialise them",
        _apply_json_outputs,
        _probe_json_outputs,
    ),
    MotoPatch(
        "sfn-execution-names",
        "StartExecution (API and states:startExecution tasks) accepts any name while executing; AWS "
        "rejects names longer than 80 characters and names with white space, brackets, wildcards, "
        "special or control characters (InvalidName)",
        _apply_execution_names,
        _probe_execution_names,
    ),
    MotoPatch(
        "distributed-map",
        "a Distributed Map with ItemBatcher, EXPRESS child workflows or an integer "
        "ToleratedFailurePercentage is an InvalidDefinition, and a map run never fails over its "
        "tolerated failures; AWS batches items ({Items: [...]}, ItemSelector per item), runs the "
        "children and fails the run with States.ExceedToleratedFailureThreshold",
        _apply_distributed_map,
        _probe_distributed_map,
    ),
    MotoPatch(
        "s3-listing-reader",
        "a Distributed Map's S3 listing reader fails on an empty prefix (KeyError 'Contents') and reads "
        "only the first page (1,000 objects); AWS maps over every object under the prefix, or none",
        _apply_s3_listing_reader,
        _probe_s3_listing_reader,
    ),
    MotoPatch(
        "result-writer-files",
        "a Distributed Map's ResultWriter writes manifest.json listing no result files; AWS writes "
        "SUCCEEDED_n.json / FAILED_n.json with each child execution's input, status and output",
        _apply_result_writer,
        _probe_result_writer,
    ),
    MotoPatch(
        "lambda-in-process",
        "Lambda tasks need Docker in moto; the synthesized handler runs in-process instead, its "
        "printed lines going to a logger as the Lambda runtime sends them to CloudWatch Logs",
        _apply_lambda_in_process,
        None,
        no_probe_because="reproducing it needs Docker; without Docker moto cannot invoke at all",
    ),
    MotoPatch(
        "lambda-account-settings",
        "GetAccountSettings is not implemented (404); AWS answers the account's concurrency quota and "
        "what its functions' reservations leave unreserved (make preflight reads it)",
        _apply_lambda_account_settings,
        _probe_lambda_account_settings,
    ),
    MotoPatch(
        "sns-email-confirmation",
        "an e-mail subscription is confirmed at once; AWS lists it with SubscriptionArn "
        "'PendingConfirmation' until the recipient follows the link in the confirmation message",
        _apply_email_confirmation,
        _probe_email_confirmation,
    ),
    MotoPatch(
        "sfn-redrive-execution",
        "RedriveExecution is not implemented, the context object has no Execution.RedriveCount and "
        "DescribeExecution no redrive fields; AWS resumes a failed, timed-out or aborted Standard "
        "execution from the state it stopped in, with that state's recorded input (localrun/moto_redrive.py)",
        moto_redrive.apply_redrive,
        moto_redrive.probe_redrive,
    ),
    MotoPatch(
        "sfn-status-change-events",
        'executions emit no "Step Functions Execution Status Change" event; AWS sends one to '
        "EventBridge whenever an execution's status changes (localrun/moto_redrive.py)",
        moto_redrive.apply_status_change_events,
        moto_redrive.probe_status_change_events,
    ),
    MotoPatch(
        "crawl-status-names",
        "a finished crawl reports LastCrawl.Status COMPLETED/STOPPED; AWS reports "
        "SUCCEEDED/CANCELLED/FAILED, and AWS shows no LastCrawl for a crawl still running",
        _apply_crawl_status_names,
        _probe_crawl_status_names,
    ),
    MotoPatch(
        "job-run-error-message",
        "a failed job run has no ErrorMessage in GetJobRun; AWS reports why it failed",
        _apply_job_run_error_message,
        _probe_job_run_error_message,
    ),
    MotoPatch(
        "glue-crawler-runs",
        "moto runs no crawl: a crawl ends on moto's timer, having read nothing; the Glue stand-in "
        "ends it after its GetCrawler polls, as the fault knobs say",
        _apply_crawler_runs,
        _probe_crawler_runs,
        stand_in=True,
    ),
    MotoPatch(
        "glue-job-runs",
        "moto runs no Glue script: a job run ends SUCCEEDED on moto's timer, having written nothing; "
        "the Glue stand-in ends it as the fault knobs say and writes what the transform would",
        _apply_job_runs,
        _probe_job_runs,
        stand_in=True,
    ),
    # -- permissions and limits (localrun/permissions.py, localrun/limits.py) --
    MotoPatch("iam-enforcement", permissions.GAP, permissions.apply, permissions.probe),
    MotoPatch(
        "lambda-payload-limits",
        limits.LAMBDA_GAP,
        lambda runtime: None,  # enforced inside the lambda-in-process entry, which owns the invocation
        None,
        no_probe_because="moto invokes no Lambda without Docker (see lambda-in-process)",
    ),
)


# -- probes: plain moto, no patch applied --------------------------------------------------------
_ROLE = f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/probe"
_REGION = "us-east-1"
_BUCKET = "probe-bucket"


@contextlib.contextmanager
def _plain_moto() -> Iterator[dict[str, Any]]:
    import boto3
    from moto import mock_aws

    credentials = {"AWS_ACCESS_KEY_ID": "probe", "AWS_SECRET_ACCESS_KEY": "probe", "AWS_DEFAULT_REGION": _REGION}
    with mock.patch.dict(os.environ, credentials), mock.patch.dict(state_manager._transitions):
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            yield {name: boto3.client(name) for name in ("s3", "glue", "stepfunctions")}


def _create_machine(clients: dict[str, Any], name: str, definition: dict) -> str:
    sfn = clients["stepfunctions"]
    return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=_ROLE)["stateMachineArn"]


def _create_crawler(clients: dict[str, Any]) -> None:
    clients["glue"].create_crawler(
        Name="c", Role=_ROLE, DatabaseName="db", Targets={"S3Targets": [{"Path": "s3://probe-bucket/landing/"}]}
    )


def _run_task(clients: dict[str, Any], name: str, task: dict) -> dict[str, Any]:
    """One Task state executed to its end: DescribeExecution's answer (or why it failed)."""
    sfn = clients["stepfunctions"]
    arn = _create_machine(clients, name, {"StartAt": "T", "States": {"T": {"Type": "Task", "End": True, **task}}})
    execution = sfn.start_execution(stateMachineArn=arn, name=f"{name}-run")["executionArn"]
    for _ in range(100):
        try:
            described = sfn.describe_execution(executionArn=execution)
        except Exception as error:  # DescribeExecution itself breaks on datetime outputs
            return {"status": "DESCRIBE_FAILED", "cause": str(error)}
        if described["status"] != "RUNNING":
            return dict(described)
        time.sleep(0.1)
    return {"status": "RUNNING"}


def run_probes() -> dict[str, bool]:
    """Every probe on plain moto: entry name -> whether upstream still has the gap."""
    if _active is not None:
        raise RuntimeError("the probes run on plain moto: leave moto_patches.applied() first")
    return {entry.name: entry.probe() for entry in REGISTRY if entry.probe is not None}


if __name__ == "__main__":  # python -m localrun.moto_patches: the probes' verdicts as JSON
    print(json.dumps(run_probes()))
