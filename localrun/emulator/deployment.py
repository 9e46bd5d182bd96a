"""Bring the synthesized Storage and Pipeline stacks up on moto, and deliver events to them
(through the local EventBridge, localrun/emulator/local_eventbridge.py).

`LocalDeployment.bring_up(assembly_dir)` works inside `local_aws()` (in-process moto) or against a
moto server in this process (`endpoint_url=`, inside `localrun.emulator.moto.applied()`), which is how the
Airflow DAG test uses it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import boto3
from botocore.exceptions import ClientError

from localrun.emulator import moto as moto_patches
from localrun.emulator import permissions
from localrun.emulator.assembly import (
    ACCOUNT_ID,
    PARTITION,
    REGION,
    AssemblyError,
    CloudAssembly,
    Resolver,
    StackTemplate,
    physical_name,
)
from localrun.emulator.aws_environment import local_aws_environment
from localrun.emulator.aws_events import object_created_event
from localrun.emulator.botocore_data import shared_botocore_data
from localrun.emulator.glue_standin import GlueFaults
from localrun.emulator.lambda_code import load_lambda_modules
from localrun.emulator.local_eventbridge import (
    LocalEventBridge,
    start_execution,
    wait_execution,
)
from localrun.emulator.moto import redrive as moto_redrive
from ops import execution_history
from stacks import pipeline_contract as contract

_MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}}


@contextlib.contextmanager
def local_aws() -> Iterator[None]:
    """In-process moto with Step Functions executing, the moto patches applied, and fake credentials
    (and nothing of the machine's AWS set-up: localrun/emulator/aws_environment.py)."""
    from moto import mock_aws

    with local_aws_environment(), shared_botocore_data(), moto_patches.applied(), mock_aws(config=_MOTO_CONFIG):  # type: ignore[call-overload]
        yield


@dataclass
class LocalDeployment:
    assembly: CloudAssembly
    clients: dict[str, Any]
    state_machines: dict[str, str]  # a name of stacks/pipeline_contract.py (stage, pipeline, EXPRESS) -> ARN
    landing_bucket: str
    landing_prefix: str  # where runs admit files: <landing prefix>run=<run>/...
    incoming_prefix: str  # where uploads land and wait for admission
    quarantine_prefix: str  # where admission quarantines files, each with a reason sidecar
    lease_table: str  # the single-flight lease (stacks/pipeline/single_flight_lease.py)
    curated_bucket: str
    topic_arn: str
    notification_queue_url: str
    faults: GlueFaults
    eventbridge: LocalEventBridge = field(init=False)  # the rules, delivering what happens here
    resolver: Resolver = field(init=False)  # the assembly's references, resolved to this deployment's names
    # Glue failure alarms (text lines EventBridge publishes to the same topic), read by notifications().
    alarms: list[dict[str, Any]] = field(default_factory=list)

    @property
    def door_executions(self) -> list[str]:
        """The front door's (EXPRESS) executions the uploads' events started, in order."""
        return self.eventbridge.door_executions

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
        created = _create_state_machines(clients, resolver, pipeline)

        # What the stacks publish for their consumers (stacks/pipeline_contract.py): their outputs.
        def output(stack: StackTemplate, name: str) -> Any:
            return resolver.resolve(stack.name, stack.output(name))

        names = (*contract.STAGES, contract.PIPELINE, *contract.EXPRESS_MACHINES)
        machines = {name: output(pipeline, contract.state_machine_output(name)) for name in names}
        if missing := sorted(set(machines.values()) - set(created)):
            raise AssemblyError(f"stack {pipeline.name}: outputs name state machines it does not declare: {missing}")
        eventbridge = LocalEventBridge.from_stack(clients, resolver, pipeline, front_door=machines[contract.FRONT_DOOR])
        deployment = cls(
            assembly=assembly,
            clients=clients,
            state_machines=machines,
            landing_bucket=output(storage, contract.LANDING_BUCKET_OUTPUT),
            landing_prefix=output(pipeline, contract.LANDING_PREFIX_OUTPUT),
            incoming_prefix=output(pipeline, contract.INCOMING_PREFIX_OUTPUT),
            quarantine_prefix=output(pipeline, contract.QUARANTINE_PREFIX_OUTPUT),
            lease_table=lease_table,
            curated_bucket=output(storage, contract.CURATED_BUCKET_OUTPUT),
            topic_arn=topic_arn,
            notification_queue_url=queue_url,
            faults=glue.faults,
        )
        deployment.eventbridge = eventbridge
        deployment.resolver = resolver
        # Step Functions sends every execution's status change to EventBridge: the rules route it.
        moto_redrive.on_status_change(eventbridge.route_status_change)
        # So does Glue, each crawl's end ("Glue Crawler State Change"): the Glue stand-in sends it.
        glue.on_crawler_event = eventbridge.deliver
        glue.on_job_event = eventbridge.deliver  # and each job run's end ("Glue Job State Change")
        return deployment

    # -- events --------------------------------------------------------------------------
    def put_landing_object(self, key: str, body: bytes) -> list[str]:
        """Put an object (anywhere in the landing bucket) and deliver its Object Created event."""
        return self.deliver(self.land_object(key, body))

    def land_object(self, key: str, body: bytes) -> dict[str, Any]:
        """Put an object and return its Object Created event, not yet delivered (S3 sends it afterwards)."""
        response = self.clients["s3"].put_object(Bucket=self.landing_bucket, Key=key, Body=body)
        return object_created_event(
            bucket=self.landing_bucket, key=key, size=len(body), etag=response["ETag"].strip('"')
        )

    def put_object_without_event(self, key: str, body: bytes) -> None:
        """An object whose event never reaches a rule (a non-.csv, an empty file, a folder marker...)."""
        self.land_object(key, body)

    def deliver(self, event: dict[str, Any]) -> list[str]:
        """EventBridge: start one execution per matching rule target, named as EventBridge would."""
        return self.eventbridge.deliver(event)

    def schedule_tick(self) -> list[str]:
        """The schedule rules fire once."""
        return self.eventbridge.schedule_tick()

    def dead_letters(self) -> list[dict[str, Any]]:
        """Events parked in the dead-letter queues (drained), with the error that parked them."""
        return self.eventbridge.dead_letters()

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

    def start(self, state_machine_arn: str, event: dict[str, Any], name: str | None = None) -> str:
        """StartExecution as an operator (or a test) starts one: no role, the event as input."""
        return start_execution(self.clients["stepfunctions"], state_machine_arn, event, name)

    # -- observation ---------------------------------------------------------------------
    def wait(self, execution_arn: str, *, timeout_s: float = 120) -> dict[str, Any]:
        return wait_execution(self.clients["stepfunctions"], execution_arn, timeout_s=timeout_s)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return execution_history.history(self.clients["stepfunctions"], execution_arn)

    def executions(self, state_machine: str) -> list[dict[str, Any]]:
        """Every execution of one of the stack's machines (by its contract name), newest first, all pages."""
        sfn, found, token = self.clients["stepfunctions"], [], None
        while True:
            page = sfn.list_executions(
                stateMachineArn=self.state_machines[state_machine],
                maxResults=1000,
                **({"nextToken": token} if token else {}),
            )
            found += page["executions"]
            token = page.get("nextToken")
            if not token:
                return found

    def notifications(self) -> list[dict[str, Any]]:
        """Every notice (a JSON message) published so far (drains the reader queue), once ended
        executions' status changes have been delivered; the Glue alarms' text lines go to `alarms`."""
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
                try:
                    found.append({"subject": envelope.get("Subject"), "message": json.loads(envelope["Message"])})
                except ValueError:
                    self.alarms.append({"subject": envelope.get("Subject"), "text": envelope["Message"]})
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


def _create_state_machines(clients: dict[str, Any], resolver: Resolver, pipeline: StackTemplate) -> list[str]:
    """Each definition as synthesized, resolved, of its synthesized type (STANDARD or EXPRESS); their
    ARNs (the stack's outputs say which is which)."""
    sfn = clients["stepfunctions"]
    machines: list[str] = []
    for logical_id, machine in pipeline.resources("AWS::StepFunctions::StateMachine").items():
        definition = resolver.resolve(pipeline.name, machine["Properties"]["DefinitionString"])
        ids = resolver.physical[(pipeline.name, logical_id)]
        arn = sfn.create_state_machine(
            name=ids["Name"],
            definition=definition,
            roleArn=resolver.resolve(pipeline.name, machine["Properties"]["RoleArn"]),
            type=machine["Properties"].get("StateMachineType", "STANDARD"),
        )["stateMachineArn"]
        machines.append(arn)
    return machines


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
    Lambda would run, its siblings importable as there), and the handler's name in it."""
    asset = function.get("Metadata", {}).get("aws:asset:path")
    module_name, _, attribute = function["Properties"]["Handler"].rpartition(".")
    modules = load_lambda_modules(assembly_dir / asset, module_name, name=f"local_lambda_{asset}")
    return modules[module_name], attribute
