"""mypy follows the aws_cdk modules the code imports, and skips the rest (pyproject.toml says why).

A module imported but not in the followed list would be skipped silently, its types Any: this test
keeps the list equal to the imports.
"""

from __future__ import annotations

import ast
import tomllib

from stacks.common.paths import REPO_ROOT


def mypy_config() -> dict[str, object]:
    config: dict[str, object] = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    return config


def followed_cdk_modules() -> set[str]:
    overrides = mypy_config().get("overrides", [])
    assert isinstance(overrides, list)
    return {
        module
        for override in overrides
        if override.get("follow_imports") == "normal"
        for module in override["module"]
        if module == "aws_cdk" or module.startswith("aws_cdk.")
    }


def cdk_modules_imported(source: str) -> set[str]:
    """aws_cdk submodules a module uses: `from aws_cdk import aws_s3`, `from aws_cdk.assertions import
    Template`, `import aws_cdk.aws_s3`, and `cdk.aws_s3` after `import aws_cdk as cdk`."""
    tree = ast.parse(source)
    found: set[str] = set()
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "aws_cdk":
            found |= {f"aws_cdk.{alias.name}" for alias in node.names if alias.name[:1].islower()}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aws_cdk."):
            found.add(".".join((node.module or "").split(".")[:2]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("aws_cdk.") and alias.asname is None:
                    aliases.add("aws_cdk")  # `import aws_cdk.aws_s3` binds aws_cdk too
                if alias.name.startswith("aws_cdk."):
                    found.add(".".join(alias.name.split(".")[:2]))
                elif alias.name == "aws_cdk":
                    aliases.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr[:1].islower()
        ):
            found.add(f"aws_cdk.{node.attr}")
    return found


def test_the_scan_finds_each_way_of_importing_a_cdk_module() -> None:
    source = (
        "import aws_cdk as cdk\nimport aws_cdk.aws_sqs\nfrom aws_cdk import Stack, aws_s3 as s3\n"
        "from aws_cdk.assertions import Template\ncdk.aws_sns.Topic\ncdk.Duration\naws_cdk.aws_kms.Key\n"
    )
    assert cdk_modules_imported(source) == {
        "aws_cdk.aws_sqs",
        "aws_cdk.aws_s3",
        "aws_cdk.assertions",
        "aws_cdk.aws_sns",
        "aws_cdk.aws_kms",
    }


def test_mypy_follows_exactly_the_cdk_modules_the_code_imports() -> None:
    files = mypy_config()["files"]
    assert isinstance(files, list)
    imported: set[str] = set()
    for entry in files:
        path = REPO_ROOT / entry
        for module in [path] if path.is_file() else sorted(path.rglob("*.py")):
            imported |= cdk_modules_imported(module.read_text())
    followed, wanted = followed_cdk_modules(), imported | {"aws_cdk"}
    assert not wanted - followed, f"imported but skipped by mypy: add {sorted(wanted - followed)} to pyproject.toml"
    assert not followed - wanted, f"followed but imported nowhere: drop {sorted(followed - wanted)} from pyproject.toml"
