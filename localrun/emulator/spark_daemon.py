"""The local Spark's Python worker daemon: PySpark's own (`pyspark.daemon`), started without the
archives Spark puts first on every Python worker's path.

Spark puts `$SPARK_HOME/python/lib/pyspark.zip`, py4j's zip and its spark-core jar (5,220 entries)
before the worker's PYTHONPATH, for workers that have no pyspark installed. PySpark's worker calls
`importlib.invalidate_caches()` for every task, which reads each archive's whole directory again. The
local workers run this venv's interpreter (PYSPARK_PYTHON, set in glue_standin.py), which has the
same pyspark installed, so the archives only add that cost (measured 2026-12-04: 16 s of CPU in a
`make test`). The code each task runs (pyspark's worker, glue/reader.py) is the same.

Spark starts it as `python -m localrun.emulator.spark_daemon` (`spark.python.daemon.module`, set in
glue_standin.py); nothing else imports it.
"""

from __future__ import annotations

import os
import sys


def without_spark_archives(path: list[str], spark_home: str | None) -> list[str]:
    """`path` without the .zip and .jar files under `spark_home` (no SPARK_HOME: `path` as it is)."""
    if not spark_home:
        return list(path)
    home = os.path.join(os.path.abspath(spark_home), "")
    return [entry for entry in path if not (entry.startswith(home) and entry.endswith((".zip", ".jar")))]


if __name__ == "__main__":
    sys.path[:] = without_spark_archives(sys.path, os.environ.get("SPARK_HOME"))
    from pyspark.daemon import manager

    manager()
