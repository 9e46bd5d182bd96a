"""Invoke a Lambda handler the way Lambda loads it (executed in a fresh `python -I` interpreter).

    python -I lambda_runner.py <layout.json>

layout.json: {"task_root": dir, "handler": "module.function", "event": {...},
"objects": [[bucket, key, text], ...]}. The code package is unpacked in `task_root` (Lambda's
/var/task), the only folder of ours on sys.path; boto3 is there as in the Python runtime. S3 is
moto, holding `objects`. Prints the handler's result as JSON; an error prints one line, exit 1.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path


def main() -> int:
    layout = json.loads(Path(sys.argv[1]).read_text())
    sys.path.insert(0, layout["task_root"])
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3")
        for bucket, key, text in layout["objects"]:
            if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
                s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket=bucket, Key=key, Body=text.encode())
        module_name, _, function_name = layout["handler"].rpartition(".")
        try:
            handler = getattr(importlib.import_module(module_name), function_name)
            result = handler(layout["event"], None)
        except Exception as error:  # noqa: BLE001 - reported as one line for the test to show
            print(f"{type(error).__name__}: {error}", file=sys.stderr)
            return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
