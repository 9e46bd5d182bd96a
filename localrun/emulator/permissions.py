"""Local runs enforce IAM: every AWS call runs as the principal that makes it on AWS.

moto checks no IAM on the calls made inside its Step Functions interpreter or in-process, and no KMS
key use at all. Here every call is evaluated against the synthesized policies of its caller:

- who calls: a thread-local principal, set where the local run routes work to a role: a state
  machine's states (Task, Map with its reader and ResultWriter; Distributed Map children run in
  other threads with the parent machine's role, as on AWS), an in-process Lambda (its execution
  role), the Glue job and crawler stand-ins (their roles), an EventBridge target (the target's role)
  and dead-letter queue (the events.amazonaws.com service principal, with the rule as source ARN),
  and clients whose access key id stands for a role (the DAG's Airflow connection: the MWAA role).
  A call with no principal is the operator's (uploads, test set-up) and is not evaluated.
- what it may do: the role's identity policies (AWS::IAM::Policy, inline Policies, AWS managed
  ManagedPolicyArns from moto's copy of them) and the resource policies that apply (bucket, key,
  topic, queue policies), read from the cloud assembly. An explicit Deny wins; a KMS key must
  allow the caller in its key policy (directly, or the account root so that IAM decides).
- KMS counts: what each service asks of the caller's key permissions (see `_key_requests`).
- a denied call fails as AWS fails it: a ClientError (AccessDenied...) naming principal, action and
  resource, raised before moto sees the request.

Statements are matched by moto's evaluator (`moto.iam.access_control.IAMPolicyStatement`, the
per-statement half of `IAMPolicy.is_action_permitted`: Action/NotAction and Resource wildcards).
What it does not cover is done here: principals of resource policies (moto only knows "*" and AWS
ARNs, and turns a statement for another principal into a Deny), conditions (moto's treats a
condition that does not hold as a Deny, so an `aws:SecureTransport: false` Deny would refuse every
request), case-insensitive action names. NotResource and NotPrincipal are refused (none is
synthesized). moto's pattern matching does not escape `.` in ARNs: a pattern may match slightly more
than on AWS, never less.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import botocore.client
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_map import state_map

from localrun.emulator.assembly import ACCOUNT_ID, PARTITION, REGION
from localrun.emulator.policies import (
    PermissionModelError,
    PolicyStore,
    Principal,
    Request,
    access_denied,
    queue_arn,
)

# Who may do what lives in policies.py; callers reach it through this module.
__all__ = ["PermissionModelError", "PolicyStore", "Principal", "Request", "access_denied", "queue_arn"]

if TYPE_CHECKING:
    from localrun.emulator.moto.runtime import LocalRuntime

GAP = (
    "moto checks no IAM policy and no KMS key use on calls made by state machines, in-process "
    "Lambdas or stand-ins; AWS evaluates each call against its caller's identity policies, the "
    "resource policies and the key policy, and fails it with AccessDenied"
)
# Service names as IAM spells them, where boto3's differ.
_IAM_PREFIX = {"stepfunctions": "states"}

# -- who is calling --------------------------------------------------------------------------
_local = threading.local()


@contextlib.contextmanager
def acting_as(principal: Principal | None) -> Iterator[None]:
    """Calls made in this thread inside the block are `principal`'s (None: the operator's)."""
    stack = _local.__dict__.setdefault("stack", [])
    stack.append(principal)
    try:
        yield
    finally:
        stack.pop()


def current() -> Principal | None:
    stack = _local.__dict__.get("stack") or []
    return stack[-1] if stack else None


# -- what each call asks for ---------------------------------------------------------------------
def _arn(service: str, resource: str) -> str:
    return f"arn:{PARTITION}:{service}:{REGION}:{ACCOUNT_ID}:{resource}"


def _s3_requests(operation: str, params: dict[str, Any]) -> list[Request]:
    bucket = params.get("Bucket", "")
    bucket_arn = f"arn:{PARTITION}:s3:::{bucket}"
    obj = f"{bucket_arn}/{params.get('Key', '')}"
    versioned = "VersionId" in params
    if operation in ("ListObjectsV2", "ListObjects", "HeadBucket"):
        return [Request("s3:ListBucket", bucket_arn, (("s3:prefix", params.get("Prefix", "")),))]
    if operation == "ListObjectVersions":
        return [Request("s3:ListBucketVersions", bucket_arn, (("s3:prefix", params.get("Prefix", "")),))]
    if operation in ("GetObject", "HeadObject"):
        return [Request("s3:GetObjectVersion" if versioned else "s3:GetObject", obj)]
    if operation in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
        return [Request("s3:PutObject", obj)]
    if operation == "CopyObject":
        source = params["CopySource"]
        source = f"{source['Bucket']}/{source['Key']}" if isinstance(source, dict) else source.lstrip("/")
        return [Request("s3:GetObject", f"arn:{PARTITION}:s3:::{source.split('?')[0]}"), Request("s3:PutObject", obj)]
    if operation == "DeleteObject":
        requests = [Request("s3:DeleteObjectVersion" if versioned else "s3:DeleteObject", obj)]
        if "IfMatch" in params:  # a conditional delete reads the object's ETag too
            requests.append(Request("s3:GetObject", obj))
        return requests
    if operation == "DeleteObjects":
        return [Request("s3:DeleteObject", f"{bucket_arn}/{o['Key']}") for o in params["Delete"]["Objects"]]
    return [Request(f"s3:{operation}", obj if "Key" in params else bucket_arn)]


def _key_requests(store: PolicyStore, service: str, operation: str, params: dict[str, Any]) -> list[Request]:
    """The key actions AWS requires of the caller of an encrypted resource."""
    if service == "s3":
        # S3 User Guide, "Using server-side encryption with AWS KMS keys": uploading needs
        # kms:GenerateDataKey, downloading kms:Decrypt; CopyObject decrypts the source and encrypts the
        # copy; multipart uploads need both (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html).
        bucket_arn = f"arn:{PARTITION}:s3:::{params.get('Bucket', '')}"
        key = store.keys.get(bucket_arn)
        if operation == "GetObject":
            return [Request("kms:Decrypt", key)] if key else []
        if operation == "PutObject":
            return [Request("kms:GenerateDataKey", key)] if key else []
        if operation in ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
            return [Request("kms:GenerateDataKey", key), Request("kms:Decrypt", key)] if key else []
        if operation == "CopyObject":
            source = params["CopySource"]
            source_bucket = source["Bucket"] if isinstance(source, dict) else source.lstrip("/").split("/", 1)[0]
            source_key = store.keys.get(f"arn:{PARTITION}:s3:::{source_bucket}")
            return [
                *([Request("kms:Decrypt", source_key)] if source_key else []),
                *([Request("kms:GenerateDataKey", key)] if key else []),
            ]
        return []
    if service == "sns" and operation == "Publish":
        # SNS Developer Guide, "Key management": publishers to an encrypted topic need
        # kms:GenerateDataKey* and kms:Decrypt (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html).
        key = store.keys.get(params.get("TopicArn") or params.get("TargetArn") or "")
        return [Request("kms:GenerateDataKey", key), Request("kms:Decrypt", key)] if key else []
    if service == "sqs" and operation in ("SendMessage", "SendMessageBatch", "ReceiveMessage"):
        # SQS Developer Guide, "Key management": producers need kms:GenerateDataKey and kms:Decrypt,
        # consumers kms:Decrypt (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html).
        key = store.keys.get(queue_arn(params.get("QueueUrl", "")))
        if not key:
            return []
        decrypt = [Request("kms:Decrypt", key)]
        return decrypt if operation == "ReceiveMessage" else [Request("kms:GenerateDataKey", key), *decrypt]
    if service == "dynamodb" and "TableName" in params:
        # KMS Developer Guide, "How Amazon DynamoDB uses AWS KMS": with a customer managed key, DynamoDB
        # decrypts the table key with the caller's permission (kms:Decrypt) when the caller accesses
        # the table (https://docs.aws.amazon.com/kms/latest/developerguide/services-dynamodb.html).
        key = store.keys.get(_arn("dynamodb", f"table/{params['TableName']}"))
        return [Request("kms:Decrypt", key)] if key else []
    return []


def requests_for(store: PolicyStore, service: str, operation: str, params: dict[str, Any]) -> list[Request]:
    """The IAM actions and resources one API call is authorized for (the Service Authorization Reference)."""
    prefix = _IAM_PREFIX.get(service, service)
    if service == "s3":
        requests = _s3_requests(operation, params)
    elif service == "stepfunctions" and operation in _TASK_RESPONSES:
        requests = [Request(f"states:{operation}", _machine_waiting_on(params.get("taskToken", "")))]
    elif service == "stepfunctions":
        arn = next((v for k, v in params.items() if k.lower().endswith("arn") and isinstance(v, str)), "*")
        requests = [Request(f"states:{operation}", arn)]
    elif service == "glue":
        requests = _glue_requests(operation, params)
    elif service == "dynamodb" and "TableName" in params:
        requests = [Request(f"dynamodb:{operation}", _arn("dynamodb", f"table/{params['TableName']}"))]
    elif service == "sns":
        # Publish names its topic as TopicArn or TargetArn (Airflow's SnsNotifier uses the latter).
        requests = [Request(f"sns:{operation}", params.get("TopicArn") or params.get("TargetArn") or "*")]
    elif service == "sqs":
        requests = [Request(f"sqs:{operation}", queue_arn(params["QueueUrl"]) if "QueueUrl" in params else "*")]
    elif service == "lambda" and operation == "Invoke":
        requests = [Request("lambda:InvokeFunction", function_arn(params["FunctionName"]))]
    elif service == "kms" and "KeyId" in params:
        requests = [Request(f"kms:{operation}", params["KeyId"])]
    else:
        requests = [Request(f"{prefix}:{operation}", "*")]
    return requests + _key_requests(store, service, operation, params)


# Authorized on the state machine whose execution waits on the task token (what CDK's
# grant_task_response grants: the machine's ARN).
_TASK_RESPONSES = ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat")


def _machine_waiting_on(token: str) -> str:
    """The ARN of the state machine an execution of which waits on `token`, or "*" (none does)."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    backend = stepfunctions_parser_backends[ACCOUNT_ID][REGION]
    for machine in backend.state_machines:
        for execution in machine.executions:
            env = getattr(getattr(execution, "exec_worker", None), "env", None)
            if env is not None and env.callback_pool_manager.get(token) is not None:
                return str(machine.arn)
    return "*"


def function_arn(name: str) -> str:
    return name if name.startswith("arn:") else _arn("lambda", f"function:{name}")


def _glue_requests(operation: str, params: dict[str, Any]) -> list[Request]:
    if "JobName" in params:
        return [Request(f"glue:{operation}", _arn("glue", f"job/{params['JobName']}"))]
    if operation in ("GetCrawler", "StartCrawler", "StopCrawler"):
        return [Request(f"glue:{operation}", _arn("glue", f"crawler/{params['Name']}"))]
    database = params.get("DatabaseName") or params.get("Name")
    resources = [_arn("glue", "catalog")]
    if database:
        resources.append(_arn("glue", f"database/{database}"))
    if "TableName" in params:
        resources.append(_arn("glue", f"table/{database}/{params['TableName']}"))
    return [Request(f"glue:{operation}", resource) for resource in resources]


# -- the registry entry --------------------------------------------------------------------------
_store: PolicyStore | None = None
_access_keys: dict[str, Principal] = {}  # access key id -> the role it stands for


def install(store: PolicyStore) -> PolicyStore:
    """Enforce `store`'s policies from now on (a deployment brought up from an assembly)."""
    global _store
    _store = store
    return store


def policies() -> PolicyStore | None:
    return _store


def assume_by_access_key(access_key_id: str, principal: Principal) -> None:
    """Calls signed with `access_key_id` are `principal`'s (an Airflow connection, the MWAA role)."""
    _access_keys[access_key_id] = principal


def authorize(principal: Principal | None, requests: list[Request], *, service: str, operation: str) -> None:
    """Evaluate `requests` for `principal` (no principal, or no deployment installed: nothing to evaluate)."""
    if principal is not None and _store is not None:
        _store.authorize(principal, requests, service=service, operation=operation)


def authorize_call(service: str, operation: str, params: dict[str, Any], principal: Principal | None) -> None:
    if principal is not None and _store is not None:
        requests = requests_for(_store, service, operation, params)
        _store.authorize(principal, requests, service=service, operation=operation)


def _caller(client: Any) -> Principal | None:
    principal = current()
    if principal is not None or not _access_keys:
        return principal
    credentials = client._request_signer._credentials
    return _access_keys.get(credentials.access_key) if credentials is not None else None


def apply(runtime: LocalRuntime) -> None:
    original_call = botocore.client.BaseClient._make_api_call

    def make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        authorize_call(client.meta.service_model.service_name, operation_name, api_params, _caller(client))
        return original_call(client, operation_name, api_params)

    runtime.replace(botocore.client.BaseClient, "_make_api_call", make_api_call)

    # Every Task, Map (reader, children, ResultWriter) and Parallel state runs as its machine's role;
    # a state's work runs in a thread of its own (for its timeout), which inherits the principal.
    for state_cls in (execute_state.ExecutionState, state_map.StateMap):
        runtime.replace(state_cls, "_eval_state", _as_machine_role(state_cls._eval_state))
    runtime.replace(execute_state, "Thread", _InheritingThread)
    runtime.stack.callback(_uninstall)


def _as_machine_role(original: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    def eval_state(state: Any, env: Any) -> None:
        with acting_as(Principal(env.aws_execution_details.role_arn)):
            original(state, env)

    return eval_state


class _InheritingThread(threading.Thread):
    """A thread whose calls are made by the principal of the thread that created it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._principal = current()

    def run(self) -> None:
        with acting_as(self._principal):
            super().run()


def _uninstall() -> None:
    global _store
    _store = None
    _access_keys.clear()


def run_as(principal: Principal, handler: Callable[[dict, Any], Any]) -> Callable[[dict, Any], Any]:
    """A Lambda handler that runs as its execution role (the in-process Lambdas)."""

    def handle(event: dict, context: Any) -> Any:
        with acting_as(principal):
            return handler(event, context)

    return handle


def probe() -> bool:
    """Still a gap while a state machine whose role has no policy at all may write to S3."""
    from localrun.emulator.moto.probing import PROBE_BUCKET, plain_moto, run_task

    global _store
    before, _store = _store, PolicyStore()  # no policy for anyone (consulted only where the entry is applied)
    try:
        with plain_moto() as clients:
            clients["s3"].create_bucket(Bucket=PROBE_BUCKET)
            task = {
                "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
                "Parameters": {"Bucket": PROBE_BUCKET, "Key": "written-without-a-grant", "Body": "x"},
            }
            return run_task(clients, "nogrant", task)["status"] == "SUCCEEDED"
    finally:
        _store = before
