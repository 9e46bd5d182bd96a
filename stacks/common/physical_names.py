"""Names for resources that must have one, and that may outlive their stack.

Some resources need a name (a Glue security configuration) or a name in a given form (a
state machine log group under /aws/vendedlogs/). CDK's generated names come from the construct
path, so they are the same on every deployment of a stack: a resource kept by RETAIN after
`cdk destroy` then blocks the next deploy with AlreadyExists. A kept resource's name therefore
ends with its stack's unique id (the UUID in the stack id, new for every stack instance).
"""

from __future__ import annotations

from aws_cdk import Aws, Fn, Names, RemovalPolicy
from constructs import Construct

STACK_UUID_LENGTH = 36


def stack_instance_id(*, without_hyphens: bool = False) -> str:
    """The UUID CloudFormation gives this stack instance (a token): unique per create."""
    uuid = Fn.select(2, Fn.split("/", Aws.STACK_ID))
    return Fn.join("", Fn.split("-", uuid)) if without_hyphens else uuid


def physical_name(
    scope: Construct,
    *,
    removal_policy: RemovalPolicy,
    max_length: int,
    prefix: str = "",
    separator: str = "-",
    lowercase: bool = False,
) -> str:
    """`prefix` + a name unique to `scope`'s path, + the stack instance's id when the resource is kept.

    `max_length` bounds the whole name; `separator` and `lowercase` suit the service's rules
    (Glue databases: lowercase, digits and `_`; hyphens removed from the id then).
    """
    kept = removal_policy != RemovalPolicy.DESTROY
    suffix_length = len(separator) + STACK_UUID_LENGTH if kept else 0
    base = Names.unique_resource_name(scope, max_length=max_length - len(prefix) - suffix_length)
    base = base.lower() if lowercase else base
    if not kept:
        return prefix + base
    return Fn.join(separator, [prefix + base, stack_instance_id(without_hyphens=separator == "_")])
