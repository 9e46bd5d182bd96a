"""Run the job's transform from its deployed archives on a local SparkSession (a fresh `python -I`).

    python -I glue_run_runner.py <layout.json>

layout.json: {"python_paths": [the --extra-py-files archives], "inputs": [csv paths],
"admitted_records": int, "out": dir}. Nothing of the repository is on the path: `glue.run` and
every library it needs come from the archives (as on Glue), pyspark from the installed packages
(as Glue provides it), and Spark's Python workers get the same archives on their path, as Glue's
executors do. The session starts with Spark's defaults (no settings of the local stand-in), so
what the job needs of Spark it must set itself. Prints the run's manifest as JSON.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> int:
    layout = json.loads(Path(sys.argv[1]).read_text())
    sys.path[:0] = layout["python_paths"]
    import pyspark
    from pyspark.sql import SparkSession

    from glue.run import run_job

    # Spark's Python workers run PYSPARK_PYTHON, else `python3` from PATH, which may be another minor
    # version (spark.pyspark.python is spark-submit's; a SparkContext made here reads only the variable).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["SPARK_HOME"] = str(Path(pyspark.__file__).parent)  # the installed Spark, not the machine's
    spark = (
        SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.executorEnv.PYTHONPATH", ":".join(layout["python_paths"]))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    out = Path(layout["out"])
    manifest = run_job(
        spark,
        inputs=layout["inputs"],
        admitted_records=layout["admitted_records"],
        curated_path=str(out / "curated"),
        rejected_path=str(out / "rejected"),
        run_id="jr_rehearsal",
    )
    dates = sorted(str(row.order_date) for row in spark.read.parquet(str(out / "curated")).collect())
    print(json.dumps({"manifest": manifest, "dates": dates}))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
