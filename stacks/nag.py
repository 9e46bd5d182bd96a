"""Acknowledging cdk-nag findings next to the resources they are about, each with a reason.

cdk-nag 3 matches acknowledgements by exact finding id, and an IAM5 finding id spells out the
resource as it appears in the template: `<LogicalId.Arn>` for a resource of the same stack, the
export name for one imported from another stack. `rendered_arn` builds that spelling so the
acknowledgements keep matching whichever stack the resource ends up in.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from constructs import Construct, IConstruct

# Actions that CDK's own grant methods (grant_read, grant_read_write, grant_encrypt_decrypt)
# spell with a wildcard; each stands for a fixed, documented set of actions on one resource.
GRANT_READ_ACTIONS = ("s3:GetBucket*", "s3:GetObject*", "s3:List*")
GRANT_WRITE_ACTIONS = ("s3:Abort*", "s3:DeleteObject*")
GRANT_KMS_ACTIONS = ("kms:GenerateDataKey*", "kms:ReEncrypt*")


def acknowledge(scope: IConstruct, reason: str, *rule_ids: str) -> None:
    """Acknowledge findings on `scope` and everything below it."""
    Validations.of(scope).acknowledge(*(Acknowledgment(id=rule_id, reason=reason) for rule_id in rule_ids))


def acknowledge_grant_actions(scope: IConstruct, *actions: str) -> None:
    acknowledge(
        scope,
        "Wildcard actions come from CDK grant methods and are scoped to the granted resources only.",
        *(f"AwsSolutions-IAM5[Action::{action}]" for action in actions),
    )


def rendered_arn(consumer: Construct, resource: IConstruct, attribute: str = "Arn") -> str:
    """How cdk-nag spells `resource`'s ARN (or Ref with attribute="") in a policy of `consumer`."""
    producer = Stack.of(resource)
    cfn = resource if CfnResource.is_cfn_resource(resource) else resource.node.default_child
    logical_id = producer.get_logical_id(cfn)  # type: ignore[arg-type]
    if producer is Stack.of(consumer):
        return f"<{logical_id}.{attribute}>" if attribute else f"<{logical_id}>"
    value = cfn.get_att(attribute).to_string() if attribute else cfn.ref  # type: ignore[union-attr]
    return str(producer.resolve(producer.export_value(value))["Fn::ImportValue"])
