"""`python -m localrun` with a broken, stale or unusable set-up: one line, exit status 2, before the run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESYNTHESIZE = "synthesize it again: `make demo` does (cdk synth -c stage=local --output cdk.out.local)"


def localrun(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localrun", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


@pytest.fixture
def assembly_copy(local_assembly: Path, tmp_path: Path) -> Path:
    """A copy of the session's local assembly, to break; as fresh as the original."""
    copy = tmp_path / "cdk.out.local"
    shutil.copytree(local_assembly, copy)
    shutil.copystat(local_assembly / "manifest.json", copy / "manifest.json")
    return copy


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("manifest", ["{not json", "[]", '{"artifacts": {"S": {"type": "aws:cloudformation:stack"}}}'])
def test_corrupt_manifest_is_one_line(assembly_copy: Path, tmp_path: Path, manifest: str) -> None:
    (assembly_copy / "manifest.json").write_text(manifest)
    line = one_error_line(localrun("demo", "--assembly", str(assembly_copy), "--reports", str(tmp_path / "r")))
    assert line.startswith(f"error: cloud assembly {assembly_copy} is unreadable (")
    assert line.endswith(RESYNTHESIZE)


@pytest.mark.parametrize("command", ["demo", "all"])  # `all` meets it in its scenario processes
def test_missing_lambda_asset_is_one_line(assembly_copy: Path, tmp_path: Path, command: str) -> None:
    [template] = assembly_copy.glob("*-Pipeline.template.json")
    functions = json.loads(template.read_text())["Resources"]
    [asset] = [
        f["Metadata"]["aws:asset:path"]
        for lid, f in functions.items()
        if lid.startswith("TransformStageCheckResults") and f["Type"] == "AWS::Lambda::Function"
    ]
    handler = assembly_copy / asset / "handler.py"  # the check-results function's code
    handler.unlink()
    line = one_error_line(localrun(command, "--assembly", str(assembly_copy), "--reports", str(tmp_path / "r")))
    assert_incomplete(line, assembly_copy, handler)


def assert_incomplete(line: str, assembly: Path, missing: Path) -> None:
    assert line.startswith(f"error: cloud assembly {assembly} is incomplete (")
    assert str(missing) in line
    assert line.endswith(RESYNTHESIZE)


def test_the_machines_aws_profile_and_endpoint_do_not_reach_the_run(assembly_copy: Path, tmp_path: Path) -> None:
    """moto reads the AWS profile when it is imported (a missing one raised ProfileNotFound), and an
    AWS_ENDPOINT_URL would take the calls away from moto: the CLI sets both aside before either."""
    handler = next(assembly_copy.glob("asset.*/handler.py"))  # bring-up stops at it, after moto's import
    handler.unlink()
    machine = {"AWS_PROFILE": "nope", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    result = localrun(
        "demo", "--assembly", str(assembly_copy), "--reports", str(tmp_path / "r"), env=os.environ | machine
    )
    assert_incomplete(one_error_line(result), assembly_copy, handler)


@pytest.mark.parametrize("command", ["demo", "all"])
def test_an_assembly_older_than_the_sources_is_not_run(assembly_copy: Path, tmp_path: Path, command: str) -> None:
    # As after editing the Lambda: its source is newer than the synthesized assembly.
    handler = ROOT / "lambda" / "check_results" / "handler.py"
    os.utime(assembly_copy / "manifest.json", (handler.stat().st_mtime - 60,) * 2)
    result = localrun(command, "--assembly", str(assembly_copy), "--reports", str(tmp_path / "r"))
    line = one_error_line(result)
    assert line.startswith(f"error: cloud assembly {assembly_copy} is older than ")
    assert "lambda/check_results/handler.py" in line or "more source file(s)" in line
    assert line.endswith(RESYNTHESIZE)
    assert "▶ scenario" not in result.stdout  # nothing ran


def test_an_unwritable_reports_folder_fails_before_the_run(local_assembly: Path, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "reports"
    not_a_folder.write_text("a file where the folder should be")
    result = localrun("demo", "--assembly", str(local_assembly), "--reports", str(not_a_folder / "run"))
    line = one_error_line(result)
    assert line.startswith(f"error: cannot write reports to {not_a_folder / 'run'} (")
    assert line.endswith("pass --reports <a writable folder>")
    assert "▶ scenario" not in result.stdout  # the run did not start, so no report was lost


JAVA_NEEDED = "the local Glue job runs Spark on a Java runtime (Java 17: apt install openjdk-17-jre-headless)"


@pytest.mark.parametrize("command", ["demo", "all"])
def test_no_java_is_one_line_before_the_run(local_assembly: Path, tmp_path: Path, command: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"} | {"PATH": str(tmp_path)}  # no java there
    result = localrun(command, "--assembly", str(local_assembly), "--reports", str(tmp_path / "r"), env=env)
    assert one_error_line(result) == f"error: no Java: JAVA_HOME is not set and there is no java on PATH; {JAVA_NEEDED}"
    assert "▶ scenario" not in result.stdout


def test_a_java_home_without_java_is_one_line(local_assembly: Path, tmp_path: Path) -> None:
    env = os.environ | {"JAVA_HOME": str(tmp_path)}
    result = localrun("demo", "--assembly", str(local_assembly), "--reports", str(tmp_path / "r"), env=env)
    assert one_error_line(result) == (
        f"error: JAVA_HOME = {str(tmp_path)!r} has no bin/java: {JAVA_NEEDED}; point JAVA_HOME at one or unset it"
    )
