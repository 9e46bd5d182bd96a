"""A synthesized cloud assembly's assets, found the way AWS finds them: by S3 object key.

CDK uploads each asset to the bootstrap bucket under `<hash>.<ext>` (`*.assets.json`,
`destinations[].objectKey`); templates refer to those keys. `AssemblyAssets.file_for(key)`
gives the staged file in cdk.out that becomes that object (a directory asset is zipped on
upload, so its key ends in .zip and the staged source is the directory).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import render


@dataclass(frozen=True)
class StagedAsset:
    object_key: str
    source: Path  # a file, or the directory CDK zips on upload
    packaging: str  # "file" or "zip"

    def materialize(self, folder: Path) -> Path:
        """The object as the service downloads it, saved under its object key in `folder`."""
        target = folder / self.object_key
        if self.packaging == "file":
            target.write_bytes(self.source.read_bytes())
        else:
            with zipfile.ZipFile(target, "w") as archive:
                for path in sorted(self.source.rglob("*")):
                    if path.is_file():
                        archive.write(path, path.relative_to(self.source).as_posix())
        return target


class AssemblyAssets:
    def __init__(self, outdir: Path) -> None:
        self.outdir = outdir
        self._by_key: dict[str, StagedAsset] = {}
        for manifest in outdir.glob("*.assets.json"):
            for entry in json.loads(manifest.read_text()).get("files", {}).values():
                for destination in entry["destinations"].values():
                    key = destination["objectKey"]
                    self._by_key[key] = StagedAsset(
                        object_key=key,
                        source=outdir / entry["source"]["path"],
                        packaging=entry["source"].get("packaging", "file"),
                    )

    def file_for(self, key: str, *, what: str) -> StagedAsset:
        if key not in self._by_key:
            raise AssertionError(f"{what}: S3 key {key!r} is not an asset of {self.outdir}")
        return self._by_key[key]


def s3_object_key(value: Any) -> str:
    """The object key of an `s3://bucket/key` CloudFormation value (tokens in the bucket allowed)."""
    url = render(value)
    assert url.startswith("s3://"), f"not an s3:// URL: {url!r}"
    _bucket, _, key = url.removeprefix("s3://").partition("/")
    return key


def templates_of(outdir: Path) -> dict[str, dict[str, Any]]:
    """Every stack template of an assembly, by stack name."""
    return {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in sorted(outdir.glob("*.template.json"))
    }
