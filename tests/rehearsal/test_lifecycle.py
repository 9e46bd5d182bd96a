"""What `make destroy` then `make deploy` needs from every stage's templates.

- Outside production, destroy removes everything: no resource is retained (CDK retains some
  resources by default, a Glue security configuration among them).
- A retained resource with a name of its own would block the next deploy of its stack
  (AlreadyExists): its name must be unique per stack instance, i.e. carry the stack's id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import stage_config
from tests.helpers import refs_in, render
from tests.rehearsal.assets import templates_of

RETAINED = {"Retain", "RetainExceptOnCreate", "Snapshot"}
# Where each type keeps the name it is created under, when a template gives one.
NAME_PROPERTIES: dict[str, tuple[str, ...]] = {
    "AWS::Glue::SecurityConfiguration": ("Name",),
    "AWS::Glue::Database": ("DatabaseInput", "Name"),
    "AWS::Glue::Crawler": ("Name",),
    "AWS::Glue::Job": ("Name",),
    "AWS::Logs::LogGroup": ("LogGroupName",),
    "AWS::S3::Bucket": ("BucketName",),
    "AWS::SNS::Topic": ("TopicName",),
    "AWS::SQS::Queue": ("QueueName",),
    "AWS::StepFunctions::StateMachine": ("StateMachineName",),
    "AWS::Lambda::Function": ("FunctionName",),
    "AWS::IAM::Role": ("RoleName",),
    "AWS::KMS::Alias": ("AliasName",),
    "AWS::Events::Rule": ("Name",),
    "AWS::MWAA::Environment": ("Name",),
}


def _name_of(resource: dict[str, Any]) -> Any:
    value: Any = resource.get("Properties", {})
    for key in NAME_PROPERTIES.get(resource["Type"], ("Name",)):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _unique_per_stack_instance(name: Any, template: dict[str, Any]) -> bool:
    """The stack's id, or the name CloudFormation generated for another resource of the stack (a
    Ref to a resource without a name of its own): both are new for every stack instance."""
    if "${Ref:AWS::StackId}" in render(name):
        return True
    resources = template.get("Resources", {})
    return any(_name_of(resources[ref]) is None for ref in refs_in(name) if ref in resources)


def _resources(outdir: Path) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (stack, logical_id, resource)
        for stack, template in templates_of(outdir).items()
        for logical_id, resource in template.get("Resources", {}).items()
    ]


def test_outside_production_destroy_leaves_nothing_behind(assembly: tuple[str, Path]) -> None:
    stage, outdir = assembly
    if stage_config(stage).is_production:
        return  # production keeps its data on purpose; see the test below
    kept = [
        f"{stack} {logical_id} ({resource['Type']}): DeletionPolicy {resource.get('DeletionPolicy')}"
        for stack, logical_id, resource in _resources(outdir)
        if resource.get("DeletionPolicy") in RETAINED or resource.get("UpdateReplacePolicy") in RETAINED
    ]
    assert not kept, f"{stage}: resources that outlive `make destroy`: {kept}"


def test_every_retained_resource_with_a_name_is_unique_per_stack_instance(assembly: tuple[str, Path]) -> None:
    stage, outdir = assembly
    retained = [(s, i, r) for s, i, r in _resources(outdir) if r.get("DeletionPolicy") in RETAINED]
    colliding = [
        f"{stack} {logical_id} ({resource['Type']}) named {render(name)!r}"
        for stack, logical_id, resource in retained
        if (name := _name_of(resource)) is not None
        and not _unique_per_stack_instance(name, templates_of(outdir)[stack])
    ]
    assert not colliding, (
        f"{stage}: retained resources whose names the next deploy would reuse (AlreadyExists): {colliding}"
    )
