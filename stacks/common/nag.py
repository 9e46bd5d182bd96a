"""Acknowledging cdk-nag and checkov findings next to the resources they are about, each with a reason.

checkov reads the synthesized templates: a skip is CloudFormation metadata on the resource,
`checkov: {skip: [{id, comment}]}`. Where a cdk-nag rule and a checkov check are the same finding
(CHECKOV_EQUIVALENTS), acknowledging the rule skips the check with the same reason.

cdk-nag 3 matches acknowledgements by exact finding id, and an IAM5 finding id spells out the
resource as it appears in the template: `<LogicalId.Arn>` for a resource of the same stack, the
export name for one imported from another stack, `<AWS::Region>` for a pseudo parameter in an ARN
made with `format_arn`. `rendered_arn` builds that spelling so the acknowledgements keep matching
whichever stack the resource ends up in.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from constructs import Construct, IConstruct

# Actions that CDK's own grant methods (grant_read, grant_read_write, grant_encrypt_decrypt)
# spell with a wildcard; each stands for a fixed, documented set of actions on one resource.
GRANT_READ_ACTIONS = ("s3:GetBucket*", "s3:GetObject*", "s3:List*")
GRANT_WRITE_ACTIONS = ("s3:Abort*", "s3:DeleteObject*")
GRANT_KMS_ACTIONS = ("kms:GenerateDataKey*", "kms:ReEncrypt*")


# cdk-nag rule -> the checkov checks that report the same thing, and the resource type they check.
CHECKOV_EQUIVALENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "AwsSolutions-S1": (("CKV_AWS_18", "AWS::S3::Bucket"),),  # server access logging
    "Serverless-LambdaDLQ": (("CKV_AWS_116", "AWS::Lambda::Function"),),  # asynchronous-invocation DLQ
    "AwsSolutions-DDB3": (("CKV_AWS_28", "AWS::DynamoDB::Table"),),  # point-in-time recovery
}


def acknowledge(scope: IConstruct, reason: str, *rule_ids: str) -> None:
    """Acknowledge findings on `scope` and everything below it (and their checkov equivalents)."""
    Validations.of(scope).acknowledge(*(Acknowledgment(id=rule_id, reason=reason) for rule_id in rule_ids))
    for rule_id in rule_ids:
        for check_id, resource_type in CHECKOV_EQUIVALENTS.get(rule_id, ()):
            skip_checkov(scope, reason, check_id, resource_type=resource_type)


def skip_checkov(scope: IConstruct, reason: str, *check_ids: str, resource_type: str | None = None) -> None:
    """Skip checkov checks on the CloudFormation resources at and below `scope` (of one type, if given)."""
    for node in scope.node.find_all():
        # isinstance rather than CfnResource.is_cfn_resource: jsii hands each L1 resource to Python as its
        # own class, so the answer is the same without a round trip to Node per construct (this module
        # makes most of the app's jsii calls).
        if not isinstance(node, CfnResource):
            continue
        if resource_type is None or node.cfn_resource_type == resource_type:
            _add_checkov_skips(node, dict.fromkeys(check_ids, reason))


def _add_checkov_skips(resource: CfnResource, reasons: dict[str, str]) -> None:
    """Add `reasons` (check id -> comment) to the resource's checkov skips, replacing any for the same checks."""
    existing = resource.get_metadata("checkov") or {}
    skips = [s for s in existing.get("skip", []) if s["id"] not in reasons]
    resource.add_metadata("checkov", {"skip": skips + [{"id": i, "comment": c} for i, c in reasons.items()]})


# CDK's own deploy-time handlers, by the construct id CDK gives them: custom-resource providers
# and BucketDeployment ("Custom::..."), the bucket-notifications, log-retention and AwsCustomResource
# singletons. The app names none of its own constructs like these.
CDK_PROVIDER_ID_PREFIXES = (
    "Custom::",
    "BucketNotificationsHandler050a0587b7544547bf325f094a3db834",
    "LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8a",
    "AWS679f53fac002430cb0da5b7982bd2287",
)
CDK_PROVIDER_SKIPS = {
    "CKV_AWS_115": "CDK's own deploy-time handler: CloudFormation invokes it a few times per deployment; "
    "reserving concurrency would only take from the account's pool.",
    "CKV_AWS_116": "CDK's own deploy-time handler: CloudFormation invokes it synchronously and reports "
    "a failure on the stack; an asynchronous-invocation DLQ would never receive anything.",
    "CKV_AWS_117": "CDK's own deploy-time handler: it calls AWS APIs only, reaches nothing in a VPC.",
    "CKV_AWS_173": "CDK's own deploy-time handler: its environment holds no secrets (paths and flags), "
    "encrypted at rest by Lambda's AWS managed key.",
}
CDK_PROVIDER_LOG_SKIPS = {
    "CKV_AWS_158": "The log group of CDK's own deploy-time handler (@aws-cdk/aws-lambda:useCdkManagedLogGroup): "
    "deploy logs only, no pipeline data; CloudWatch Logs encrypts it at rest with its own key.",
}


def skip_checkov_on_cdk_providers(stacks: Iterable[Stack]) -> None:
    """Skip the Lambda checks on CDK's own custom-resource handlers (and their log groups), which the
    app does not configure. CDK adds those singletons as children of their stack; run once the stacks
    are built. (A pass over each stack's children, not an aspect: an aspect calls back into Python for
    every construct of the app during synth, a jsii round trip each.)"""
    skips = {"AWS::Lambda::Function": CDK_PROVIDER_SKIPS, "AWS::Logs::LogGroup": CDK_PROVIDER_LOG_SKIPS}
    for stack in stacks:
        for provider in stack.node.children:
            if not provider.node.id.startswith(CDK_PROVIDER_ID_PREFIXES):
                continue
            for node in provider.node.find_all():
                if isinstance(node, CfnResource) and (resource_type := node.cfn_resource_type) in skips:
                    _add_checkov_skips(node, skips[resource_type])


def acknowledge_grant_actions(scope: IConstruct, *actions: str) -> None:
    acknowledge(
        scope,
        "Wildcard actions come from CDK grant methods and are scoped to the granted resources only.",
        *(f"AwsSolutions-IAM5[Action::{action}]" for action in actions),
    )


def rendered_arn(consumer: Construct, resource: IConstruct | str, attribute: str = "Arn") -> str:
    """How cdk-nag spells an ARN in a policy of `consumer`: `resource`'s ARN (or Ref with
    attribute=""), or an ARN string made with `format_arn` (pseudo parameters as `<AWS::...>`)."""
    if isinstance(resource, str):
        resolved = Stack.of(consumer).resolve(resource)
        if isinstance(resolved, str):
            return resolved
        parts = resolved["Fn::Join"][1]
        return "".join(part if isinstance(part, str) else f"<{part['Ref']}>" for part in parts)
    producer = Stack.of(resource)
    cfn = resource if isinstance(resource, CfnResource) else resource.node.default_child
    logical_id = producer.get_logical_id(cfn)  # type: ignore[arg-type]
    if producer is Stack.of(consumer):
        return f"<{logical_id}.{attribute}>" if attribute else f"<{logical_id}>"
    value = cfn.get_att(attribute).to_string() if attribute else cfn.ref  # type: ignore[union-attr]
    return str(producer.resolve(producer.export_value(value))["Fn::ImportValue"])


def rendered_state_machine_name(consumer: Construct, state_machine: IConstruct) -> str:
    """How cdk-nag spells a state machine's name (the 7th field of its ARN) in a policy of `consumer`."""
    machine = rendered_arn(consumer, state_machine, attribute="")
    ref = f'{{"Ref":"{machine[1:-1]}"}}' if machine.startswith("<") else f'{{"Fn::ImportValue":"{machine}"}}'
    return f'{{"Fn::Select":[6,{{"Fn::Split":[":",{ref}]}}]}}'
