"""Distributed Map: item batches, EXPRESS children, tolerated failures, the S3 listing reader, ResultWriter files."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, cast

from botocore.exceptions import ClientError
from moto.stepfunctions.parser import models as sfn_parser_models
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

from localrun.emulator.moto.probing import (
    PROBE_BUCKET,
    create_machine,
    plain_moto,
)
from localrun.emulator.moto.runtime import LocalRuntime, MotoPatch

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


_PROBE_MAP = {
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
        definition = json.loads(json.dumps(_PROBE_MAP))
        each = definition["States"]["Each"]
        if change == "batcher":
            each["ItemBatcher"] = {"MaxItemsPerBatch": 2}
        elif change == "express":
            each["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] = "EXPRESS"
        else:
            each["ToleratedFailurePercentage"] = 10
        variants.append(definition)
    with plain_moto() as clients:
        refused = 0
        for index, definition in enumerate(variants):
            try:
                create_machine(clients, f"map{index}", definition)
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
    definition = json.loads(json.dumps(_PROBE_MAP))
    each = definition["States"]["Each"]
    each["ItemReader"]["Parameters"] = {"Bucket": PROBE_BUCKET}
    each["ResultWriter"] = {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": PROBE_BUCKET, "Prefix": "r"},
    }
    with plain_moto() as clients:
        clients["s3"].create_bucket(Bucket=PROBE_BUCKET)
        clients["s3"].put_object(Bucket=PROBE_BUCKET, Key="in/a.csv", Body=b"x")
        arn = create_machine(clients, "writer", definition)
        execution = clients["stepfunctions"].start_execution(stateMachineArn=arn, name="w")["executionArn"]
        deadline = time.monotonic() + 30
        while clients["stepfunctions"].describe_execution(executionArn=execution)["status"] == "RUNNING":
            if time.monotonic() > deadline:
                return True
            time.sleep(0.1)
        manifests = [
            o["Key"]
            for o in clients["s3"].list_objects_v2(Bucket=PROBE_BUCKET, Prefix="r/").get("Contents", [])
            if o["Key"].endswith("manifest.json")
        ]
        if not manifests:
            return True
        body = json.loads(clients["s3"].get_object(Bucket=PROBE_BUCKET, Key=manifests[0])["Body"].read())
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
    definition = json.loads(json.dumps(_PROBE_MAP))
    definition["States"]["Each"]["ItemReader"]["Parameters"] = {"Bucket": PROBE_BUCKET, "Prefix": "nothing-here/"}
    with plain_moto() as clients:
        clients["s3"].create_bucket(Bucket=PROBE_BUCKET)
        arn = create_machine(clients, "empty-listing", definition)
        execution = clients["stepfunctions"].start_execution(stateMachineArn=arn, name="e")["executionArn"]
        deadline = time.monotonic() + 30
        while (status := clients["stepfunctions"].describe_execution(executionArn=execution)["status"]) == "RUNNING":
            if time.monotonic() > deadline:
                return True
            time.sleep(0.1)
        return status != "SUCCEEDED"


# -- the registry's entries (localrun/emulator/moto/__init__.py lists them) --
DISTRIBUTED_MAP = MotoPatch(
    "distributed-map",
    "a Distributed Map with ItemBatcher, EXPRESS child workflows or an integer "
    "ToleratedFailurePercentage is an InvalidDefinition, and a map run never fails over its "
    "tolerated failures; AWS batches items ({Items: [...]}, ItemSelector per item), runs the "
    "children and fails the run with States.ExceedToleratedFailureThreshold",
    _apply_distributed_map,
    _probe_distributed_map,
)
S3_LISTING_READER = MotoPatch(
    "s3-listing-reader",
    "a Distributed Map's S3 listing reader fails on an empty prefix (KeyError 'Contents') and reads "
    "only the first page (1,000 objects); AWS maps over every object under the prefix, or none",
    _apply_s3_listing_reader,
    _probe_s3_listing_reader,
)
RESULT_WRITER_FILES = MotoPatch(
    "result-writer-files",
    "a Distributed Map's ResultWriter writes manifest.json listing no result files; AWS writes "
    "SUCCEEDED_n.json / FAILED_n.json with each child execution's input, status and output",
    _apply_result_writer,
    _probe_result_writer,
)
