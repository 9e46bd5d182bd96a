"""Deploy rehearsal of the DAG: the DAG folder as MWAA gets it, from the synthesized assembly alone.

MWAA syncs `s3://<source bucket>/<DagS3Path>/` to its DAG folder. What lands there is the source
asset of the BucketDeployment that writes that prefix: its `SourceObjectKeys` name objects CDK
uploads from cdk.out (`<stack>.assets.json`: object key -> `asset.<hash>` directory, zipped on
upload). That folder, copied out on its own, is parsed as Airflow's DAG processor parses its
bundle, in a fresh interpreter where nothing of the repository is importable, with the
parse-time options the environment sets. A module the DAG file imports but the deployment does
not ship fails here with the import error MWAA would show.
"""

from __future__ import annotations

import json
import math
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from localrun.outer_loop import DAG_ID
from tests.conftest import Synthesized
from tests.dags.conftest import parse_folder_in_fresh_interpreter
from tests.helpers import one_resource

STAGES = ("dev", "prod", "local")
SHIPPED = {"glue_pipeline.py", "glue_pipeline_support.py", ".airflowignore"}


def deployed_dag_folder(synthesized: Synthesized, into: Path) -> tuple[Path, dict[str, str]]:
    """(the DAG folder MWAA would sync, copied under `into`; the environment's literal pipeline.* options)."""
    template = synthesized.templates["orchestration"]
    environment = one_resource(template, "AWS::MWAA::Environment")[1]["Properties"]
    bucket = environment["SourceBucketArn"]["Fn::GetAtt"][0]
    prefix = environment["DagS3Path"].strip("/") + "/"
    [source_keys] = [
        deployment["Properties"]["SourceObjectKeys"]
        for deployment in template.find_resources("Custom::CDKBucketDeployment").values()
        if deployment["Properties"]["DestinationBucketName"] == {"Ref": bucket}
        and deployment["Properties"].get("DestinationBucketKeyPrefix") == prefix
    ]
    [key] = source_keys  # one source: the dags/ directory
    manifest = synthesized.outdir / f"{synthesized.stacks['orchestration'].artifact_id}.assets.json"
    [source] = [
        entry["source"]
        for entry in json.loads(manifest.read_text())["files"].values()
        if any(destination["objectKey"] == key for destination in entry["destinations"].values())
    ]
    staged, folder = synthesized.outdir / source["path"], into / "dags"
    if staged.is_dir():  # a directory asset: CDK zips its contents on upload, BucketDeployment unzips them
        shutil.copytree(staged, folder)
    else:
        with zipfile.ZipFile(staged) as archive:
            archive.extractall(folder)
    options = {
        name.removeprefix("pipeline."): value
        for name, value in environment["AirflowConfigurationOptions"].items()
        if isinstance(value, str)  # tokens (ARNs, the bucket, the topic) are read only when tasks run
    }
    return folder, options


@pytest.mark.slow  # Airflow parses the folder in a fresh interpreter
@pytest.mark.parametrize("stage", STAGES)
def test_the_deployed_dag_folder_parses_alone_as_mwaa_would(
    airflow_home: Path, synth: Callable[[str], Synthesized], tmp_path: Path, stage: str
) -> None:
    folder, options = deployed_dag_folder(synth(stage), tmp_path)
    assert {path.name for path in folder.rglob("*")} == SHIPPED  # no requirements, docs or caches
    parsed = parse_folder_in_fresh_interpreter(folder, options, cwd=tmp_path)
    assert (parsed["import_errors"], list(parsed["dags"]), parsed["attempts"]) == ({}, [DAG_ID], [])
    assert parsed["parsed_files"] == ["glue_pipeline.py"]  # .airflowignore: the helpers are no DAG file
    dag = parsed["dags"][DAG_ID]
    assert dag["tasks"] == ["wait_for_data", "admission", "proceed_after_admission", "crawl", "transform"]
    assert "glue_pipeline_support" in dag["modules"]  # the stage operator, from the shipped module
    assert dag["schedule"] == options["schedule"]
    for task in ("admission", "crawl", "transform"):
        timeout = int(options[f"{task}_timeout_seconds"])
        assert dag["waiter_max_attempts"][task] == math.ceil(timeout / 60) + 2


@pytest.mark.slow  # Airflow parses the folder in a fresh interpreter
def test_the_rehearsal_catches_a_helper_module_the_deployment_does_not_ship(
    airflow_home: Path, synth: Callable[[str], Synthesized], tmp_path: Path
) -> None:
    folder, options = deployed_dag_folder(synth("local"), tmp_path)
    (folder / "glue_pipeline_support.py").unlink()
    parsed = parse_folder_in_fresh_interpreter(folder, options, cwd=tmp_path)
    assert parsed["dags"] == {}
    assert parsed["import_errors"] == {
        "glue_pipeline.py": "ModuleNotFoundError: No module named 'glue_pipeline_support'"
    }


def test_the_deployed_folder_is_what_dags_holds(synth: Callable[[str], Synthesized], tmp_path: Path) -> None:
    """The asset is the repository's dags/ today: a check that the rehearsal reads the right asset."""
    folder, _ = deployed_dag_folder(synth("local"), tmp_path)
    repository = Path(__file__).resolve().parents[2] / "dags"
    for name in SHIPPED:
        assert (folder / name).read_bytes() == (repository / name).read_bytes(), name
