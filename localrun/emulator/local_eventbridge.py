"""The local EventBridge: the assembly's rules, matched and delivered as EventBridge would.

A rule's event pattern is matched by moto's own matcher; each target is started with the input
EventBridge gives it (the event, Input, InputPath or InputTransformer), a state machine target
under its role and named as EventBridge names it, a Lambda target in-process. An event that cannot
be delivered goes to the target's dead-letter queue, with the error as EventBridge writes it; an
error a Lambda target raises goes to the function's own dead-letter queue. An upload's event goes
through the front door (stacks/pipeline/front_door.py): what its caller gets back is the pipeline
execution the door started, if any.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, cast

from botocore.exceptions import ClientError
from moto.events.models import EventPattern

from localrun.emulator import moto as moto_patches
from localrun.emulator import permissions
from localrun.emulator.assembly import ACCOUNT_ID, PARTITION, REGION, Resolver, StackTemplate
from localrun.emulator.aws_events import scheduled_event


@dataclass
class RuleSpec:
    logical_id: str
    pattern: dict[str, Any] | None
    schedule: str | None
    targets: list[dict[str, Any]]  # resolved AWS::Events::Rule Targets (Arn, Input settings, ...)
    enabled: bool = True
    arn: str = ""  # the rule's ARN (the dead-letter queue's policy names it as aws:SourceArn)
    matcher: EventPattern | None = field(init=False, repr=False)  # moto's matcher, parsed once

    def __post_init__(self) -> None:
        self.matcher = EventPattern.load(json.dumps(self.pattern)) if self.pattern is not None else None

    def matches(self, event: dict[str, Any]) -> bool:
        return self.enabled and self.matcher is not None and self.matcher.matches_event(event)  # type: ignore[arg-type]


@dataclass
class LocalEventBridge:
    """The rules of the Pipeline stack, their dead-letter queues and the functions' ones."""

    clients: dict[str, Any]
    rules: list[RuleSpec]
    queue_urls: dict[str, str] = field(default_factory=dict)  # queue ARN -> URL (the rules' DLQs)
    function_dead_letters: dict[str, str] = field(default_factory=dict)  # function ARN -> its DLQ's ARN
    front_door: str | None = None  # the front door's ARN: its executions are waited through
    door_executions: list[str] = field(default_factory=list)  # the front door's (EXPRESS) executions

    @classmethod
    def from_stack(
        cls, clients: dict[str, Any], resolver: Resolver, pipeline: StackTemplate, *, front_door: str | None = None
    ) -> LocalEventBridge:
        """The stack's rules, with its queues created on moto."""
        return cls(
            clients=clients,
            rules=_read_rules(resolver, pipeline),
            queue_urls=_create_queues(clients, resolver, pipeline),
            function_dead_letters=_function_dead_letters(resolver, pipeline),
            front_door=front_door,
        )

    def deliver(self, event: dict[str, Any]) -> list[str]:
        """EventBridge: start one execution per matching rule target, named as EventBridge would."""
        started = []
        for rule in self.rules:
            if not rule.matches(event):
                continue
            started += self._invoke_targets(rule, event)
        return started

    def route_status_change(self, event: dict[str, Any]) -> None:
        """A "Step Functions Execution Status Change" event, routed as EventBridge would.

        Only this deployment's executions: one a previous mock context left running ends in its own
        thread and would otherwise notify into this deployment's topic (its names are the same).
        """
        try:
            self.clients["stepfunctions"].describe_execution(executionArn=event["detail"]["executionArn"])
        except ClientError:
            return
        self.deliver(event)

    def schedule_tick(self) -> list[str]:
        started = []
        for rule in self.rules:
            if rule.enabled and rule.schedule:
                event = scheduled_event(rule_arn=f"arn:{PARTITION}:events:{REGION}:{ACCOUNT_ID}:rule/{rule.logical_id}")
                started += self._invoke_targets(rule, event)
        return started

    def _invoke_targets(self, rule: RuleSpec, event: dict[str, Any]) -> list[str]:
        """Start each target; an event EventBridge cannot deliver goes to the target's dead-letter queue."""
        started = []
        for target in rule.targets:
            if ":lambda:" in target["Arn"]:
                self._invoke_function(target, event)
                continue
            try:
                role = permissions.Principal(target["RoleArn"]) if "RoleArn" in target else None
                if ":sns:" in target["Arn"]:  # a Glue alarm: the (transformed) event published as the rule's role
                    body = target_input(target, event)
                    with permissions.acting_as(role):
                        self.clients["sns"].publish(
                            TopicArn=target["Arn"], Message=body if isinstance(body, str) else json.dumps(body)
                        )
                    continue
                name = eventbridge_execution_name(event)
                with permissions.acting_as(role):
                    arn = start_execution(
                        self.clients["stepfunctions"], target["Arn"], target_input(target, event), name=name
                    )
                started += self._through_door(arn) if target["Arn"] == self.front_door else [arn]
            except ClientError as error:
                dlq = target.get("DeadLetterConfig", {}).get("Arn")
                if dlq not in self.queue_urls:
                    raise
                # As EventBridge writes it: the event, and why it was not delivered, as attributes.
                code, message = error.response["Error"]["Code"], error.response["Error"]["Message"]
                with permissions.acting_as(permissions.Principal("events.amazonaws.com", source_arn=rule.arn)):
                    self._send_dead_letter(dlq, rule, target, event, code, message)
        return started

    def _through_door(self, door_execution: str) -> list[str]:
        """The pipeline execution an upload's front-door execution started: none when it coalesced
        at the door (stacks/pipeline/front_door.py). What a local caller waits for and reports is the pipeline."""
        execution = wait_execution(self.clients["stepfunctions"], door_execution, timeout_s=60)
        self.door_executions.append(door_execution)
        started = json.loads(execution.get("output") or "{}").get("started", {}).get("ExecutionArn")
        return [started] if started else []

    def _send_dead_letter(
        self, dlq: str, rule: RuleSpec, target: dict[str, Any], event: dict[str, Any], code: str, message: str
    ) -> None:
        self.clients["sqs"].send_message(
            QueueUrl=self.queue_urls[dlq],
            MessageBody=json.dumps(event),
            MessageAttributes={
                "RULE_ARN": {"DataType": "String", "StringValue": f"rule/{rule.logical_id}"},
                "TARGET_ARN": {"DataType": "String", "StringValue": target["Arn"]},
                "ERROR_CODE": {"DataType": "String", "StringValue": code},
                "ERROR_MESSAGE": {"DataType": "String", "StringValue": message[:256] or code},
            },
        )

    def _invoke_function(self, target: dict[str, Any], event: dict[str, Any]) -> None:
        """A Lambda target: invoked asynchronously on AWS; here its handler runs in-process, and an
        error it raises goes to the function's dead-letter queue, as Lambda's retries would end."""
        handler = moto_patches.active().lambda_handlers[target["Arn"]]
        try:
            handler(target_input(target, event), None)
        except Exception as error:  # noqa: BLE001  # what Lambda reports for an asynchronous invocation
            logging.getLogger("localrun.eventbridge").error("%s failed: %s", target["Arn"], error)
            dlq = self.function_dead_letters.get(target["Arn"])
            if dlq not in self.queue_urls:
                raise
            self.clients["sqs"].send_message(
                QueueUrl=self.queue_urls[dlq],
                MessageBody=json.dumps(event),
                MessageAttributes={
                    "ErrorCode": {"DataType": "String", "StringValue": "200"},
                    "ErrorMessage": {"DataType": "String", "StringValue": str(error)[:256] or type(error).__name__},
                },
            )

    def dead_letters(self) -> list[dict[str, Any]]:
        """Events parked in the rules' dead-letter queues (drained), with the error that parked them."""
        sqs, found = self.clients["sqs"], cast(list[dict[str, Any]], [])
        for url in self.queue_urls.values():
            while batch := sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
            ).get("Messages", []):
                for message in batch:
                    attributes = {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()}
                    found.append({"event": json.loads(message["Body"]), **attributes})
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found


def _create_queues(clients: dict[str, Any], resolver: Resolver, pipeline: StackTemplate) -> dict[str, str]:
    """The rules' dead-letter queues: queue ARN -> URL."""
    queue_urls = {}
    for logical_id in pipeline.resources("AWS::SQS::Queue"):
        ids = resolver.physical[(pipeline.name, logical_id)]
        queue_urls[ids["Arn"]] = clients["sqs"].create_queue(QueueName=ids["QueueName"])["QueueUrl"]
    return queue_urls


def _function_dead_letters(resolver: Resolver, pipeline: StackTemplate) -> dict[str, str]:
    """Function ARN -> the ARN of its asynchronous-invocation dead-letter queue, where it has one."""
    found = {}
    for logical_id, function in pipeline.resources("AWS::Lambda::Function").items():
        config = resolver.resolve(pipeline.name, function["Properties"]).get("DeadLetterConfig")
        if config:
            found[resolver.physical[(pipeline.name, logical_id)]["Arn"]] = config["TargetArn"]
    return found


def _read_rules(resolver: Resolver, pipeline: StackTemplate) -> list[RuleSpec]:
    rules = []
    for logical_id, rule in pipeline.resources("AWS::Events::Rule").items():
        props = resolver.resolve(pipeline.name, rule["Properties"])
        rules.append(
            RuleSpec(
                logical_id,
                props.get("EventPattern"),
                props.get("ScheduleExpression"),
                props.get("Targets", []),
                props.get("State") != "DISABLED",
                resolver.physical[(pipeline.name, logical_id)]["Arn"],
            )
        )
    return rules


def start_execution(sfn: Any, state_machine_arn: str, event: dict[str, Any], name: str | None = None) -> str:
    """StartExecution with `event` as input; EventBridge names each execution itself, and moto leaves
    $$.Execution.Name null without a name, so one is always given."""
    return str(
        sfn.start_execution(
            stateMachineArn=state_machine_arn,
            name=name or event.get("id") or str(uuid.uuid4()),
            input=json.dumps(event),
        )["executionArn"]
    )


def wait_execution(sfn: Any, execution_arn: str, *, timeout_s: float = 120) -> dict[str, Any]:
    """DescribeExecution until the execution is no longer RUNNING (TimeoutError after timeout_s).

    Looks again after 5 ms, then twice as long each time up to 0.2 s: a front door's execution (a
    few states) ends within milliseconds, and every upload waits for its door."""
    deadline, pause = time.monotonic() + timeout_s, 0.005
    while True:
        execution: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if execution["status"] != "RUNNING":
            return execution
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {execution_arn} still RUNNING after {timeout_s} s")
        time.sleep(pause)
        pause = min(0.2, pause * 2)


def eventbridge_execution_name(event: dict[str, Any]) -> str:
    """The name EventBridge gives an execution it starts: `<event id>_<uuid>`, 73 characters.

    (As reported for EventBridge-started executions, issue 12.) Long on purpose: the pipeline's
    child names must stay within AWS's 80 characters for such a parent, and the local runs, with
    the `sfn-execution-names` entry of localrun/emulator/moto/, hold them to it.
    """
    return f"{event['id']}_{uuid.uuid4()}"


def target_input(target: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """What EventBridge passes to a target: the event, or its Input / InputPath / InputTransformer."""
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        return _json_path(event, target["InputPath"])
    if "InputTransformer" in target:
        transformer = target["InputTransformer"]
        text = transformer["InputTemplate"]
        for name, path in transformer.get("InputPathsMap", {}).items():
            value = _json_path(event, path)
            text = text.replace(f"<{name}>", value if isinstance(value, str) else json.dumps(value))
        return json.loads(text)
    return event


def _json_path(document: Any, path: str) -> Any:
    """The `$.a.b` subset of JSONPath that EventBridge input paths use."""
    if path == "$":
        return document
    if not path.startswith("$."):
        raise ValueError(f"input path {path!r}: only $ and $.field.field paths are supported locally")
    for part in path[2:].split("."):
        document = document[part]
    return document
