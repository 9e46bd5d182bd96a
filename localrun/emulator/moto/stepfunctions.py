"""Step Functions' interpreter and service integrations, bent to the AWS API reference."""

from __future__ import annotations

import contextlib
import re
import sys
import threading
from typing import Any
from unittest import mock

from moto.stepfunctions import exceptions as sfn_exceptions
from moto.stepfunctions.parser import models as sfn_parser_models
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service as base_service,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk as aws_sdk_service,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback as callback_service,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_glue as glue_service,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_sfn as sfn_service,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition

from localrun.emulator.moto.probing import (
    PROBE_ROLE,
    create_crawler,
    create_machine,
    plain_moto,
    run_task,
)
from localrun.emulator.moto.runtime import LocalRuntime, MotoPatch, to_json_safe


# -- Step Functions ----------------------------------------------------------------------------
def _apply_glue_sync(runtime: LocalRuntime) -> None:
    # The Glue integration lists only Sync; the callback base class then reaches for a
    # WaitForTaskToken-only code path. Listing it makes `.sync` run the real sync resolver.
    # Read when a Glue task state is built, i.e. when an execution parses its definition.
    patterns = {*glue_service._SUPPORTED_INTEGRATION_PATTERNS, ResourceCondition.WaitForTaskToken}
    runtime.replace(glue_service, "_SUPPORTED_INTEGRATION_PATTERNS", patterns)


def _probe_glue_sync() -> bool:
    with plain_moto() as clients:
        clients["glue"].create_job(
            Name="j", Role=PROBE_ROLE, Command={"Name": "glueetl", "ScriptLocation": "s3://probe-bucket/s.py"}
        )
        task = {"Resource": "arn:aws:states:::glue:startJobRun.sync", "Parameters": {"JobName": "j"}}
        return run_task(clients, "gluesync", task)["status"] != "SUCCEEDED"


def _apply_error_names(runtime: LocalRuntime) -> None:
    runtime.update(aws_sdk_service._SERVICE_ERROR_NAMES, {"glue": "Glue"})


def _probe_error_names() -> bool:
    with plain_moto() as clients:
        task = {"Resource": "arn:aws:states:::aws-sdk:glue:getCrawler", "Parameters": {"Name": "missing"}}
        return str(run_task(clients, "sdkerr", task).get("error", "")).startswith("glue.")


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
    with plain_moto() as clients:
        child = create_machine(clients, "child", {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
        task = {
            "Resource": "arn:aws:states:::states:startExecution.sync:2",
            "Parameters": {"StateMachineArn": child, "Name": "c1", "Input": {}},
        }
        return run_task(clients, "parent", task)["status"] != "SUCCEEDED"


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
    with plain_moto() as clients:
        target = create_machine(clients, "target", {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
        execution = clients["stepfunctions"].start_execution(stateMachineArn=target, name="t")["executionArn"]
        task = {
            "Resource": "arn:aws:states:::aws-sdk:sfn:describeExecution",
            "Parameters": {"ExecutionArn": execution},
            "ResultSelector": {"status.$": "$.Status"},
        }
        return run_task(clients, "describe", task)["status"] != "SUCCEEDED"


def _apply_json_outputs(runtime: LocalRuntime) -> None:
    # Every service task result passes through _after_eval_execution before it reaches the state.
    cls = base_service.StateTaskService
    original = cls._after_eval_execution

    def after_eval_execution(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: Any, state_credentials: Any
    ) -> None:
        if env.stack:
            env.stack.append(to_json_safe(env.stack.pop()))
        original(self, env, resource_runtime_part, normalised_parameters, state_credentials)

    runtime.replace(cls, "_after_eval_execution", after_eval_execution)


def _probe_json_outputs() -> bool:
    with plain_moto() as clients:
        create_crawler(clients)
        task = {"Resource": "arn:aws:states:::aws-sdk:glue:getCrawler", "Parameters": {"Name": "c"}}
        return run_task(clients, "dates", task)["status"] != "SUCCEEDED"


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
    with plain_moto() as clients:
        arn = create_machine(clients, "names", {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
        accepted = []
        for name in ("x" * 81, "white space", "colon:name"):
            with contextlib.suppress(clients["stepfunctions"].exceptions.ClientError):
                clients["stepfunctions"].start_execution(stateMachineArn=arn, name=name)
                accepted.append(name)
        return bool(accepted)


# A .sync task looks at its child (a stage's execution, a Glue job run) this often locally. AWS polls
# on its own schedule, unbilled; moto's 0.5 s puts up to half a second after every child's end.
SYNC_CHECK_SECONDS = 0.05


def _apply_sync_pace(runtime: LocalRuntime) -> None:
    runtime.replace(callback_service, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", SYNC_CHECK_SECONDS)


def _probe_sync_pace() -> bool:
    return bool(callback_service._DELAY_SECONDS_SYNC_CONDITION_CHECK > SYNC_CHECK_SECONDS)


# Definitions CreateStateMachine has validated in this process: a local deployment creates the same
# six on every bring-up, and moto validates each by a full ANTLR parse (0.3 s for the pipeline's).
_VALIDATED_DEFINITIONS: set[str] = set()


def _apply_validation_cache(runtime: LocalRuntime) -> None:
    backend = sfn_parser_models.StepFunctionsParserBackend
    original = backend._validate_definition

    def validate_definition(definition: str) -> None:
        if definition not in _VALIDATED_DEFINITIONS:
            original(definition)  # an invalid definition raises InvalidDefinition every time
            _VALIDATED_DEFINITIONS.add(definition)

    runtime.replace(backend, "_validate_definition", staticmethod(validate_definition))


_PROBE_DEFINITION = '{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}'


def _parses_in_two(use: Any) -> int:
    """How many ANTLR parses moto makes when `use(definition)` is done twice with one definition."""
    from moto.stepfunctions.parser.asl.parse import asl_parser

    parses = 0
    original = asl_parser.AmazonStateLanguageParser.parse

    def counting(definition: str) -> Any:
        nonlocal parses
        parses += 1
        return original(definition)

    with mock.patch.object(asl_parser.AmazonStateLanguageParser, "parse", staticmethod(counting)):
        for _ in range(2):
            use(_PROBE_DEFINITION)
    return parses


def _probe_validation_cache() -> bool:
    """Still parsing every time while the same definition validated twice costs two parses."""
    return _parses_in_two(sfn_parser_models.StepFunctionsParserBackend._validate_definition) == 2


# Parse trees of the definitions executed in this process. ANTLR's parse is most of moto's cost of
# starting an execution (the door's 15 ms, the pipeline's 65 ms, every time); the tree is read-only,
# so each execution builds its own fresh, stateful program from the shared tree.
_PARSE_TREES: dict[str, Any] = {}


def _apply_parse_cache(runtime: LocalRuntime) -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    def evaluation_entrypoint(worker: Any) -> Any:
        definition = worker._evaluation_details.state_machine_details.definition
        tree = _PARSE_TREES.get(definition)
        if tree is None:
            program, _PARSE_TREES[definition] = AmazonStateLanguageParser.parse(definition)
            return program
        return Preprocessor().visit(tree)

    runtime.replace(ExecutionWorker, "_get_evaluation_entrypoint", evaluation_entrypoint)


def _probe_parse_cache() -> bool:
    """Still parsing every time while two executions of one definition cost two parses."""
    from types import SimpleNamespace

    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    def start_execution(definition: str) -> None:
        details = SimpleNamespace(state_machine_details=SimpleNamespace(definition=definition))
        ExecutionWorker._get_evaluation_entrypoint(SimpleNamespace(_evaluation_details=details))  # type: ignore[arg-type]

    return _parses_in_two(start_execution) == 2


# One boto3 client per (service, region) for the interpreter's service calls, made under a lock.
# moto makes a new client for every Task state (a few ms each, from boto3's default session, which is
# not thread-safe); clients are, and every call still passes the IAM check of the state's role.
_CLIENTS: dict[tuple[str, str, bool], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _apply_client_cache(runtime: LocalRuntime) -> None:
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for

    def cached_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (service, region, boto_client.botocore_stubber.enabled)
        with _CLIENTS_LOCK:
            if key not in _CLIENTS:
                _CLIENTS[key] = original(region=region, service=service, state_credentials=state_credentials)
            return _CLIENTS[key]

    # The interpreter's modules import the function by name: patch each binding of it.
    owners = [module for name, module in list(sys.modules.items()) if name.startswith("moto.stepfunctions.parser")]
    for module in owners:
        if getattr(module, "boto_client_for", None) is original:
            runtime.replace(module, "boto_client_for", cached_client_for)
    runtime.stack.callback(_CLIENTS.clear)


def _probe_client_cache() -> bool:
    """Still a new client per call while two calls for one service return two clients."""
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    with plain_moto():
        return boto_client_for(region="us-east-1", service="s3") is not boto_client_for(
            region="us-east-1", service="s3"
        )


# JSONPath expressions parsed by the interpreter, by their text. moto parses a path at every use
# (InputPath, ResultPath, Parameters' "x.$", Choice variables), and jsonpath_ng builds a new ply
# parser for every parse (its grammar tables included, about 5 ms). A parsed path is read-only:
# find() and update_or_create() change the data they are given, not the expression.
_JSON_PATHS: dict[tuple[str, str], Any] = {}


def _apply_json_path_cache(runtime: LocalRuntime) -> None:
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    def cached(module: Any, kind: str) -> Any:
        original = module.parse

        def parse(path: str) -> Any:
            key = (kind, path)
            expression = _JSON_PATHS.get(key)
            if expression is None:
                expression = _JSON_PATHS[key] = original(path)  # a bad path raises every time
            return expression

        return parse

    # Two grammars: the interpreter's paths use jsonpath_ng.ext, ResultPath plain jsonpath_ng.
    runtime.replace(json_path, "parse", cached(json_path, "ext"))
    runtime.replace(result_path, "parse", cached(result_path, "plain"))
    runtime.stack.callback(_JSON_PATHS.clear)


def _probe_json_path_cache() -> bool:
    """Still building a parser per use while extracting one path twice builds two."""
    from jsonpath_ng.ext import parser as ext_parser
    from moto.stepfunctions.parser.asl.utils.json_path import extract_json

    with mock.patch.object(ext_parser, "ExtendedJsonPathParser", wraps=ext_parser.ExtendedJsonPathParser) as made:
        for _ in range(2):
            extract_json("$.a", {"a": 1})
    return made.call_count == 2


# -- the registry's entries (localrun/emulator/moto/__init__.py lists them) --
GLUE_START_JOB_RUN_SYNC = MotoPatch(
    "glue-startJobRun-sync",
    "glue:startJobRun.sync crashes: 'NoneType' object has no attribute 'interrupt_all'",
    _apply_glue_sync,
    _probe_glue_sync,
)
AWS_SDK_GLUE_ERROR_NAMES = MotoPatch(
    "aws-sdk-glue-error-names",
    "aws-sdk errors from Glue are named glue.X; AWS names them Glue.X",
    _apply_error_names,
    _probe_error_names,
)
SFN_START_EXECUTION_SYNC2_KEYS = MotoPatch(
    "sfn-startExecution-sync2-keys",
    "states:startExecution.sync:2 fails States.Runtime 'StateMachineArn': "
    "request and response keys are not translated between Step Functions and boto3 casing",
    _apply_sfn_key_casing,
    _probe_sfn_key_casing,
)
AWS_SDK_SFN_KEYS = MotoPatch(
    "aws-sdk-sfn-keys",
    "aws-sdk:sfn tasks pass ExecutionArn (as AWS SDK integrations spell members) to boto3, which "
    "wants executionArn, and return status/executionArn where AWS returns Status/ExecutionArn",
    _apply_aws_sdk_sfn_keys,
    _probe_aws_sdk_sfn_keys,
)
DATETIME_OUTPUTS = MotoPatch(
    "datetime-outputs",
    "aws-sdk and .sync outputs keep datetime objects; DescribeExecution cannot serialise them",
    _apply_json_outputs,
    _probe_json_outputs,
)
SYNC_CHECK_PACE = MotoPatch(
    "sfn-sync-check-pace",
    "a .sync task (startExecution.sync:2, glue:startJobRun.sync) notices its child's end up to 0.5 s "
    "late (moto checks every 0.5 s); a local run waits on 5 or more of them, so it checks every 0.05 s",
    _apply_sync_pace,
    _probe_sync_pace,
)
DEFINITION_VALIDATION_CACHE = MotoPatch(
    "sfn-definition-validation-cache",
    "CreateStateMachine parses a definition it validated before (0.3 s for the pipeline's); each local "
    "bring-up creates the same six, so a definition that validated once in this process is not parsed again",
    _apply_validation_cache,
    _probe_validation_cache,
)
DEFINITION_PARSE_CACHE = MotoPatch(
    "sfn-definition-parse-cache",
    "every StartExecution parses its definition again (ANTLR: 15 ms for the front door, 65 ms for the "
    "pipeline, on every upload's door); a definition's parse tree is kept per process and each "
    "execution builds its own program from it",
    _apply_parse_cache,
    _probe_parse_cache,
)
SFN_SERVICE_CLIENTS = MotoPatch(
    "sfn-service-clients",
    "every Task state creates a new boto3 client from boto3's default session (a few ms each, and that "
    "session is not thread-safe); one client per service and region serves every state",
    _apply_client_cache,
    _probe_client_cache,
)
JSON_PATH_CACHE = MotoPatch(
    "sfn-json-path-cache",
    "every use of a JSONPath (InputPath, ResultPath, Parameters, Choice) builds a new jsonpath_ng "
    "parser and parses the path again (about 5 ms, a tenth of a 1,000-upload burst's CPU); a path "
    "parsed once in this process is kept",
    _apply_json_path_cache,
    _probe_json_path_cache,
)
SFN_EXECUTION_NAMES = MotoPatch(
    "sfn-execution-names",
    "StartExecution (API and states:startExecution tasks) accepts any name while executing; AWS "
    "rejects names longer than 80 characters and names with white space, brackets, wildcards, "
    "special or control characters (InvalidName)",
    _apply_execution_names,
    _probe_execution_names,
)
