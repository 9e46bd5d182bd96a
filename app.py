#!/usr/bin/env python3
"""Composition root: config -> stacks -> cdk-nag -> synth.

The only place that reads CDK context (`-c stage=dev|prod|local`). Tests and the local runner
call `build_app` with a config of their own.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

# Only plain Python at import time: a bad stage or context key is refused in a tenth of a second, and
# `make deploy` learns its stacks, before the 7 s of CDK imports that build_app pays.
from stacks.config.checks import ConfigError
from stacks.config.deployment import DeploymentConfig
from stacks.config.stages import config_for

if TYPE_CHECKING:
    import aws_cdk as cdk

APP_NAME = "GluePipeline"
# Feature flags live in cdk.json; apps built in-process (tests, local runs) must see the same.
# What the CDK CLI sets for every synth: asset paths in template metadata (the local runner uses them).
CLI_DEFAULTS: dict[str, object] = {"aws:cdk:enable-asset-metadata": True}
FEATURE_FLAGS: dict[str, object] = json.loads((Path(__file__).parent / "cdk.json").read_text())["context"]


def stack_ids(config: DeploymentConfig) -> dict[str, str]:
    prefix = f"{APP_NAME}-{config.stage}"
    return {name: f"{prefix}-{name.capitalize()}" for name in ("storage", "pipeline", "orchestration")}


def deployed_stack_ids(config: DeploymentConfig) -> list[str]:
    """What `make deploy` deploys: the MWAA stack (billed by the hour) only when it is the outer loop."""
    ids = stack_ids(config)
    return [ids["storage"], ids["pipeline"]] + ([ids["orchestration"]] if config.outer_loop == "mwaa" else [])


def build_app(*, config: DeploymentConfig, outdir: str | None = None) -> tuple[cdk.App, dict[str, cdk.Stack]]:
    """Build the app for one deployment stage; returns the app and its stacks by short name."""
    from stacks import template_validator

    template_validator.start()  # a helper process builds it while this one builds the stacks
    import stacks.node_runtime  # noqa: F401, I001  (Node 24 for jsii, before aws_cdk is imported)
    import aws_cdk as cdk

    from stacks.common.nag import skip_checkov_on_cdk_providers
    from stacks.orchestration.orchestration_stack import OrchestrationStack
    from stacks.pipeline.pipeline_stack import PipelineStack
    from stacks.storage.storage_stack import StorageStack

    # What the imports made (aws_cdk's classes and functions) lives as long as the process: out of every
    # later garbage collection, which would otherwise walk it again and again while the stacks are built.
    # Once per process: a later build (tests build several apps) imports nothing new.
    if not gc.get_freeze_count():
        gc.freeze()

    # aws-cdk-lib's template validator runs in the helper (template_validator.plugins() below).
    app = cdk.App(
        outdir=outdir,
        context={**FEATURE_FLAGS, **CLI_DEFAULTS, "stage": config.stage},
        builtin_cloud_formation_validation=False,
    )
    # Account and region come from the CLI's credentials at deploy time; none are hard-coded.
    ids = stack_ids(config)
    # Stack tags explicitly (@aws-cdk/core:explicitStackTags): CloudFormation puts them on the stack
    # and its resources; Tags.of below also writes them into the templates, as before the flag.
    tags = {"application": APP_NAME, "stage": config.stage}
    storage = StorageStack(
        app,
        ids["storage"],
        config=config,
        description="Glue pipeline: buckets, KMS key, Glue database, topic (stateful)",
        tags=tags,
    )
    pipeline = PipelineStack(
        app,
        ids["pipeline"],
        config=config,
        storage=storage,
        description="Glue pipeline: crawler, job, state machines, triggers (stateless)",
        tags=tags,
    )
    orchestration = OrchestrationStack(
        app,
        ids["orchestration"],
        config=config,
        storage=storage,
        pipeline=pipeline,
        description="Glue pipeline: MWAA environment and DAG (outer loop)",
        tags=tags,
    )
    for stack in (storage, pipeline, orchestration):
        for key, value in tags.items():
            cdk.Tags.of(stack).add(key, value)
    # cdk-nag 3 is a policy-validation plugin: any unacknowledged finding fails synth.
    from cdk_nag import AwsSolutionsChecks, ServerlessChecks  # loading it is a jsii call: after the stacks' imports

    # aws-cdk-lib's own template validator too, in the helper (same plugin and rules; none with
    # CDK_VALIDATION=false, aws-cdk-lib's switch for its built-in one).
    cdk.Validations.of(app).add_plugins(*template_validator.plugins(), AwsSolutionsChecks(app), ServerlessChecks(app))
    # checkov (in `make test`) reads the templates: CDK's own handlers carry their skips and reasons.
    skip_checkov_on_cdk_providers((storage, pipeline, orchestration))
    return app, {"storage": storage, "pipeline": pipeline, "orchestration": orchestration}


# Context keys this app reads: the stage, and the deployer's notification addresses (prod requires
# one; they are not the repository's to know). CDK's own keys are namespaced (`@aws-cdk/...`, `aws:cdk:...`,
# lookups such as `availability-zones:account=...`); any other plain key is a typo such as `stag`.
APP_CONTEXT_KEYS = ("stage", "notification_emails")


def stage_from_context(context: dict[str, object]) -> object:
    """The stage `-c stage=...` names (dev when none is given), or a ConfigError for an unknown key."""
    for key, value in context.items():
        if key not in APP_CONTEXT_KEYS and not key.startswith("@") and ":" not in key:
            raise ConfigError(
                f"context {key} = {value!r}: not a key this app reads; the ones it reads are stage "
                "(-c stage=dev|prod|local) and notification_emails (-c notification_emails=a@example.com,b@example.com)"
            )
    return context.get("stage", "dev")


def cli_context() -> dict[str, object]:
    """The context the CDK CLI hands the app (cdk.json's and `-c key=value`), read as aws-cdk-lib's App
    reads it: CDK_CONTEXT_JSON, then the file CONTEXT_OVERFLOW_LOCATION_ENV names when it is too long."""
    context: dict[str, object] = json.loads(os.environ.get("CDK_CONTEXT_JSON") or "{}")
    overflow = os.environ.get("CONTEXT_OVERFLOW_LOCATION_ENV")
    if overflow:
        context.update(json.loads(Path(overflow).read_text()))
    return context


def emails_from_context(context: dict[str, object]) -> tuple[str, ...]:
    """The addresses `-c notification_emails=a@x,b@y` names (comma-separated; none when absent or empty)."""
    value = context.get("notification_emails", "")
    return tuple(email.strip() for email in str(value).split(",") if email.strip())


def main(argv: list[str]) -> int:
    """Synthesize the stage the context names (`cdk synth -c stage=... [-c notification_emails=...]`),
    or, with `--deploy-stacks STAGE [EMAILS]`, print the stacks `make deploy` deploys. Invalid config or context:
    one line on stderr naming the field or key, the value and what is allowed; exit status 2."""
    if argv[:1] == ["--deploy-stacks"]:  # for make, which reads stdout: the stacks or the error line
        try:
            stage = argv[1] if len(argv) in (2, 3) else None
            emails = emails_from_context({"notification_emails": argv[2]} if len(argv) == 3 else {})
            print(*deployed_stack_ids(config_for(stage, notification_emails=emails)))
        except ConfigError as error:
            print(f"error: {error}")
            return 2
        return 0
    try:
        context = cli_context()
        config = config_for(stage_from_context(context), notification_emails=emails_from_context(context))
        app, _ = build_app(config=config)  # the App reads the CLI's context and output folder itself
        app.synth()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
