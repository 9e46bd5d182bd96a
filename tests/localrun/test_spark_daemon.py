"""The local Spark's Python workers: this venv's interpreter, started from PySpark's own daemon
without the archives Spark puts first on their path (localrun/emulator/spark_daemon.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from localrun.emulator.spark_daemon import without_spark_archives
from stacks.common.paths import REPO_ROOT

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def _worker_view(_: object) -> dict[str, object]:
    import pyspark

    main = sys.modules["__main__"]
    return {
        "prefix": sys.prefix,
        "daemon": main.__spec__.name if main.__spec__ else "",
        "pyspark": pyspark.__file__,
        "archives": [entry for entry in sys.path if entry.endswith((".zip", ".jar")) and "pyspark" in entry],
    }


def test_workers_run_this_interpreter_from_the_daemon_without_sparks_archives(spark: SparkSession) -> None:
    worker = spark.sparkContext.parallelize([0], 1).map(_worker_view).collect()[0]
    # Not `python3` from PATH, which may be another minor version (PYTHON_VERSION_MISMATCH).
    assert worker["prefix"] == sys.prefix, worker
    assert worker["daemon"] == "localrun.emulator.spark_daemon", worker
    assert worker["archives"] == [], worker  # PySpark's default: pyspark.zip, py4j's zip, spark-core's jar
    assert str(worker["pyspark"]).startswith(sys.prefix) and ".zip" not in str(worker["pyspark"]), worker


def test_only_the_archives_under_spark_home_are_dropped() -> None:
    home = "/venv/lib/python3.11/site-packages/pyspark"
    path = [
        f"{home}/python/lib/pyspark.zip",
        f"{home}/python/lib/py4j-0.10.9.7-src.zip",
        f"{home}/jars/spark-core_2.12-3.5.4.jar",
        "/repo",
        "/usr/lib/python311.zip",
        "/jobs/extra-py-files.zip",
        "/venv/lib/python3.11/site-packages",
        f"{home}-other/lib.zip",
    ]
    assert without_spark_archives(path, home) == path[3:]
    assert without_spark_archives(path, f"{home}/") == path[3:]
    assert without_spark_archives(path, None) == path


def test_the_local_session_runs_the_pinned_spark_whatever_spark_home_says(tmp_path: Path) -> None:
    """A SPARK_HOME of the machine's (here one with no Spark) does not decide which Spark the stand-in runs."""
    code = "from localrun.emulator.glue_standin import spark_session; print(spark_session().range(3).count())"
    env = os.environ | {"SPARK_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert (result.returncode, result.stdout.strip().splitlines()[-1:]) == (0, ["3"]), result.stderr[-2000:]
