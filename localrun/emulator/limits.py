"""AWS service limits that moto does not hold local runs to (entries of localrun/emulator/moto/).

What moto 5.2.5 already enforces is left to it and covered by tests/localrun/test_permissions.py: 256 KiB
for a state's output and a task's result (States.DataLimitExceeded), names of at most 80
characters (the `sfn-execution-names` entry). What it lacks is added here:

- S3 object keys of at most 1,024 bytes (UTF-8) on every write, whoever writes (S3 User Guide,
  "Naming Amazon S3 objects"); AWS answers KeyTooLongError "Your key is too long".
- Lambda's 6 MB synchronous payloads (Lambda quotas: "Invocation payload (request and response)
  6 MB each for synchronous"): a larger request fails the Invoke (RequestEntityTooLargeException),
  a larger response fails the function (Function.ResponseSizeTooLarge), both before the 256 KiB a
  Step Functions state may hold is even considered.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from moto.s3 import models as s3_models
from moto.s3.exceptions import S3ClientError

if TYPE_CHECKING:
    from localrun.emulator.moto.runtime import LocalRuntime

S3_MAX_KEY_BYTES = 1024
LAMBDA_MAX_REQUEST_BYTES = 6_291_456  # "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
LAMBDA_MAX_RESPONSE_BYTES = 6_291_556  # "Response payload size exceeded maximum allowed payload size (6291556 bytes)."

S3_KEY_GAP = "S3 accepts object keys longer than 1,024 bytes; AWS refuses them with KeyTooLongError"
LAMBDA_GAP = (
    "in-process Lambda invocations take and return payloads of any size; AWS refuses requests over "
    "6 MB (RequestEntityTooLargeException) and fails responses over 6 MB (Function.ResponseSizeTooLarge)"
)


class KeyTooLongError(S3ClientError):
    code = "KeyTooLongError"

    def __init__(self, key: str) -> None:
        super().__init__(
            "KeyTooLongError",
            f"Your key is too long: {len(key.encode('utf-8'))} bytes, at most {S3_MAX_KEY_BYTES} allowed "
            f"(key starts {key[:60]!r})",
        )


def check_key(key: str) -> None:
    if len(key.encode("utf-8")) > S3_MAX_KEY_BYTES:
        raise KeyTooLongError(key)


def apply_s3_key_length(runtime: LocalRuntime) -> None:
    backend = s3_models.S3Backend
    original_put, original_copy = backend.put_object, backend.copy_object
    original_multipart = backend.create_multipart_upload

    def put_object(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
        check_key(key_name)
        return original_put(self, bucket_name, key_name, *args, **kwargs)

    def copy_object(self: Any, src_key: Any, dest_bucket: str, dest_key: str, *args: Any, **kwargs: Any) -> Any:
        check_key(dest_key)
        return original_copy(self, src_key, dest_bucket, dest_key, *args, **kwargs)

    def create_multipart_upload(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
        check_key(key_name)
        return original_multipart(self, bucket_name, key_name, *args, **kwargs)

    runtime.replace(backend, "put_object", put_object)
    runtime.replace(backend, "copy_object", copy_object)
    runtime.replace(backend, "create_multipart_upload", create_multipart_upload)


def probe_s3_key_length() -> bool:
    """Still a gap while plain moto stores an object under a 1,025-byte key."""
    from localrun.emulator.moto.probing import PROBE_BUCKET, plain_moto

    with plain_moto() as clients:
        clients["s3"].create_bucket(Bucket=PROBE_BUCKET)
        try:
            clients["s3"].put_object(Bucket=PROBE_BUCKET, Key="k" * (S3_MAX_KEY_BYTES + 1), Body=b"x")
        except ClientError:
            return False
        return True


def check_lambda_request(function_name: str, event: Any) -> None:
    """Raise as Lambda's Invoke does for a request payload over 6 MB."""
    size = len(json.dumps(event).encode("utf-8"))
    if size > LAMBDA_MAX_REQUEST_BYTES:
        raise ClientError(
            {
                "Error": {
                    "Code": "RequestEntityTooLargeException",
                    "Message": f"Request must be smaller than {LAMBDA_MAX_REQUEST_BYTES} bytes for the "
                    f"InvokeFunction operation ({function_name}: {size} bytes)",
                },
                "ResponseMetadata": {"HTTPStatusCode": 413, "RequestId": str(uuid.uuid4())},
            },
            "Invoke",
        )


def lambda_response_error(result: Any) -> dict[str, str] | None:
    """The function error Lambda reports for a response over 6 MB, or None."""
    size = len(json.dumps(result, default=str).encode("utf-8"))
    if size <= LAMBDA_MAX_RESPONSE_BYTES:
        return None
    return {
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": f"Response payload size exceeded maximum allowed payload size ({LAMBDA_MAX_RESPONSE_BYTES} "
        f"bytes): {size} bytes.",
    }
