"""What each principal may do: the assembly's policies, read once, and AWS's evaluation of a request.

The identity policies of each role (inline, AWS::IAM::Policy, AWS managed), the resource policies
(bucket, key, topic, queue) and which key encrypts what, read from the cloud assembly; a request is
allowed or denied as AWS decides it (an explicit Deny wins, a KMS key must allow the caller in its
key policy). localrun/emulator/permissions.py decides who calls and what each call asks for; the
matching rules and what is not modelled are described there.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError
from moto.iam.access_control import IAMPolicyStatement, PermissionResult

from localrun.emulator.assembly import ACCOUNT_ID, PARTITION, REGION, AssemblyError, CloudAssembly, Resolver

if TYPE_CHECKING:
    pass


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


@functools.cache
def _aws_managed_policies() -> dict[str, Any]:
    """moto's copy of the AWS managed policies, parsed once per process (a few MB of JSON: 0.2 s)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return cast(dict[str, Any], json.loads(aws_managed_policies_data))


def _aws_managed(arn: str) -> dict[str, Any]:
    prefix = f"arn:{PARTITION}:iam::aws:policy/"
    if not arn.startswith(prefix):
        raise PermissionModelError(f"managed policy {arn}: only AWS managed policies are read locally")
    name = arn.rsplit("/", 1)[-1]
    policies = _aws_managed_policies()
    if name not in policies:
        raise AssemblyError(f"AWS managed policy {arn} is unknown to moto's copy of the AWS managed policies")
    return copy.deepcopy(dict(policies[name]["Document"]))


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
