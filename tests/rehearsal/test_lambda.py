"""Each Lambda a state machine invokes, loaded as Lambda loads it: its code package alone.

The function's `Code.S3Key` is mapped to the staged asset in cdk.out, zipped as CDK uploads it
and unpacked into a task root; its `Handler` is imported from there in a fresh interpreter with
nothing of the repository on the path (tests/rehearsal/lambda_runner.py), and invoked with the
payload its state machine sends (Parameters evaluated for a long, EventBridge-style execution
name) against moto S3 holding the object that payload points at.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from glue.manifest import build_manifest
from tests.helpers import all_states, definition_of, render, resolve_parameters
from tests.isolated_python import isolated_python
from tests.rehearsal.assets import AssemblyAssets, templates_of

pytestmark = pytest.mark.slow

RUNNER = Path(__file__).resolve().parent / "lambda_runner.py"
EXECUTION_NAME = "0f8b6c2e-3b5d-4f0e-9a51-5d2b9f7e1c44_1d7e4c9a-2f3b-4c5d-8e6f-7a8b9c0d1e2f"
BUCKET = "rehearsal-bucket"


def _invoked_functions(outdir: Path) -> list[tuple[str, str, str, dict[str, Any], dict[str, Any]]]:
    """(stack, state name, function logical id, function properties, Parameters of the invoking state)."""
    found = []
    for stack, template in templates_of(outdir).items():
        resources = template.get("Resources", {})
        for machine in (r for r in resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine"):
            for name, state in all_states(definition_of(machine)).items():
                target = state.get("Resource", "")
                if state.get("Type") == "Task" and target.startswith("${GetAtt:") and target.endswith(".Arn}"):
                    logical_id = target.removeprefix("${GetAtt:").removesuffix(".Arn}")
                    if resources.get(logical_id, {}).get("Type") == "AWS::Lambda::Function":
                        found.append(
                            (stack, name, logical_id, resources[logical_id]["Properties"], state["Parameters"])
                        )
    return found


RUN = {
    "name": f"{EXECUTION_NAME}-r1",
    "key": hashlib.md5(f"{EXECUTION_NAME}-r1".encode()).hexdigest(),
    "landing_path": f"s3://{BUCKET}/landing/run={EXECUTION_NAME}-r1/",
}
CSV = b"order_id,customer_id,order_date,amount,currency\nSO-1,C-1,2026-11-24,1.00,EUR\n"
RESULTS = "admission-results/map-run/"
# The state data each invoking state sees (what the machines put there before it), by state name.
STATE_DATA: dict[str, dict[str, Any]] = {
    "Check results": {"run": RUN},
    "Check replayed run": {"run": RUN, "replay": {"max_rejected_ratio": 0.5}},
    "Admit batch": {"Items": [{"key": "incoming/a.csv", "size": len(CSV), "run": RUN["name"]}]},
    "Summarize admission": {
        "run": RUN,
        "admission_map": {"ResultWriterDetails": {"Bucket": BUCKET, "Key": f"{RESULTS}manifest.json"}},
    },
}


def _objects(state: str, event: dict[str, Any]) -> list[list[str]]:
    """What S3 holds when the state runs: [bucket, key, text]."""
    if state.startswith("Check"):
        manifest = build_manifest(
            run_id="jr_rehearsal",
            admitted_records=10,
            input_rows=10,
            output_rows=10,
            rejected_rows=0,
            output_path="s3://curated/orders/",
            rejected_path="s3://curated/rejected/",
            input_files=["s3://landing/orders.csv"],
        )
        return [[event["bucket"], event["key"], json.dumps(manifest)]]
    if state == "Admit batch":
        return [[BUCKET, "incoming/a.csv", CSV.decode()]]
    # Summarize admission: a map run's ResultWriter output, one child that admitted one file.
    child = {"admitted": 1, "quarantined": 0, "records": 1, "by_reason": {}, "examples": []}
    results = [
        {"ExecutionArn": "arn:x:1", "Name": "1", "Status": "SUCCEEDED", "Input": "{}", "Output": json.dumps(child)}
    ]
    manifest = {
        "DestinationBucket": BUCKET,
        "MapRunArn": "arn:x",
        "ResultFiles": {"FAILED": [], "PENDING": [], "SUCCEEDED": [{"Key": f"{RESULTS}SUCCEEDED_0.json", "Size": 1}]},
    }
    return [
        [BUCKET, f"{RESULTS}SUCCEEDED_0.json", json.dumps(results)],
        [BUCKET, f"{RESULTS}manifest.json", json.dumps(manifest)],
    ]


def _answered(state: str, result: dict[str, Any], event: dict[str, Any]) -> bool:
    if state.startswith("Check"):
        return result["valid"] is True and result["manifest"] == f"s3://{event['bucket']}/{event['key']}"
    if state == "Admit batch":
        return (result["admitted"], result["quarantined"], result["records"]) == (1, 0, 1)
    return (result["admitted"], result["quarantined"], result["records"]) == (1, 0, 1)


def _payload(state: str, parameters: dict[str, Any]) -> dict[str, Any]:
    assert state in STATE_DATA, f"a Lambda invoked by state {state!r} has no rehearsal case: add one"
    context = {"Execution": {"Name": EXECUTION_NAME}}
    event = resolve_parameters(parameters, STATE_DATA[state], context)
    # Tokens resolved only by CloudFormation (bucket names) become the test bucket.
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
    variables = {k: BUCKET if v.startswith("${") else v for k, v in variables.items()}
    # The machine's own AWS settings stay out: the handler talks to the moto of its interpreter only.
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))},
        **variables,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    done = subprocess.run(
        [*isolated_python(), str(RUNNER), str(layout)],
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
    assert {state for _, state, *_ in functions} == set(STATE_DATA), f"{stage}: the Lambdas invoked changed"
    for index, (stack, state, logical_id, function, parameters) in enumerate(functions):
        event = _payload(state, parameters)
        case = tmp_path / f"{index}-{logical_id}"
        case.mkdir()
        what = f"{stage}: {stack} Lambda {logical_id} (state {state!r})"
        result = _invoke(function, event, _objects(state, event), case, outdir, what)
        assert _answered(state, result, event), f"{what} answered {result}"
