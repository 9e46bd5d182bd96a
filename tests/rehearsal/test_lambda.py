"""Each Lambda a state machine invokes, loaded as Lambda loads it: its code package alone.

The function's `Code.S3Key` is mapped to the staged asset in cdk.out, zipped as CDK uploads it
and unpacked into a task root; its `Handler` is imported from there in a fresh interpreter with
nothing of the repository on the path (tests/rehearsal/lambda_runner.py), and invoked with the
payload its state machine sends (Parameters evaluated for a long, EventBridge-style execution
name) against moto S3 holding the object that payload points at.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from glue.manifest import build_manifest
from tests.helpers import all_states, definition_of, render, resolve_parameters
from tests.rehearsal.assets import AssemblyAssets, templates_of

pytestmark = pytest.mark.slow

RUNNER = Path(__file__).resolve().parent / "lambda_runner.py"
EXECUTION_NAME = "0f8b6c2e-3b5d-4f0e-9a51-5d2b9f7e1c44_1d7e4c9a-2f3b-4c5d-8e6f-7a8b9c0d1e2f"
BUCKET = "rehearsal-curated-bucket"


def _invoked_functions(outdir: Path) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(stack, logical id, function properties, Parameters of the state invoking it)."""
    found = []
    for stack, template in templates_of(outdir).items():
        resources = template.get("Resources", {})
        for machine in (r for r in resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine"):
            for state in all_states(definition_of(machine)).values():
                target = state.get("Resource", "")
                if state.get("Type") == "Task" and target.startswith("${GetAtt:") and target.endswith(".Arn}"):
                    logical_id = target.removeprefix("${GetAtt:").removesuffix(".Arn}")
                    if resources.get(logical_id, {}).get("Type") == "AWS::Lambda::Function":
                        found.append((stack, logical_id, resources[logical_id]["Properties"], state["Parameters"]))
    return found


def _payload(parameters: dict[str, Any]) -> dict[str, Any]:
    context = {"Execution": {"Name": EXECUTION_NAME}}
    event = resolve_parameters(parameters, {}, context)
    # Tokens resolved only by CloudFormation (the curated bucket's name) become the test bucket.
    return {k: BUCKET if isinstance(v, str) and v.startswith("${") else v for k, v in event.items()}


def _invoke(
    function: dict[str, Any], event: dict[str, Any], objects: list[list[str]], tmp_path: Path, outdir: Path, what: str
) -> dict[str, Any]:
    staged = AssemblyAssets(outdir).file_for(function["Code"]["S3Key"], what=f"{what} Code.S3Key")
    package = staged.materialize(tmp_path)
    task_root = tmp_path / "var-task"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(task_root)
    layout = tmp_path / "layout.json"
    layout.write_text(
        json.dumps({"task_root": str(task_root), "handler": function["Handler"], "event": event, "objects": objects})
    )
    variables = {k: render(v) for k, v in function.get("Environment", {}).get("Variables", {}).items()}
    env = {
        **os.environ,
        **variables,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    done = subprocess.run(
        [sys.executable, "-I", str(RUNNER), str(layout)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    last_line = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    assert done.returncode == 0, (
        f"{what}: handler {function['Handler']} from {function['Code']['S3Key']} "
        f"(cdk.out/{staged.source.name}) failed as Lambda would load it: {last_line}"
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_each_invoked_lambda_imports_from_its_package_alone_and_answers(
    assembly: tuple[str, Path], tmp_path: Path
) -> None:
    stage, outdir = assembly
    functions = _invoked_functions(outdir)
    assert functions, f"{stage}: no state machine invokes a Lambda function"
    for stack, logical_id, function, parameters in functions:
        event = _payload(parameters)
        manifest = build_manifest(
            run_id="jr_rehearsal",
            input_rows=10,
            output_rows=10,
            rejected_rows=0,
            output_path="s3://curated/orders/",
            rejected_path="s3://curated/rejected/",
            input_files=["s3://landing/orders.csv"],
        )
        case = tmp_path / logical_id
        case.mkdir()
        result = _invoke(
            function,
            event,
            [[event["bucket"], event["key"], json.dumps(manifest)]],
            case,
            outdir,
            f"{stage}: {stack} Lambda {logical_id}",
        )
        assert result["valid"] is True, result
        assert result["manifest"] == f"s3://{event['bucket']}/{event['key']}"
