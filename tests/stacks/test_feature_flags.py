"""cdk.json sets the feature flags `cdk init` recommends for the installed aws-cdk-lib; each exception
is explained in the README."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import aws_cdk

import app as cdk_app

REPO_ROOT = Path(__file__).resolve().parents[2]
# Flags set to another value than recommended, each with its reason in the README ("Feature flags").
KEPT = {"@aws-cdk/core:defaultCrossStackReferences": "strong"}


def recommended_flags() -> dict[str, Any]:
    """aws-cdk-lib's recommended-feature-flags.json, from the jsii bundle the venv runs."""
    [bundle] = (Path(aws_cdk.__file__).parent / "_jsii").glob("aws-cdk-lib@*.jsii.tgz")
    with tarfile.open(bundle) as archive:
        member = archive.extractfile("package/recommended-feature-flags.json")
        assert member is not None
        flags: dict[str, Any] = json.load(member)
    return flags


def test_cdk_json_sets_every_recommended_flag() -> None:
    recommended = recommended_flags()
    assert len(recommended) > 80
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    assert {flag: context.get(flag) for flag in recommended} == {**recommended, **KEPT}


def test_in_process_apps_see_the_same_flags() -> None:
    # Tests and local runs build the app in-process; they must synthesize what `cdk synth` does.
    assert json.loads((REPO_ROOT / "cdk.json").read_text())["context"] == cdk_app.FEATURE_FLAGS


def test_every_kept_flag_is_explained_in_the_readme() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("### Feature flags") :]
    for flag, value in KEPT.items():
        assert f"`{flag}` stays `{json.dumps(value)}`" in section
