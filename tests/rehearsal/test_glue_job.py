"""Each Glue job, loaded as Glue loads it: from the objects CDK uploads, under their object names.

`Command.ScriptLocation` and `--extra-py-files` are mapped from their S3 keys to the staged
files in cdk.out, downloaded into folders under those keys, and the script is run as __main__
in a fresh interpreter with only those folders, the awsglue stand-in and the installed packages
on its path (tests/rehearsal/glue_job_runner.py). The arguments are what Glue passes: its own
(`--JOB_ID`, `--JOB_RUN_ID`, `--JOB_NAME`), the job's DefaultArguments and the Arguments each
state machine starts it with. The run ends after `getResolvedOptions`: a missing module or a
missing or reserved argument fails here, naming the asset and its key.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from stacks.pipeline.glue_resources import JOB_LIBRARIES
from tests.helpers import all_states, definition_of, render
from tests.isolated_python import isolated_python
from tests.rehearsal.assets import AssemblyAssets, s3_object_key, templates_of

if TYPE_CHECKING:
    from tests.conftest import Synthesized

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "glue_job_runner.py"
AWSGLUE_STUB = HERE / "awsglue_stub"


def _glue_jobs(outdir: Path) -> list[tuple[str, str, dict[str, Any], list[dict[str, Any]]]]:
    """(stack, logical id, job properties, Arguments of every startJobRun of it) per Glue job."""
    jobs = []
    for stack, template in templates_of(outdir).items():
        resources = template.get("Resources", {})
        starts: dict[str, list[dict[str, Any]]] = {}
        for machine in (r for r in resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine"):
            for state in all_states(definition_of(machine)).values():
                if ":states:::glue:startJobRun" in state.get("Resource", ""):
                    job_name = state["Parameters"]["JobName"]
                    starts.setdefault(job_name, []).append(state["Parameters"].get("Arguments", {}))
        for logical_id, resource in resources.items():
            if resource["Type"] == "AWS::Glue::Job":
                runs = starts.get(f"${{Ref:{logical_id}}}", [])
                jobs.append((stack, logical_id, resource["Properties"], runs or [{}]))
    return jobs


def _glue_argv(job_name: str, default_arguments: dict[str, Any], run_arguments: dict[str, Any]) -> list[str]:
    argv = ["--JOB_ID", "j_rehearsal", "--JOB_RUN_ID", "jr_rehearsal", "--JOB_NAME", job_name]
    for key, value in {**default_arguments, **run_arguments}.items():
        # A value set when the state machine runs (`--name.$`) is known only then: a placeholder.
        name, runtime = (key[:-2], True) if key.endswith(".$") else (key, False)
        argv += [name, f"<set at run time: {value}>" if runtime else render(value)]
    return argv


def test_every_stage_has_a_glue_job_to_rehearse(assembly: tuple[str, Path]) -> None:
    _stage, outdir = assembly
    assert _glue_jobs(outdir), f"no AWS::Glue::Job in {outdir}"


def test_glue_job_script_imports_and_parses_its_arguments_as_glue_loads_it(
    assembly: tuple[str, Path], tmp_path: Path
) -> None:
    stage, outdir = assembly
    assets = AssemblyAssets(outdir)
    for stack, logical_id, job, runs in _glue_jobs(outdir):
        what = f"{stage}: {stack} Glue job {logical_id}"
        script_key = s3_object_key(job["Command"]["ScriptLocation"])
        defaults = dict(job.get("DefaultArguments", {}))
        extra_keys = [s3_object_key(url) for url in render(defaults.get("--extra-py-files", "")).split(",") if url]
        downloads, libraries = tmp_path / f"{logical_id}-script", tmp_path / f"{logical_id}-python-libs"
        downloads.mkdir()
        libraries.mkdir()
        script = assets.file_for(script_key, what=f"{what} Command.ScriptLocation").materialize(downloads)
        python_paths: list[str] = []
        for key in extra_keys:
            library = assets.file_for(key, what=f"{what} --extra-py-files").materialize(libraries)
            # Glue: a .zip goes on the path as an archive, a .py through the folder it is saved in.
            python_paths.append(str(library if library.suffix == ".zip" else libraries))
        for index, run_arguments in enumerate(runs):
            layout = tmp_path / f"{logical_id}-{index}.json"
            resolved_file = tmp_path / f"{logical_id}-{index}-resolved.json"
            modules_file = tmp_path / f"{logical_id}-{index}-modules.json"
            layout.write_text(
                json.dumps(
                    {
                        "script": str(script),
                        "python_paths": sorted(set(python_paths)),
                        "stub": str(AWSGLUE_STUB),
                        "argv": _glue_argv(render(job.get("Name", logical_id)), defaults, run_arguments),
                    }
                )
            )
            done = subprocess.run(
                [*isolated_python(), str(RUNNER), str(layout)],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                env={
                    **os.environ,
                    "GLUE_REHEARSAL_RESOLVED_OPTIONS": str(resolved_file),
                    "GLUE_REHEARSAL_MODULES": str(modules_file),
                },
                timeout=120,
            )
            last_line = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            assert done.returncode == 0, (
                f"{what}: script {script_key} (cdk.out/{assets.file_for(script_key, what=what).source.name}) "
                f"with --extra-py-files {extra_keys or 'none'} failed as Glue would load it: {last_line}"
            )
            resolved = json.loads(resolved_file.read_text())
            missing = [name for name in resolved["asked"] if resolved["resolved"].get(name) is None]
            assert not missing, f"{what}: arguments {missing} resolved to nothing"
            # Glue has none of these: each must come from the job's own assets, not this machine.
            origins = json.loads(modules_file.read_text())
            for module in JOB_LIBRARIES:
                origin = origins.get(module) or "not imported"
                assert any(origin.startswith(f"{path}{os.sep}") for path in python_paths), (
                    f"{what}: library {module} came from {origin}, not from --extra-py-files {extra_keys}"
                )


def test_the_deployed_job_package_writes_every_value_its_rules_accept(
    synth: Callable[[str], Synthesized], tmp_path: Path
) -> None:
    """The job's transform, imported from the dev assembly's --extra-py-files archive alone, runs on a
    Spark session with Spark's defaults and writes a date before 1582-10-15 (Spark refuses that
    unless told how to rebase: WRITE_ANCIENT_DATETIME), with a currency from the shipped ISO list."""
    outdir = synth("dev").outdir
    assets = AssemblyAssets(outdir)
    [(_stack, logical_id, job, _runs)] = _glue_jobs(outdir)
    libraries = tmp_path / "python-libs"
    libraries.mkdir()
    archives = [
        str(assets.file_for(s3_object_key(url), what=f"dev: Glue job {logical_id}").materialize(libraries))
        for url in render(job["DefaultArguments"]["--extra-py-files"]).split(",")
    ]
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "order_id,customer_id,order_date,amount,currency\nSO-1,C1,1500-03-01,1.00,XOF\nSO-2,C2,2026-01-05,2.00,EUR\n"
    )
    layout = tmp_path / "layout.json"
    layout.write_text(
        json.dumps(
            {"python_paths": archives, "inputs": [str(orders)], "admitted_records": 2, "out": str(tmp_path / "out")}
        )
    )

    done = subprocess.run(
        [*isolated_python(), str(HERE / "glue_run_runner.py"), str(layout)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    counts = tuple(result["manifest"][c] for c in ("admitted_records", "input_rows", "output_rows", "rejected_rows"))
    assert (counts, result["dates"]) == ((2, 2, 2, 0), ["1500-03-01", "2026-01-05"])
