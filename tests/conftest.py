"""Fixtures shared by every test package: the synthesized app, once per stage per session.

`synth("dev")` builds `app.build_app(config=stage_config("dev"))` into a temporary directory and
synthesizes it (cdk-nag runs as part of synth, so a finding fails every test that asks for that
stage). The result is cached: each stage is synthesized at most once per session, however many
tests and test packages use it. `synth("local").outdir` is a cloud assembly the local runner and
the DAG tests can load.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# Node 24 for jsii. pytest imports this conftest before any test module, and nothing above
# imports aws_cdk, so jsii's Node is started only after PATH points at the venv's Node.
import stacks.node_runtime  # noqa: F401

# Where boto3 sends requests, set by tests that run a moto server (tests/dags): restored after every
# test module, so no later test talks to a server that is gone (the variables outlive the DAG
# tests' own monkeypatch once Airflow has run a DAG in this process).
_ENDPOINT_PREFIXES = ("AWS_ENDPOINT_URL", "MOTO_")
_ENDPOINTS_AT_START = {k: v for k, v in os.environ.items() if k.startswith(_ENDPOINT_PREFIXES)}

if TYPE_CHECKING:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from stacks.config import DeploymentConfig


# The deployer's address a stage that requires one (prod) is synthesized with in tests.
TEST_NOTIFICATION_EMAILS = ("ops@example.com",)


def stage_config(stage: str) -> DeploymentConfig:
    """`config_for(stage)` as the tests deploy it: prod with TEST_NOTIFICATION_EMAILS, the others as they are."""
    from stacks.config import config_for

    return config_for(stage, notification_emails=TEST_NOTIFICATION_EMAILS if stage == "prod" else ())


@dataclass(frozen=True)
class Synthesized:
    """One synthesized stage: the cloud assembly directory, the app, its stacks and templates by short name."""

    outdir: Path
    app: cdk.App
    stacks: dict[str, cdk.Stack]
    templates: dict[str, Template]


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Synthesized]:
    """`synth(stage)`: the app for that stage's config, synthesized once per session."""
    from aws_cdk.assertions import Template

    import app as cdk_app

    cache: dict[str, Synthesized | Exception] = {}

    def _synth(stage: str) -> Synthesized:
        if stage not in cache:
            try:
                outdir = tmp_path_factory.mktemp(f"cdk-{stage}", numbered=True)
                app, stacks = cdk_app.build_app(config=stage_config(stage), outdir=str(outdir))
                app.synth()
                # Template.from_stack reuses the assembly synthesized above (no second synth).
                templates = {name: Template.from_stack(stack) for name, stack in stacks.items()}
                cache[stage] = Synthesized(outdir=outdir, app=app, stacks=stacks, templates=templates)
            except Exception as error:  # a failed synth is not retried by every later test
                cache[stage] = error
        result = cache[stage]
        if isinstance(result, Exception):
            raise result
        return result

    return _synth


@pytest.fixture(autouse=True, scope="module")
def _endpoints_restored() -> Iterator[None]:
    yield
    for name in [k for k in os.environ if k.startswith(_ENDPOINT_PREFIXES)]:
        if name not in _ENDPOINTS_AT_START:
            del os.environ[name]
    os.environ.update(_ENDPOINTS_AT_START)
