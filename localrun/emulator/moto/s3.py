"""S3: the copy conditions admission relies on, and the 1,024-byte key limit (localrun/emulator/limits.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from botocore.exceptions import ClientError
from moto.core.utils import str_to_rfc_1123_datetime
from moto.s3 import exceptions as s3_exceptions
from moto.s3 import responses as s3_responses

from localrun.emulator import limits
from localrun.emulator.moto.probing import (
    PROBE_BUCKET,
    plain_moto,
)
from localrun.emulator.moto.runtime import LocalRuntime, MotoPatch

# -- S3: the copy conditions admission relies on (the key limit: localrun/emulator/limits.py) ----------------


def _copy_source(response: Any) -> Any:
    """The object a CopyObject / UploadPartCopy request names (as moto parses x-amz-copy-source), or None."""
    copy_source = response.headers.get("x-amz-copy-source")
    if isinstance(copy_source, bytes):
        copy_source = copy_source.decode("utf-8")
    parsed = urlparse(copy_source)
    bucket, _, key = unquote(parsed.path).lstrip("/").partition("/")
    version_id = parse_qs(parsed.query).get("versionId", [None])[0]
    return response.backend.get_object(bucket, key, version_id=version_id)


def _check_copy_source_conditions(response: Any) -> None:
    """x-amz-copy-source-if-match / -if-unmodified-since: 412 PreconditionFailed when they do not hold."""
    source = _copy_source(response)
    if source is None:
        return  # moto's own NoSuchKey follows
    if_match = response.headers.get("x-amz-copy-source-if-match")
    if if_match is not None and if_match.strip('"') != source.etag.strip('"'):
        raise s3_exceptions.PreconditionFailed("x-amz-copy-source-If-Match")
    unmodified_since = response.headers.get("x-amz-copy-source-if-unmodified-since")
    if unmodified_since is not None:
        if source.last_modified.replace(microsecond=0) > str_to_rfc_1123_datetime(unmodified_since):
            raise s3_exceptions.PreconditionFailed("x-amz-copy-source-If-Unmodified-Since")


def _apply_s3_copy_conditions(runtime: LocalRuntime) -> None:
    cls = s3_responses.S3Response
    for name in ("copy_object", "upload_part_copy"):
        original = getattr(cls, name)

        def conditional(self: Any, _original: Callable[[Any], Any] = original) -> Any:
            _check_copy_source_conditions(self)
            return _original(self)

        runtime.replace(cls, name, conditional)


def _probe_s3_copy_conditions() -> bool:
    """Still a gap while a copy whose CopySourceIfMatch names another ETag succeeds."""
    with plain_moto() as clients:
        s3 = clients["s3"]
        s3.create_bucket(Bucket=PROBE_BUCKET)
        s3.put_object(Bucket=PROBE_BUCKET, Key="source", Body=b"v1")
        try:
            s3.copy_object(
                CopySource={"Bucket": PROBE_BUCKET, "Key": "source"},
                Bucket=PROBE_BUCKET,
                Key="copy",
                CopySourceIfMatch='"0"',
            )
        except ClientError:
            return False
        return True


S3_COPY_CONDITIONS = MotoPatch(
    "s3-copy-source-conditions",
    "CopyObject and UploadPartCopy ignore x-amz-copy-source-if-match and -if-unmodified-since; S3 "
    "refuses the copy with 412 PreconditionFailed when the source is no longer that version",
    _apply_s3_copy_conditions,
    _probe_s3_copy_conditions,
)
S3_KEY_LENGTH = MotoPatch("s3-key-length", limits.S3_KEY_GAP, limits.apply_s3_key_length, limits.probe_s3_key_length)
