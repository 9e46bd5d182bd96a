"""Where the code the stacks deploy lives: lambda/, glue/ and dags/ under the repository root."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
