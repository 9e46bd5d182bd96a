"""Bring the synthesized Storage and Pipeline stacks up on moto, and deliver events to them.

`LocalDeployment.bring_up(assembly_dir)` works inside `local_aws()` (in-process moto) or against a
moto server in this process (`endpoint_url=`, inside `moto_patches.applied()`), which is how the
Airflow DAG test uses it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import boto3
from botocore.exceptions import ClientError
from moto.events.models import EventPattern

from localrun import moto_patches, moto_redrive, permissions
from localrun.assembly import ACCOUNT_ID, PARTITION, REGION, CloudAssembly, Resolver, StackTemplate, physical_name
from localrun.glue_standin import GlueFaults
from stacks import pipeline_contract as contract

_MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}}


@contextlib.contextmanager
def local_aws() -> Iterator[None]:
    """In-process moto with Step Functions executing, the moto patches applied, and fake credentials."""
    from moto import mock_aws

    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with moto_patches.applied(), mock_aws(config=_MOTO_CONFIG):  # type: ignore[call-overload]  # partial config
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


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
class LocalDeployment:
    assembly: CloudAssembly
    clients: dict[str, Any]
    state_machines: dict[str, str]  # a name of stacks/pipeline_contract.py (stage, pipeline, EXPRESS) -> ARN
    landing_bucket: str
    landing_prefix: str  # where runs admit files: <landing prefix>run=<run>/...
    incoming_prefix: str  # where uploads land and wait for admission
    lease_table: str  # the single-flight lease (stacks/single_flight_lease.py)
    curated_bucket: str
    topic_arn: str
    notification_queue_url: str
    rules: list[RuleSpec]
    faults: GlueFaults
    queue_urls: dict[str, str] = field(default_factory=dict)  # queue ARN -> URL (the rules' DLQs)
    function_dead_letters: dict[str, str] = field(default_factory=dict)  # function ARN -> its DLQ's ARN
    door_executions: list[str] = field(default_factory=list)  # the front door's (EXPRESS) executions

    # -- bring-up ------------------------------------------------------------------------
    @classmethod
    def bring_up(cls, assembly_dir: Path, *, endpoint_url: str | None = None) -> LocalDeployment:
        runtime = moto_patches.active()
        glue = runtime.glue
        glue.reset()
        clients = _clients(endpoint_url)
        assembly = CloudAssembly.load(Path(assembly_dir))
        storage, pipeline = assembly.stack_ending("-Storage"), assembly.stack_ending("-Pipeline")
        resolver = Resolver(assembly)
        for stack in assembly.stacks.values():  # every stack: the MWAA role's policies name the others
            _register_physical_ids(resolver, stack.name, stack.template)
        # From here on every call a role makes is evaluated against the assembly's policies.
        permissions.install(permissions.PolicyStore.from_assembly(assembly, resolver))
        _create_storage(clients, resolver, (storage, pipeline))
        topic_arn, queue_url = _create_topic_with_reader(clients, resolver, storage)
        _create_glue(clients, resolver, pipeline)
        _route_lambdas(runtime, resolver, assembly, pipeline)
        tables = _create_tables(clients, resolver, pipeline)
        [lease_table] = [name for logical_id, name in tables.items() if logical_id.startswith("LeaseTable")]
        machines = _create_state_machines(clients, resolver, pipeline)
        queue_urls = _create_queues(clients, resolver, pipeline)
        rules = _read_rules(resolver, pipeline)

        landing_id, _ = storage.one("AWS::S3::Bucket", "LandingBucket")
        curated_id, _ = storage.one("AWS::S3::Bucket", "CuratedBucket")
        # The Object Created rule matches <incoming prefix>*.csv; runs admit into the landing prefix.
        incoming_prefix = next(
            r.pattern["detail"]["object"]["key"][0]["wildcard"].removesuffix("*.csv")
            for r in rules
            if r.pattern and "object" in r.pattern.get("detail", {})
        )
        admit_id, admit = pipeline.one("AWS::Lambda::Function", "AdmissionStageAdmitFiles")
        landing_prefix = admit["Properties"]["Environment"]["Variables"]["LANDING_PREFIX"]
        deployment = cls(
            assembly=assembly,
            clients=clients,
            state_machines=machines,
            landing_bucket=resolver.physical[(storage.name, landing_id)]["Ref"],
            landing_prefix=landing_prefix,
            incoming_prefix=incoming_prefix,
            lease_table=lease_table,
            curated_bucket=resolver.physical[(storage.name, curated_id)]["Ref"],
            topic_arn=topic_arn,
            notification_queue_url=queue_url,
            rules=rules,
            faults=glue.faults,
            queue_urls=queue_urls,
            function_dead_letters=_function_dead_letters(resolver, pipeline),
        )
        # Step Functions sends every execution's status change to EventBridge: the rules route it.
        moto_redrive.on_status_change(deployment.route_status_change)
        # So does Glue, each crawl's end ("Glue Crawler State Change"): the Glue stand-in sends it.
        glue.on_crawler_event = deployment.deliver
        return deployment

    # -- events --------------------------------------------------------------------------
    def put_landing_object(self, key: str, body: bytes) -> list[str]:
        """Put an object (anywhere in the landing bucket) and deliver its Object Created event."""
        response = self.clients["s3"].put_object(Bucket=self.landing_bucket, Key=key, Body=body)
        event = object_created_event(
            bucket=self.landing_bucket, key=key, size=len(body), etag=response["ETag"].strip('"')
        )
        return self.deliver(event)

    def put_object_without_event(self, key: str, body: bytes) -> None:
        """An object whose event never reaches a rule (a non-.csv, an empty file, a folder marker...)."""
        self.clients["s3"].put_object(Bucket=self.landing_bucket, Key=key, Body=body)

    def keys_under(self, prefix: str) -> list[str]:
        s3, keys, token = self.clients["s3"], [], None
        while True:
            page = s3.list_objects_v2(
                Bucket=self.landing_bucket, Prefix=prefix, **({"ContinuationToken": token} if token else {})
            )
            keys += [o["Key"] for o in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not token:
                return keys

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
                name = eventbridge_execution_name(event)
                with permissions.acting_as(permissions.Principal(target["RoleArn"]) if "RoleArn" in target else None):
                    arn = self.start(target["Arn"], target_input(target, event), name=name)
                started += (
                    self._through_door(arn) if target["Arn"] == self.state_machines.get(contract.FRONT_DOOR) else [arn]
                )
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
        at the door (stacks/front_door.py). What a local caller waits for and reports is the pipeline."""
        execution = self.wait(door_execution, timeout_s=60)
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

    def start(self, state_machine_arn: str, event: dict[str, Any], name: str | None = None) -> str:
        # EventBridge names each execution itself; moto leaves $$.Execution.Name null without one.
        arn = self.clients["stepfunctions"].start_execution(
            stateMachineArn=state_machine_arn,
            name=name or event.get("id") or str(uuid.uuid4()),
            input=json.dumps(event),
        )["executionArn"]
        return arn

    # -- observation ---------------------------------------------------------------------
    def wait(self, execution_arn: str, *, timeout_s: float = 120) -> dict[str, Any]:
        sfn = self.clients["stepfunctions"]
        deadline = time.monotonic() + timeout_s
        while True:
            execution = sfn.describe_execution(executionArn=execution_arn)
            if execution["status"] != "RUNNING":
                return execution
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {execution_arn} still RUNNING after {timeout_s} s")
            time.sleep(0.2)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn, events, token = self.clients["stepfunctions"], [], None
        while True:
            page = sfn.get_execution_history(
                executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {})
            )
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                return events

    def executions(self, state_machine: str) -> list[dict[str, Any]]:
        return self.clients["stepfunctions"].list_executions(stateMachineArn=self.state_machines[state_machine])[
            "executions"
        ]

    def notifications(self) -> list[dict[str, Any]]:
        """Every SNS message published so far (drains the reader queue), once ended executions' status
        changes have been delivered (their notices published)."""
        moto_redrive.wait_for_deliveries()
        sqs, found = self.clients["sqs"], cast(list[dict[str, Any]], [])
        while True:
            batch = sqs.receive_message(
                QueueUrl=self.notification_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                envelope = json.loads(message["Body"])
                found.append({"subject": envelope.get("Subject"), "message": json.loads(envelope["Message"])})
                sqs.delete_message(QueueUrl=self.notification_queue_url, ReceiptHandle=message["ReceiptHandle"])

    def stop_running(self) -> None:
        """Stop executions still running, so none outlives its test and publishes into the next."""
        sfn = self.clients["stepfunctions"]
        for arn in self.state_machines.values():
            try:
                running = sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
            except ClientError:  # deleted by a scenario
                continue
            for execution in running:
                with contextlib.suppress(ClientError):
                    sfn.stop_execution(executionArn=execution["executionArn"], error="LocalRunTeardown")


# -- bring-up steps: each creates on moto what one kind of resource of the assembly declares ----


def _clients(endpoint_url: str | None) -> dict[str, Any]:
    if endpoint_url:
        os.environ.setdefault("MOTO_PORT", endpoint_url.rsplit(":", 1)[-1].rstrip("/"))
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    return {
        name: session.client(name, endpoint_url=endpoint_url)
        for name in ("s3", "sns", "sqs", "glue", "stepfunctions", "dynamodb")
    }


def _create_storage(clients: dict[str, Any], resolver: Resolver, stacks: tuple[StackTemplate, ...]) -> None:
    """Buckets, Glue databases and Glue tables (the published view) of every stack."""
    s3, glue_client = clients["s3"], clients["glue"]
    for stack in stacks:
        for logical_id in stack.resources("AWS::S3::Bucket"):
            s3.create_bucket(Bucket=resolver.physical[(stack.name, logical_id)]["Ref"])
        for logical_id in stack.resources("AWS::Glue::Database"):
            glue_client.create_database(DatabaseInput={"Name": resolver.physical[(stack.name, logical_id)]["Ref"]})
        for table in stack.resources("AWS::Glue::Table").values():  # the published view (curated table)
            props = resolver.resolve(stack.name, table["Properties"])
            glue_client.create_table(DatabaseName=props["DatabaseName"], TableInput=props["TableInput"])


def _create_topic_with_reader(clients: dict[str, Any], resolver: Resolver, storage: StackTemplate) -> tuple[str, str]:
    """The notification topic, with an SQS queue subscribed so that runs can read the notices."""
    topic_id, _ = storage.one("AWS::SNS::Topic")
    topic_name = resolver.physical[(storage.name, topic_id)]["TopicName"]
    topic_arn = clients["sns"].create_topic(Name=topic_name)["TopicArn"]
    queue_url = clients["sqs"].create_queue(QueueName=f"{storage.name}-notifications-reader")["QueueUrl"]
    queue_attributes = clients["sqs"].get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    queue_arn = queue_attributes["Attributes"]["QueueArn"]
    clients["sns"].subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return topic_arn, queue_url


def _create_glue(clients: dict[str, Any], resolver: Resolver, pipeline: StackTemplate) -> None:
    """The crawler and the job (the Glue stand-in decides how their runs end)."""
    glue_client = clients["glue"]
    crawler_id, crawler = pipeline.one("AWS::Glue::Crawler")
    props = resolver.resolve(pipeline.name, crawler["Properties"])
    glue_client.create_crawler(
        Name=resolver.physical[(pipeline.name, crawler_id)]["Ref"],
        Role=props["Role"],
        DatabaseName=props["DatabaseName"],
        Targets={"S3Targets": [{"Path": t["Path"]} for t in props["Targets"]["S3Targets"]]},
    )
    job_id, job = pipeline.one("AWS::Glue::Job")
    props = resolver.resolve(pipeline.name, job["Properties"])
    glue_client.create_job(
        Name=resolver.physical[(pipeline.name, job_id)]["Ref"],
        Role=props["Role"],
        Command=props["Command"],
        DefaultArguments=props.get("DefaultArguments", {}),
        GlueVersion=props.get("GlueVersion"),
        ExecutionProperty=props.get("ExecutionProperty", {"MaxConcurrentRuns": 1}),
        Timeout=props.get("Timeout", 2880),
    )


def _route_lambdas(runtime: Any, resolver: Resolver, assembly: CloudAssembly, pipeline: StackTemplate) -> None:
    """Every function runs in-process, loaded from its synthesized asset directory."""
    for logical_id, function in pipeline.resources("AWS::Lambda::Function").items():
        arn = resolver.physical[(pipeline.name, logical_id)]["Arn"]
        module, attribute = _load_handler(assembly.directory, function)
        variables = resolver.resolve(pipeline.name, function["Properties"]).get("Environment", {}).get("Variables")
        runtime.route_lambda(
            arn, module, attribute, logging.getLogger(f"localrun.lambda.{logical_id}"), environment=variables
        )
        role = permissions.Principal(resolver.resolve(pipeline.name, function["Properties"]["Role"]))
        runtime.lambda_handlers[arn] = permissions.run_as(role, runtime.lambda_handlers[arn])


def _create_tables(clients: dict[str, Any], resolver: Resolver, pipeline: StackTemplate) -> dict[str, str]:
    """Every table (the lease, the crawl stage's task tokens): logical ID -> table name."""
    tables = {}
    for logical_id, table in pipeline.resources("AWS::DynamoDB::Table").items():
        props = table["Properties"]
        tables[logical_id] = resolver.physical[(pipeline.name, logical_id)]["Ref"]
        clients["dynamodb"].create_table(
            TableName=tables[logical_id],
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
        )
    return tables


def _create_state_machines(clients: dict[str, Any], resolver: Resolver, pipeline: StackTemplate) -> dict[str, str]:
    """Each definition as synthesized, resolved, of its type; by the name its stack output gives it
    (stacks/pipeline_contract.py: admission, crawl, transform, pipeline, front_door, crawl_callback)."""
    sfn = clients["stepfunctions"]
    by_logical_id: dict[str, str] = {}
    for logical_id, machine in pipeline.resources("AWS::StepFunctions::StateMachine").items():
        definition = resolver.resolve(pipeline.name, machine["Properties"]["DefinitionString"])
        ids = resolver.physical[(pipeline.name, logical_id)]
        by_logical_id[logical_id] = sfn.create_state_machine(
            name=ids["Name"],
            definition=definition,
            roleArn=resolver.resolve(pipeline.name, machine["Properties"]["RoleArn"]),
            type=machine["Properties"].get("StateMachineType", "STANDARD"),
        )["stateMachineArn"]
    outputs = pipeline.template.get("Outputs", {})
    machines = {}
    for name in (*contract.STAGES, contract.PIPELINE, *contract.EXPRESS_MACHINES):
        output = outputs.get(contract.state_machine_output(name))
        if output is not None:
            machines[name] = by_logical_id[output["Value"]["Ref"]]
    return machines


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


def eventbridge_execution_name(event: dict[str, Any]) -> str:
    """The name EventBridge gives an execution it starts: `<event id>_<uuid>`, 73 characters.

    (As reported for EventBridge-started executions, issue 12.) Long on purpose: the pipeline's
    child names must stay within AWS's 80 characters for such a parent, and the local runs, with
    the `sfn-execution-names` entry of localrun/moto_patches.py, hold them to it.
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


def object_created_event(*, bucket: str, key: str, size: int, etag: str) -> dict[str, Any]:
    """An S3 "Object Created" event as EventBridge delivers it (S3 User Guide, EventBridge event structure)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:{PARTITION}:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "etag": etag, "sequencer": f"{time.time_ns():X}"},
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": ACCOUNT_ID,
            "source-ip-address": "198.51.100.7",
            "reason": "PutObject",
        },
    }


def scheduled_event(*, rule_arn: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [rule_arn],
        "detail": {},
    }


def _register_physical_ids(resolver: Resolver, stack: str, template: dict[str, Any]) -> None:
    prefix = f"arn:{PARTITION}"
    for logical_id, resource in template.get("Resources", {}).items():
        type_ = resource["Type"]
        name = physical_name(stack, logical_id)
        service = type_.split("::")[1].lower()
        ids = {"Ref": name, "Arn": f"{prefix}:{service}:{REGION}:{ACCOUNT_ID}:{name}"}
        if type_ == "AWS::S3::Bucket":
            ids = {"Ref": name, "Arn": f"{prefix}:s3:::{name}"}
        elif type_ == "AWS::SNS::Topic":
            ids = {
                "Ref": f"{prefix}:sns:{REGION}:{ACCOUNT_ID}:{name}",
                "TopicName": name,
                "TopicArn": f"{prefix}:sns:{REGION}:{ACCOUNT_ID}:{name}",
            }
        elif type_ == "AWS::IAM::Role":
            ids = {"Ref": name, "Arn": f"{prefix}:iam::{ACCOUNT_ID}:role/{name}"}
        elif type_ == "AWS::Lambda::Function":
            ids = {"Ref": name, "Arn": f"{prefix}:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"}
        elif type_ == "AWS::StepFunctions::StateMachine":
            arn = f"{prefix}:states:{REGION}:{ACCOUNT_ID}:stateMachine:{name}"
            ids = {"Ref": arn, "Arn": arn, "Name": name}
        elif type_ == "AWS::DynamoDB::Table":
            ids = {"Ref": name, "Arn": f"{prefix}:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"}
        elif type_ == "AWS::Events::Rule":
            ids = {"Ref": name, "Arn": f"{prefix}:events:{REGION}:{ACCOUNT_ID}:rule/{name}"}
        elif type_ == "AWS::KMS::Key":
            ids = {"Ref": name, "Arn": f"{prefix}:kms:{REGION}:{ACCOUNT_ID}:key/{name}"}
        elif type_ == "AWS::SQS::Queue":
            ids = {
                "Ref": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{name}",
                "Arn": f"{prefix}:sqs:{REGION}:{ACCOUNT_ID}:{name}",
                "QueueName": name,
            }
        resolver.register(stack, logical_id, **ids)


def _load_handler(assembly_dir: Path, function: dict[str, Any]) -> tuple[ModuleType, str]:
    """The handler's module, loaded from the function's own synthesized asset directory (what
    Lambda would run), and the handler's name in it."""
    asset = function.get("Metadata", {}).get("aws:asset:path")
    module_name, _, attribute = function["Properties"]["Handler"].rpartition(".")
    path = assembly_dir / asset / f"{module_name}.py"
    spec = importlib.util.spec_from_file_location(f"local_lambda_{asset}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"Lambda handler {path} not found in the cloud assembly")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in the handler look their module up here
    spec.loader.exec_module(module)
    return module, attribute
