"""Each moto gap that localrun/moto_shims.py bends is reproduced here on plain moto.

The probe runs in a fresh interpreter without the shims. When one of these tests fails, upstream
moto has closed that gap: delete the matching shim (and this probe).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent("""
    import json, os, time
    os.environ.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1")
    import boto3
    from moto import mock_aws
    from moto.glue import models
    ROLE = "arn:aws:iam::123456789012:role/r"

    def run(sfn, name, definition, payload="{}"):
        arn = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
        ex = sfn.start_execution(stateMachineArn=arn, name=name + "-run", input=payload)["executionArn"]
        for _ in range(100):
            try:
                d = sfn.describe_execution(executionArn=ex)
            except Exception as error:  # DescribeExecution itself breaks on datetime outputs
                return {"status": "DESCRIBE_FAILED", "cause": str(error)}
            if d["status"] != "RUNNING":
                return d
            time.sleep(0.1)

    gaps = {}
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn, glue = boto3.client("stepfunctions"), boto3.client("glue")
        glue.create_job(Name="j", Role=ROLE, Command={"Name": "glueetl", "ScriptLocation": "s3://b/s.py"})
        d = run(sfn, "gluesync", {"StartAt": "T", "States": {"T": {"Type": "Task", "End": True,
            "Resource": "arn:aws:states:::glue:startJobRun.sync", "Parameters": {"JobName": "j"}}}})
        gaps["glue-startJobRun-sync"] = d["status"] != "SUCCEEDED"
        d = run(sfn, "sdkerr", {"StartAt": "T", "States": {"T": {"Type": "Task", "End": True,
            "Resource": "arn:aws:states:::aws-sdk:glue:getCrawler", "Parameters": {"Name": "missing"}}}})
        gaps["aws-sdk-glue-error-names"] = d.get("error", "").startswith("glue.")
        child = sfn.create_state_machine(name="child", roleArn=ROLE, definition=json.dumps(
            {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
        d = run(sfn, "parent", {"StartAt": "T", "States": {"T": {"Type": "Task", "End": True,
            "Resource": "arn:aws:states:::states:startExecution.sync:2",
            "Parameters": {"StateMachineArn": child, "Name": "c1", "Input": {}}}}})
        gaps["sfn-startExecution-sync2-keys"] = d["status"] != "SUCCEEDED"
        glue.create_crawler(Name="c", Role=ROLE, DatabaseName="db", Targets={"S3Targets": [{"Path": "s3://b/"}]})
        d = run(sfn, "dates", {"StartAt": "T", "States": {"T": {"Type": "Task", "End": True,
            "Resource": "arn:aws:states:::aws-sdk:glue:getCrawler", "Parameters": {"Name": "c"}}}})
        gaps["datetime-outputs"] = d["status"] != "SUCCEEDED"
        from moto.moto_api import state_manager
        state_manager.set_transition(model_name="glue::crawl", transition={"progression": "immediate"})
        glue.start_crawler(Name="c")
        status = glue.get_crawler(Name="c")["Crawler"].get("LastCrawl", {}).get("Status")
        gaps["crawl-status-names"] = status != "SUCCEEDED"
        import inspect
        gaps["job-run-error-message"] = "ErrorMessage" not in inspect.getsource(models.FakeJobRun.as_dict)
    print(json.dumps(gaps))
""")


def test_each_shimmed_gap_still_exists_upstream() -> None:
    from localrun.moto_shims import SHIMS

    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True)
    gaps = json.loads(result.stdout.strip().splitlines()[-1])
    fixed = [name for name, still_there in gaps.items() if not still_there]
    assert not fixed, f"upstream moto fixed {fixed}: remove those shims from localrun/moto_shims.py"
    # Every probed gap has its shim; the Lambda one cannot be probed without Docker.
    assert set(gaps) | {"lambda-in-process"} == {shim.name for shim in SHIMS}
