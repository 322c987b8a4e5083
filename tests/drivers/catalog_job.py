"""A driver process with Hive support and a Derby metastore in a temporary folder, running the whole job with
catalog tables as its output: two as-of dates, a re-run of one, and a run that fails half-way through writing.

    python tests/drivers/catalog_job.py TMP_FOLDER INPUT

Prints one JSON object per step: the command's exit code and what the tables hold afterwards.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from segmentation import cli
from segmentation.publish import catalog

DATABASE = "seg"
TABLES = ("segments", "features", "profiles", "sweep", "quarantine", "report_sample", "report", "migration")


def hive_session(folder: str) -> SparkSession:
    return (
        SparkSession.builder.master("local[2]")
        .enableHiveSupport()
        .config("spark.sql.warehouse.dir", f"{folder}/warehouse")
        .config(
            "spark.hadoop.javax.jdo.option.ConnectionURL", f"jdbc:derby:;databaseName={folder}/metastore;create=true"
        )
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={folder}")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )


def tables_now(spark: SparkSession) -> dict[str, Any]:
    """What a SQL user sees: the runs, the segment counts across dates, rows per date in every table."""
    runs = spark.sql(f"SELECT * FROM {DATABASE}.runs ORDER BY as_of_date, run_id").collect()
    counts = spark.sql(
        f"SELECT as_of_date, segment_name, count(*) AS n FROM {DATABASE}.segments GROUP BY 1, 2 ORDER BY 1, 2"
    ).collect()
    joined = spark.sql(
        f"SELECT r.as_of_date, count(*) AS n FROM {DATABASE}.segments s JOIN {DATABASE}.runs r "
        "USING (as_of_date, run_id) GROUP BY 1 ORDER BY 1"
    ).collect()
    per_date = {
        table: {
            str(r[0]): r[1]
            for r in spark.sql(f"SELECT as_of_date, count(*) FROM {DATABASE}.{table} GROUP BY 1").collect()
        }
        for table in TABLES
        if spark.catalog.tableExists(f"{DATABASE}.{table}")
    }
    # history through SQL: each customer's previous_segment is its segment in the run its date compared with
    followed = (
        spark.sql(
            f"""SELECT s.as_of_date, count(*) AS customers, count_if(s.previous_segment <=> b.segment) AS consistent,
                   first(m.baseline) AS baseline
            FROM {DATABASE}.segments s
            JOIN (SELECT DISTINCT as_of_date, run_id, baseline_as_of_date AS baseline FROM {DATABASE}.migration) m
              USING (as_of_date, run_id)
            LEFT JOIN {DATABASE}.segments b
              ON b.as_of_date = m.baseline AND b.run_id = s.run_id AND b.customer_id = s.customer_id
            GROUP BY 1"""
        ).collect()
        if spark.catalog.tableExists(f"{DATABASE}.migration")
        else []
    )
    moved = (
        spark.sql(f"SELECT as_of_date, sum(customers) FROM {DATABASE}.migration GROUP BY 1").collect()
        if spark.catalog.tableExists(f"{DATABASE}.migration")
        else []
    )
    return {
        "runs": [
            {
                k: str(r[k]) if k in ("as_of_date",) else r[k]
                for k in ("as_of_date", "run_id", "attempt_id", "chosen_k", "customers", "lines_in", "model_path")
            }
            | {"value_status": json.loads(r["manifest_json"]).get("value", {}).get("status")}
            for r in runs
        ],
        "segment_counts": [[str(r.as_of_date), r.segment_name, r.n] for r in counts],
        "joined": [[str(r.as_of_date), r.n] for r in joined],
        "rows_per_date": per_date,
        "followed": [[str(r.as_of_date), r.customers, r.consistent, str(r.baseline)] for r in followed],
        "migration_customers": {str(r[0]): r[1] for r in moved},
        "tables": sorted(r.tableName for r in spark.sql(f"SHOW TABLES IN {DATABASE}").collect()),
    }


def run(log: str, root: str, *settings: str) -> int:
    argv = ["run", "--input", log, "--output", root, "--set", f"output.catalog.database={DATABASE}", "-q"]
    return cli.main([*argv, *(part for s in settings for part in ("--set", s))])


def fail_in_the_middle_of_writing() -> None:
    """The profiles table's write fails in Spark, after other tables of the run were staged."""
    original = catalog._write_staged

    def failing(staging: Any, name: str, frame: Any) -> None:
        if name == "profiles":
            frame = frame.withColumn(
                "customers", F.coalesce(F.raise_error(F.lit("injected")).cast("long"), "customers")
            )
        original(staging, name, frame)

    catalog._write_staged = failing


def main(folder: str, log: str) -> None:
    spark = hive_session(folder)
    root = f"{folder}/models"
    steps = [
        ("first", ("model.k=3", "features.as_of=2011-12-09")),
        ("second_date", ("model.k=2", "features.as_of=2011-11-30")),
        ("rerun", ("model.k=4", "features.as_of=2011-12-09")),
        ("failed", ("model.k=3", "features.as_of=2011-12-09")),
    ]
    for name, settings in steps:
        if name == "failed":
            fail_in_the_middle_of_writing()
        code = run(log, root, *settings)
        print(json.dumps({"step": name, "code": code, "tables": tables_now(spark)}), flush=True)
    listed = io.StringIO()  # `segmentation runs --catalog` on the tables the steps left
    with contextlib.redirect_stdout(listed):
        code = cli.main(["runs", "--catalog", DATABASE, "--json"])
    print(json.dumps({"listed": [json.loads(line) for line in listed.getvalue().splitlines()], "code": code}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
