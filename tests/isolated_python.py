"""The interpreter command of the rehearsals: a new Python started as a service starts one."""

from __future__ import annotations

import sys


def isolated_python() -> list[str]:
    """`python -I` (no PYTHONPATH, no user site, no current directory, no PYTHON* variables), sharing
    this run's bytecode cache: `-X pycache_prefix`, which `-I` would otherwise drop with
    PYTHONPYCACHEPREFIX (Makefile). A cache changes nothing the code sees; without it each rehearsal
    compiled Airflow or pyspark again and wrote `__pycache__` beside the files it rehearses."""
    prefix = ["-X", f"pycache_prefix={sys.pycache_prefix}"] if sys.pycache_prefix else []
    return [sys.executable, "-I", *prefix]
