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
import fnmatch
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import botocore.client
from botocore.exceptions import ClientError
from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_map import state_map

from localrun.assembly import ACCOUNT_ID, PARTITION, REGION, AssemblyError, CloudAssembly, Resolver

if TYPE_CHECKING:
    from localrun.moto_patches import LocalRuntime

GAP = (
    "moto checks no IAM policy and no KMS key use on calls made by state machines, in-process "
    "Lambdas or stand-ins; AWS evaluates each call against its caller's identity policies, the "
    "resource policies and the key policy, and fails it with AccessDenied"
)
# Service names as IAM spells them, where boto3's differ.
_IAM_PREFIX = {"stepfunctions": "states"}


class PermissionModelError(RuntimeError):
    """A policy uses something the local evaluator does not model: refused rather than guessed."""


@dataclass(frozen=True)
class Principal:
    arn: str  # a role ARN, or a service principal such as events.amazonaws.com
    source_arn: str | None = None  # for a service principal acting for a resource (aws:SourceArn)

    @property
    def is_service(self) -> bool:
        return not self.arn.startswith("arn:")

    def rendered(self) -> str:
        """As AWS names the caller in AccessDenied: the assumed-role session, or the service."""
        if self.is_service:
            return self.arn
        return f"arn:{PARTITION}:sts::{ACCOUNT_ID}:assumed-role/{self.arn.rsplit('/', 1)[-1]}/local"


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()


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


# -- what each principal may do ------------------------------------------------------------------
@dataclass(frozen=True)
class _Statement:
    effect: str
    matcher: IAMPolicyStatement
    principals: tuple[tuple[str, str], ...] | None  # resource policies: (kind, value); None: identity
    conditions: dict[str, Any]
    source: str  # where it comes from, for the least-privilege report
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resource: bool = False  # resources are the statement's NotResource


def _statements(document: dict[str, Any], *, source: str, resource_policy: bool) -> list[_Statement]:
    found = []
    raw = document.get("Statement", [])
    for statement in raw if isinstance(raw, list) else [raw]:
        if "NotPrincipal" in statement:
            raise PermissionModelError(f"{source}: NotPrincipal is not evaluated locally")
        actions = statement.get("Action", statement.get("NotAction", []))
        actions = [actions] if isinstance(actions, str) else actions
        resources = statement.get("Resource", statement.get("NotResource", "*"))
        resources = [resources] if isinstance(resources, str) else resources
        resources = [r if isinstance(r, str) else json.dumps(r) for r in resources]  # unresolved: never matches
        bare = {
            "Effect": statement["Effect"],
            ("NotAction" if "NotAction" in statement else "Action"): [a.lower() for a in actions],
            "Resource": "*" if "NotResource" in statement else resources,  # moto reads no NotResource
        }
        principals = _principals(statement.get("Principal")) if resource_policy else None
        found.append(
            _Statement(
                effect=statement["Effect"],
                matcher=IAMPolicyStatement(bare),
                principals=principals,
                conditions=statement.get("Condition") or {},
                source=source,
                actions=tuple(actions),
                resources=tuple(resources),
                not_resource="NotResource" in statement,
            )
        )
    return found


def _principals(principal: Any) -> tuple[tuple[str, str], ...]:
    if principal == "*":
        return (("AWS", "*"),)
    pairs = []
    for kind, values in (principal or {}).items():
        for value in [values] if isinstance(values, str) else values:
            pairs.append((kind, value if isinstance(value, str) else json.dumps(value)))
    return tuple(pairs)


def _principal_match(statement: _Statement, principal: Principal) -> str | None:
    """'direct' (names the caller), 'account' (the account root: IAM decides) or None."""
    for kind, value in statement.principals or ():
        if kind == "AWS" and (value == "*" or value == principal.arn):
            return "direct"
        if kind == "Service" and value == principal.arn:
            return "direct"
        account = (ACCOUNT_ID, f"arn:{PARTITION}:iam::{ACCOUNT_ID}:root")
        if kind == "AWS" and value in account and not principal.is_service:
            return "account"
    return None


_CONDITION_OPERATORS = {
    "Null",
    "StringEquals",
    "ArnEquals",
    "StringNotEquals",
    "ArnNotEquals",
    "StringEqualsIgnoreCase",
    "StringLike",
    "ArnLike",
    "StringNotLike",
    "ArnNotLike",
    "Bool",
}


def _conditions_hold(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    """IAM condition operators this pipeline's policies use; anything else is refused, not guessed."""
    lowered = {k.lower(): v for k, v in context.items()}
    for operator, pairs in conditions.items():
        op, if_exists = operator.removesuffix("IfExists"), operator.endswith("IfExists")
        if op not in _CONDITION_OPERATORS:
            raise PermissionModelError(f"condition operator {operator} is not evaluated locally")
        for key, expected_raw in pairs.items():
            expected = [str(e) for e in (expected_raw if isinstance(expected_raw, list) else [expected_raw])]
            actual = lowered.get(key.lower())
            if op == "Null":
                if (actual is None) != (expected[0].lower() == "true"):
                    return False
                continue
            if actual is None:
                if if_exists:
                    continue
                return False
            if op in ("StringEquals", "ArnEquals"):
                holds = actual in expected
            elif op in ("StringNotEquals", "ArnNotEquals"):
                holds = actual not in expected
            elif op == "StringEqualsIgnoreCase":
                holds = actual.lower() in [e.lower() for e in expected]
            elif op in ("StringLike", "ArnLike"):
                holds = any(fnmatch.fnmatchcase(actual, e) for e in expected)
            elif op in ("StringNotLike", "ArnNotLike"):
                holds = not any(fnmatch.fnmatchcase(actual, e) for e in expected)
            else:  # Bool
                holds = actual.lower() == expected[0].lower()
            if not holds:
                return False
    return True


def _applies(statement: _Statement, request: Request, context: dict[str, str]) -> bool:
    if not _conditions_hold(statement.conditions, context):
        return False
    if statement.not_resource and any(fnmatch.fnmatchcase(request.resource, r) for r in statement.resources):
        return False
    return statement.matcher.is_action_permitted(request.action.lower(), request.resource) != PermissionResult.NEUTRAL


_RESOURCE_TYPES_READ = {
    "AWS::S3::BucketPolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::KMS::Key",
    "AWS::S3::Bucket",
    "AWS::SNS::Topic",
    "AWS::SQS::Queue",
    "AWS::DynamoDB::Table",
}


@dataclass
class PolicyStore:
    """The assembly's policies, by principal and by resource; what was allowed, for the report."""

    identity: dict[str, list[_Statement]] = field(default_factory=dict)  # role ARN -> statements
    resource_policies: dict[str, list[_Statement]] = field(default_factory=dict)  # resource ARN -> statements
    keys: dict[str, str] = field(default_factory=dict)  # encrypted resource ARN -> KMS key ARN
    role_names: dict[str, str] = field(default_factory=dict)  # role ARN -> logical id (for reports)
    exercised: set[tuple[str, str, str]] = field(default_factory=set)  # (principal, action, resource) allowed
    denied: list[str] = field(default_factory=list)  # every AccessDenied message raised, in order
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- reading the assembly --
    @classmethod
    def from_assembly(cls, assembly: CloudAssembly, resolver: Resolver) -> PolicyStore:
        resolver = _LenientResolver(resolver)
        store = cls()
        roles: dict[tuple[str, str], str] = {}  # (stack, role physical name) -> ARN
        for stack in assembly.stacks.values():
            for logical_id, role in stack.resources("AWS::IAM::Role").items():
                arn = resolver.physical[(stack.name, logical_id)]["Arn"]
                roles[(stack.name, resolver.physical[(stack.name, logical_id)]["Ref"])] = arn
                store.role_names[arn] = f"{stack.name}/{logical_id}"
                props = resolver.resolve(stack.name, role["Properties"])
                for inline in props.get("Policies", []):
                    store._add_identity(arn, inline["PolicyDocument"], f"{logical_id} inline {inline['PolicyName']}")
                for managed in props.get("ManagedPolicyArns", []):
                    store._add_identity(arn, _aws_managed(managed), f"{logical_id} {managed}")
        for stack in assembly.stacks.values():
            for logical_id, policy in stack.resources("AWS::IAM::Policy").items():
                props = resolver.resolve(stack.name, policy["Properties"])
                for role_name in props.get("Roles", []):
                    arn = roles.get((stack.name, role_name)) or f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/{role_name}"
                    store._add_identity(arn, props["PolicyDocument"], f"{stack.name}/{logical_id}")
            if stack.resources("AWS::IAM::ManagedPolicy"):
                raise PermissionModelError(f"stack {stack.name}: AWS::IAM::ManagedPolicy is not read locally yet")
            store._read_resources(stack.name, stack.template, resolver)
        return store

    def _add_identity(self, role_arn: str, document: dict[str, Any], source: str) -> None:
        self.identity.setdefault(role_arn, []).extend(_statements(document, source=source, resource_policy=False))

    def _add_resource_policy(self, arn: str, document: dict[str, Any], source: str) -> None:
        self.resource_policies.setdefault(arn, []).extend(_statements(document, source=source, resource_policy=True))

    def _read_resources(self, stack: str, template: dict[str, Any], resolver: Resolver) -> None:
        for logical_id, resource in template.get("Resources", {}).items():
            type_, ids = resource["Type"], resolver.physical.get((stack, logical_id), {})
            if type_ not in _RESOURCE_TYPES_READ:
                continue
            props = resolver.resolve(stack, resource.get("Properties", {}))
            source = f"{stack}/{logical_id}"
            if type_ == "AWS::S3::BucketPolicy":
                self._add_resource_policy(f"arn:{PARTITION}:s3:::{props['Bucket']}", props["PolicyDocument"], source)
            elif type_ == "AWS::SNS::TopicPolicy":
                for topic in props["Topics"]:
                    self._add_resource_policy(topic, props["PolicyDocument"], source)
            elif type_ == "AWS::SQS::QueuePolicy":
                for url in props["Queues"]:
                    self._add_resource_policy(queue_arn(url), props["PolicyDocument"], source)
            elif type_ == "AWS::KMS::Key":
                self._add_resource_policy(ids["Arn"], props["KeyPolicy"], source)
            elif type_ == "AWS::S3::Bucket":
                for rule in props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", []):
                    default = rule.get("ServerSideEncryptionByDefault", {})
                    if default.get("SSEAlgorithm", "").startswith("aws:kms") and default.get("KMSMasterKeyID"):
                        self.keys[ids["Arn"]] = default["KMSMasterKeyID"]
            elif type_ in ("AWS::SNS::Topic", "AWS::SQS::Queue") and props.get("KmsMasterKeyId"):
                self.keys[ids["TopicArn" if type_ == "AWS::SNS::Topic" else "Arn"]] = props["KmsMasterKeyId"]
            elif type_ == "AWS::DynamoDB::Table":
                sse = props.get("SSESpecification", {})
                if sse.get("SSEEnabled") and sse.get("KMSMasterKeyId"):
                    self.keys[ids["Arn"]] = sse["KMSMasterKeyId"]

    def role(self, logical_prefix: str) -> str:
        """The ARN of the one role whose logical id starts with `logical_prefix`."""
        found = [arn for arn, name in self.role_names.items() if name.split("/")[-1].startswith(logical_prefix)]
        if len(found) != 1:
            raise AssemblyError(f"expected one role {logical_prefix}*, found {len(found)}")
        return found[0]

    # -- evaluating --
    def _resource_statements(self, resource: str) -> list[_Statement]:
        if resource.startswith(f"arn:{PARTITION}:s3:::"):  # a bucket policy covers the bucket and its objects
            return self.resource_policies.get(resource.split("/", 1)[0], [])
        return self.resource_policies.get(resource, [])

    def denial(self, principal: Principal, request: Request) -> str | None:
        """None when AWS would allow the request; else why not, as AccessDenied says it."""
        context = {
            "aws:SecureTransport": "true",  # every SDK call is HTTPS
            "aws:SourceAccount": ACCOUNT_ID,
            **({"aws:SourceArn": principal.source_arn} if principal.source_arn else {}),
            **({"aws:PrincipalArn": principal.arn} if not principal.is_service else {}),
            **dict(request.context),
        }
        identity = [] if principal.is_service else self.identity.get(principal.arn, [])
        on_resource = [(s, _principal_match(s, principal)) for s in self._resource_statements(request.resource)]
        on_resource = [(s, match) for s, match in on_resource if match]
        action = request.action
        for statement in identity:
            if statement.effect == "Deny" and _applies(statement, request, context):
                return f"with an explicit deny in an identity-based policy ({statement.source})"
        for statement, _ in on_resource:
            if statement.effect == "Deny" and _applies(statement, request, context):
                return f"with an explicit deny in a resource-based policy ({statement.source})"
        allowed_by_identity = any(s.effect == "Allow" and _applies(s, request, context) for s in identity)
        resource_grants = {match for s, match in on_resource if s.effect == "Allow" and _applies(s, request, context)}
        if action.lower().startswith("kms:") and request.resource in self.resource_policies:
            # A key policy must allow the caller: by name, or the account root so that IAM policies decide.
            if "direct" in resource_grants or ("account" in resource_grants and allowed_by_identity):
                return None
            if not resource_grants:
                return f"because no resource-based policy allows the {action} action"
            return f"because no identity-based policy allows the {action} action"
        if allowed_by_identity or "direct" in resource_grants:
            return None
        return f"because no identity-based policy allows the {action} action"

    def authorize(self, principal: Principal, requests: list[Request], *, service: str, operation: str) -> None:
        """Raise AWS's AccessDenied for the first request the principal may not make."""
        for request in requests:
            reason = self.denial(principal, request)
            if reason is not None:
                error = access_denied(principal, request, reason, service=service, operation=operation)
                with self._lock:
                    self.denied.append(str(error.response["Error"]["Message"]))
                raise error
        with self._lock:
            self.exercised.update((principal.arn, r.action, r.resource) for r in requests)


class _LenientResolver(Resolver):
    """Attributes with no local stand-in (a VPC's security group) resolve to a text no ARN matches."""

    def __init__(self, resolver: Resolver) -> None:
        self.assembly, self.physical, self.exports = resolver.assembly, resolver.physical, resolver.exports

    def _attribute(self, stack: str, logical_id: str, attribute: str) -> str:
        try:
            return super()._attribute(stack, logical_id, attribute)
        except AssemblyError:
            return f"<{stack}/{logical_id}.{attribute}: not deployed locally>"


def _aws_managed(arn: str) -> dict[str, Any]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    prefix = f"arn:{PARTITION}:iam::aws:policy/"
    if not arn.startswith(prefix):
        raise PermissionModelError(f"managed policy {arn}: only AWS managed policies are read locally")
    name = arn.rsplit("/", 1)[-1]
    policies = json.loads(aws_managed_policies_data)
    if name not in policies:
        raise AssemblyError(f"AWS managed policy {arn} is unknown to moto's copy of the AWS managed policies")
    return dict(policies[name]["Document"])


# Error codes as each service reports an authorization failure (their API references).
_DENIED_CODE = {"s3": "AccessDenied", "sns": "AuthorizationError", "sqs": "AccessDenied"}
_KMS_DENIED_CODE = {"sns": "KMSAccessDenied", "sqs": "KmsAccessDenied"}


def access_denied(principal: Principal, request: Request, reason: str, *, service: str, operation: str) -> ClientError:
    kms = request.action.lower().startswith("kms:") and service != "kms"
    code = (_KMS_DENIED_CODE.get(service) if kms else None) or _DENIED_CODE.get(service, "AccessDeniedException")
    message = (
        f"User: {principal.rendered()} is not authorized to perform: {request.action} "
        f"on resource: {request.resource} {reason}"
    )
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 403, "RequestId": str(uuid.uuid4())},
        },
        operation,
    )


# -- what each call asks for ---------------------------------------------------------------------
def queue_arn(url: str) -> str:
    """https://sqs.<region>.amazonaws.com/<account>/<name> -> arn:aws:sqs:<region>:<account>:<name>"""
    host, account, name = url.split("/")[-3:]
    region = host.split(".")[1] if host.startswith("sqs.") else REGION
    return f"arn:{PARTITION}:sqs:{region}:{account}:{name}"


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
    from localrun.moto_patches import _BUCKET, _plain_moto, _run_task

    global _store
    before, _store = _store, PolicyStore()  # no policy for anyone (consulted only where the entry is applied)
    try:
        with _plain_moto() as clients:
            clients["s3"].create_bucket(Bucket=_BUCKET)
            task = {
                "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
                "Parameters": {"Bucket": _BUCKET, "Key": "written-without-a-grant", "Body": "x"},
            }
            return _run_task(clients, "nogrant", task)["status"] == "SUCCEEDED"
    finally:
        _store = before
