"""Fixtures shared by every test package: the synthesized app, once per stage per run.

`synth("dev")` builds `app.build_app(config=stage_config("dev"))` into a directory of the run and
synthesizes it (cdk-nag runs as part of synth, so a finding fails every test that asks for that
stage). Each stage is synthesized at most once per run, however many tests, test packages and
pytest-xdist workers use it: the first worker to ask synthesizes under a file lock in the run's
shared temporary directory; the others, and later asks, read that cloud assembly. What the tests
read of the app besides the assembly (artifact ids, acknowledgements) is saved beside it.
`synth("local").outdir` is a cloud assembly the local runner and the DAG tests can load.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# Node 24 for jsii. pytest imports this conftest before any test module, and nothing above
# imports aws_cdk, so jsii's Node is started only after PATH points at the venv's Node.
import stacks.node_runtime  # noqa: F401

# Where boto3 sends requests, set by tests that run a moto server (tests/dags): restored after every
# test module, so no later test talks to a server that is gone (the variables outlive the DAG
# tests' own monkeypatch once Airflow has run a DAG in this process).
_ENDPOINT_PREFIXES = ("AWS_ENDPOINT_URL", "MOTO_")
_ENDPOINTS_AT_START = {k: v for k, v in os.environ.items() if k.startswith(_ENDPOINT_PREFIXES)}

# Airflow fixes its home and metadata database at its first import, and more than tests/dags import
# it (`make why` for a DAG run reads the deployed DAG's helpers). Under pytest-xdist a worker runs
# modules in any order, so each test process gets its own home before any test runs
# (tests/dags/conftest.py `airflow_environment` fills in the rest of the settings).
_AIRFLOW_HOME: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _AIRFLOW_HOME
    from tests.dags.conftest import airflow_environment

    _AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="airflow-home-"))
    for name, value in airflow_environment(_AIRFLOW_HOME).items():
        if name.startswith("AIRFLOW"):
            os.environ[name] = value


@pytest.hookimpl(trylast=True)  # after the packages' own hooks have marked their slow tests
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with slow-tier (or heavy) tests first, then the others, each group and each module's tests in
    collection order. pytest-xdist hands out modules in this order (`--no-loadscope-reorder`,
    Makefile): a long scenario module left for last keeps one worker busy while the other has
    finished; the many short modules at the end fill the gaps."""
    early = {item.path for item in items if item.get_closest_marker("slow") or item.get_closest_marker("heavy")}
    items.sort(key=lambda item: item.path not in early)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _AIRFLOW_HOME is not None:
        shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


def airflow_home_of_this_process() -> Path:
    """The Airflow home `pytest_configure` gave this test process."""
    assert _AIRFLOW_HOME is not None, "pytest_configure has not run"
    return _AIRFLOW_HOME


if TYPE_CHECKING:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template
    from pyspark.sql import SparkSession

    from stacks.config.deployment import DeploymentConfig


# The deployer's address a stage that requires one (prod) is synthesized with in tests.
TEST_NOTIFICATION_EMAILS = ("ops@example.com",)


def stage_config(stage: str) -> DeploymentConfig:
    """`config_for(stage)` as the tests deploy it: prod with TEST_NOTIFICATION_EMAILS, the others as they are."""
    from stacks.config.stages import config_for

    return config_for(stage, notification_emails=TEST_NOTIFICATION_EMAILS if stage == "prod" else ())


@dataclass(frozen=True)
class SynthesizedStack:
    """One stack of a synthesized stage, as the cloud assembly names it."""

    artifact_id: str
    template_file: str


@dataclass(frozen=True)
class Synthesized:
    """One synthesized stage: the cloud assembly directory, its stacks and templates by short name,
    and the app's cdk-nag acknowledgements {(construct path, rule id): reason}."""

    outdir: Path
    stacks: dict[str, SynthesizedStack]
    templates: dict[str, Template]
    acknowledgements: dict[tuple[str, str], Any]


def acknowledgements(app: cdk.App) -> dict[tuple[str, str], Any]:
    """{(construct path, rule id): reason} of every acknowledgement in the app."""
    import aws_cdk as cdk

    found: dict[tuple[str, str], Any] = {}
    for construct in app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in dict(entry.data).items():
                    found[(construct.node.path, rule.removeprefix("Annotation::"))] = reason
    return found


def _synthesize(stage: str, outdir: Path) -> dict[str, Any]:
    """Synthesize `stage` into `outdir`; what the tests read of the app besides the assembly."""
    import app as cdk_app

    app, stacks = cdk_app.build_app(config=stage_config(stage), outdir=str(outdir))
    app.synth()
    return {
        "stacks": {
            name: {"artifact_id": stack.artifact_id, "template_file": stack.template_file}
            for name, stack in stacks.items()
        },
        "acknowledgements": [[path, rule, reason] for (path, rule), reason in acknowledgements(app).items()],
    }


def _shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's temporary directory: under pytest-xdist, the one all workers' directories are in."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Synthesized]:
    """`synth(stage)`: the app for that stage's config, synthesized once per run."""
    from aws_cdk.assertions import Template

    shared = _shared_dir(tmp_path_factory)
    cache: dict[str, Synthesized] = {}

    def _synth(stage: str) -> Synthesized:
        if stage in cache:
            return cache[stage]
        outdir, facts_file, failure_file = (shared / f"cdk-{stage}{suffix}" for suffix in ("", ".json", ".failed"))
        with open(shared / f"cdk-{stage}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not facts_file.exists() and not failure_file.exists():
                try:
                    facts_file.write_text(json.dumps(_synthesize(stage, outdir)))
                except Exception:  # a failed synth is not retried by every later test or worker
                    failure_file.write_text(traceback.format_exc())
                    raise
        if failure_file.exists():
            raise RuntimeError(f"synth of stage {stage} failed (once for the run):\n{failure_file.read_text()}")
        facts = json.loads(facts_file.read_text())
        stacks = {name: SynthesizedStack(**stack) for name, stack in facts["stacks"].items()}
        cache[stage] = Synthesized(
            outdir=outdir,
            stacks=stacks,
            templates={
                name: Template.from_json(json.loads((outdir / stack.template_file).read_text()))
                for name, stack in stacks.items()
            },
            acknowledgements={(path, rule): reason for path, rule, reason in facts["acknowledgements"]},
        )
        return cache[stage]

    return _synth


@pytest.fixture(autouse=True, scope="session")
def _one_botocore_data_loader() -> Iterator[None]:
    """Every boto3 session of the run (moto makes one per mock) reads botocore's JSON once
    (localrun/emulator/botocore_data.py): the tests that use moto without local_aws() too."""
    from localrun.emulator.botocore_data import shared_botocore_data

    with shared_botocore_data():
        yield


@pytest.fixture(autouse=True, scope="module")
def _endpoints_restored() -> Iterator[None]:
    yield
    for name in [k for k in os.environ if k.startswith(_ENDPOINT_PREFIXES)]:
        if name not in _ENDPOINTS_AT_START:
            del os.environ[name]
    os.environ.update(_ENDPOINTS_AT_START)


@pytest.fixture(scope="module")
def dev(synth: Callable[[str], Synthesized]) -> Synthesized:
    """The dev stage, as deployed: what the template tests read (synthesized once per run)."""
    return synth("dev")


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    # Imported here so tests that never ask for Spark don't need pyspark or a JVM. The session is
    # the local Glue stand-in's: one per process, whoever asks first.
    from localrun.emulator.glue_standin import spark_session

    session = spark_session()
    yield session
    session.stop()
    # py4j logs "Closing down clientserver connection" at interpreter exit, after pytest has
    # closed the log streams; it is noise, not a failure.
    logging.getLogger("py4j").setLevel(logging.WARNING)
