"""Publishing runs as catalog tables in a real Hive metastore (embedded Derby), in a process of its own.

``python -m tests.catalog_driver FOLDER`` builds a Hive-enabled local session whose metastore and warehouse
live in FOLDER (``--remote URL``: a Spark Connect server's session instead), runs the steps of ``STEPS`` in
order on it (one JVM for all of them), and prints one JSON object per line on stdout: ``{"step": name,
"seconds": …, ...}`` with what the tables hold after that step. ``tests/test_catalog.py`` runs it once and
checks each step's object. A step is a function ``(spark, cfg) -> dict``; add one to ``STEPS`` to check more
(the whole job, later).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segmentation.config import CatalogOutputConfig, JobConfig, load
from segmentation.demo import deliveries
from segmentation.errors import SegmentationError
from segmentation.history import listing
from segmentation.input.quarantine import LineCounts
from segmentation.publish import catalog, for_root
from segmentation.publish.checks import BaselineRef, DriftMeasure, DriftSection
from segmentation.publish.manifest import SCORING, SEGMENTATION, HistorySection, Manifest, build
from segmentation.publish.publishers import CatalogPublisher

from . import incremental_steps

REPO = Path(__file__).resolve().parents[1]

DATABASE = "seg"
JAN, FEB = dt.date(2024, 1, 31), dt.date(2024, 2, 29)
TABLES = ("segments", "features", "profiles", "sweep", "quarantine")
RUNS_COLUMNS = ("as_of_date", "run_id", "attempt_id", "kind", "lines_in", "lines_clean", "lines_quarantined")
RUNS_COLUMNS += ("lines_out_of_window", "customers", "chosen_k", "choice_reason", "model_path", "code_version")
# a short JVM: the C1 compiler alone and a serial GC spend far less CPU on a run of small Spark jobs (CI has 2 cores)
QUICK_JVM = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m -XX:+UseSerialGC"
Step = Callable[[SparkSession, CatalogOutputConfig], dict[str, Any]]


def hive_settings(folder: Path) -> dict[str, str]:
    """Spark settings for a local[2] session whose Hive metastore (embedded Derby) and warehouse are in ``folder``."""
    return {
        "spark.master": "local[2]",
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={folder}/metastore_db;create=true",
        "spark.sql.warehouse.dir": str(folder / "warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={folder} {QUICK_JVM}",
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "1",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.codegen.wholeStage": "false",  # tiny data: compiling code costs more than it saves
        "spark.sql.codegen.factoryMode": "NO_CODEGEN",
        "spark.sql.adaptive.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.log.level": "ERROR",
    }


def hive_session(folder: Path) -> SparkSession:
    """A classic session with ``hive_settings(folder)``."""
    builder = SparkSession.builder.appName("segmentation-catalog-test").enableHiveSupport()
    for key, value in hive_settings(folder).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


# ---------------------------------------------------------------- a run's frames and manifest


SCHEMAS = {
    "segments": "customer_id string, segment int, segment_name string",
    "features": "customer_id string, recency_days double, frequency bigint",
    "profiles": "segment int, segment_name string, customers bigint",
    "sweep": "k int, silhouette double",
    "quarantine": "raw_line string, reason string",
}


def run_rows(version: int) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of each table of a run, different for each ``version`` (numbers exact in binary and JSON)."""
    v = version
    return {
        "segments": [(f"c{v}{i}", i % 2, "loyal" if i % 2 else "new") for i in range(v + 2)],
        "features": [(f"c{v}{i}", float(i * v), i + v) for i in range(v + 2)],
        "profiles": [(0, "new", v + 1), (1, "loyal", 1)],
        "sweep": [(k, v / 8 + k / 64) for k in (2, 3)],
        # version 3 quarantines nothing: a re-run without quarantined lines must empty its partition
        "quarantine": [(f"line {v}.{i}", "bad_quantity") for i in range(0 if v == 3 else v)],
    }


def frames(spark: SparkSession, version: int, *, fail: str | None = None) -> dict[str, DataFrame]:
    """The tables of ``run_rows(version)`` as frames; ``fail`` names one whose evaluation raises."""
    made = {name: spark.createDataFrame(rows, SCHEMAS[name]) for name, rows in run_rows(version).items()}
    if fail:
        made[fail] = made[fail].withColumn("segment_name", F.raise_error(F.lit("injected failure")).cast("string"))
    return made


def run_manifest(spark: SparkSession, staging: catalog.CatalogStaging, version: int, kind: str) -> Manifest:
    """The manifest ``manifest.build`` makes for such a run."""
    counts = LineCounts(lines_in=10 * version, lines_clean=9 * version, quarantined={"bad_quantity": version})
    extra = {"chosen_k": 2, "choice_reason": f"k=2 (version {version})"} if kind == SEGMENTATION else {}
    return build(
        SEGMENTATION if kind == SEGMENTATION else SCORING,
        JobConfig(),
        attempt=staging,  # type: ignore[arg-type]  (its date, run id and attempt id; no folder)
        spark_version=spark.version,
        counts={**counts.as_dict(), "customers": version + 2},
        mapping={0: 0, 1: 1},
        profile_rows=[],
        history=HistorySection(),
        **extra,
    )


def publish(
    spark: SparkSession,
    cfg: CatalogOutputConfig,
    as_of: dt.date,
    run_id: str,
    tables: Mapping[str, DataFrame],
    version: int,
    kind: str = SEGMENTATION,
) -> str:
    """begin, stage, commit (discard on failure) as the job does; the attempt id."""
    staging = catalog.begin(spark, cfg, as_of=as_of, run_id=run_id)
    try:
        catalog.stage(staging, tables)
        row = catalog.runs_row(run_manifest(spark, staging, version, kind), model_path=f"/models/{version}")
        catalog.commit(staging, row)
    except BaseException:
        catalog.discard(staging)
        raise
    return staging.attempt_id


# ---------------------------------------------------------------- what the tables hold


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def snapshot(spark: SparkSession, cfg: CatalogOutputConfig) -> dict[str, Any]:
    """Every table's rows (sorted lists, dates as text; ``runs`` without its commit time), read in one Spark job,
    and the names of the staging and work tables."""
    columns: dict[str, list[str]] = {}
    parts = []
    for table in (*TABLES, catalog.RUNS):
        name = catalog.table_name(cfg, table)
        if spark.catalog.tableExists(name):
            frame = spark.table(name)
            columns[table] = list(RUNS_COLUMNS) if table == catalog.RUNS else frame.columns
            parts.append(frame.select(F.lit(table).alias("t"), F.to_json(F.struct(*columns[table])).alias("row")))
    held: dict[str, Any] = {table: [] for table in columns}
    for row in functools.reduce(DataFrame.unionAll, parts).collect() if parts else []:
        values = json.loads(row["row"])  # to_json leaves nulls out
        held[row["t"]].append([values.get(c) for c in columns[row["t"]]])
    held = {table: sorted(rows, key=json.dumps) for table, rows in held.items()}
    listed = spark.sql(f"SHOW TABLES IN {catalog.database_name(cfg)}").collect()
    held["helper_tables"] = sorted(r["tableName"] for r in listed if r["tableName"].startswith("_segmentation_"))
    return held


def _failure(call: Callable[[], Any]) -> dict[str, str]:
    try:
        call()
    except (SegmentationError, PySparkException) as exc:
        return {"error": type(exc).__name__, "message": str(exc).splitlines()[0][:600]}
    raise AssertionError("expected a failure")


# ---------------------------------------------------------------- steps


def first_publish(spark: SparkSession, cfg: CatalogOutputConfig) -> dict[str, Any]:
    """A killed run's day-old staging table and a live job's work table are there; publish Jan 31, main."""
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {catalog.database_name(cfg)}")
    old = catalog.table_name(cfg, "_segmentation_stage_20200101000000_0123456789ab_segments")
    spark.sql(f"CREATE TABLE {old} (x INT) USING parquet")
    work = catalog.write_work_table(spark, cfg, spark.range(3), work_id="live01", name="lines")
    attempt = publish(spark, cfg, JAN, "main", frames(spark, 1), 1)
    before_drop = snapshot(spark, cfg)["helper_tables"]
    work_rows = work.count()
    catalog.drop_work_tables(spark, cfg, "live01")
    return {
        "attempt": attempt,
        "helper_tables_before_drop": before_drop,
        "work_rows": work_rows,
        **snapshot(spark, cfg),
    }


def second_publish(spark: SparkSession, cfg: CatalogOutputConfig) -> dict[str, Any]:
    return {"attempt": publish(spark, cfg, FEB, "main", frames(spark, 2), 2), **snapshot(spark, cfg)}


def rerun(spark: SparkSession, cfg: CatalogOutputConfig) -> dict[str, Any]:
    """Jan 31, main again with other rows; what readers see while it is only staged, and after."""
    staging = catalog.begin(spark, cfg, as_of=JAN, run_id="main")
    catalog.stage(staging, frames(spark, 3))
    while_staged = snapshot(spark, cfg)
    catalog.commit(staging, catalog.runs_row(run_manifest(spark, staging, 3, "segmentation"), model_path="/models/3"))
    return {
        "attempt": staging.attempt_id,
        "seen_attempt": staging.seen_attempt,
        "while_staged": while_staged,
        **snapshot(spark, cfg),
    }


def failed_run(spark: SparkSession, cfg: CatalogOutputConfig) -> dict[str, Any]:
    """Jan 31, main once more, but the third table's evaluation fails while it is staged."""
    failure = _failure(lambda: publish(spark, cfg, JAN, "main", frames(spark, 4, fail="profiles"), 4))
    return {**failure, **snapshot(spark, cfg)}


def other_columns(spark: SparkSession, cfg: CatalogOutputConfig) -> dict[str, Any]:
    """A run whose segments have another column than the table: refused before any table changes."""
    segments = frames(spark, 5)["segments"].withColumnRenamed("segment_name", "label")
    return {**_failure(lambda: publish(spark, cfg, JAN, "main", {"segments": segments}, 5)), **snapshot(spark, cfg)}


def concurrent_publish(spark: SparkSession, cfg: CatalogOutputConfig) -> dict[str, Any]:
    """Jobs A and B both begin Feb 29, main and stage; A commits first, so B must not publish."""
    a = catalog.begin(spark, cfg, as_of=FEB, run_id="main")
    b = catalog.begin(spark, cfg, as_of=FEB, run_id="main")
    catalog.stage(a, frames(spark, 6))
    catalog.stage(b, frames(spark, 7))
    catalog.commit(a, catalog.runs_row(run_manifest(spark, a, 6, "segmentation"), model_path=None))
    row_b = catalog.runs_row(run_manifest(spark, b, 7, "segmentation"), model_path=None)
    failure = _failure(lambda: catalog.commit(b, row_b))
    committed = catalog.run_row(spark, cfg, as_of=FEB, run_id="main")
    assert committed is not None
    return {
        "attempt_a": a.attempt_id,
        "attempt_b": b.attempt_id,
        "seen_attempt": a.seen_attempt,
        "committed_utc_a": committed["committed_utc"].isoformat(timespec="seconds"),
        **failure,
        **snapshot(spark, cfg),
    }


def scoring_run(spark: SparkSession, cfg: CatalogOutputConfig) -> dict[str, Any]:
    """A scoring run of Jan 31 under its own run id publishes segments only (and its runs row)."""
    attempt = publish(spark, cfg, JAN, "scores", {"segments": frames(spark, 8)["segments"]}, 8, kind="scoring")
    return {"attempt": attempt, **snapshot(spark, cfg)}


def _found(row: Mapping[str, Any] | None) -> list[Any] | None:
    return None if row is None else [row["as_of_date"].isoformat(), row["run_id"], row["attempt_id"]]


def queries(spark: SparkSession, cfg: CatalogOutputConfig) -> dict[str, Any]:
    """What any SQL user asks across dates, and ``run_row``'s choices."""
    segments, runs = catalog.table_name(cfg, "segments"), catalog.table_name(cfg, catalog.RUNS)
    by_segment = spark.sql(f"SELECT as_of_date, segment_name, count(*) FROM {segments} GROUP BY 1, 2 ORDER BY 1, 2")
    joined = spark.sql(
        f"SELECT s.as_of_date, s.run_id, r.kind, r.chosen_k, count(*) AS customers FROM {segments} s "
        f"JOIN {runs} r USING (as_of_date, run_id) GROUP BY 1, 2, 3, 4 ORDER BY 1, 2"
    )
    return {
        "by_segment": [[_plain(v) for v in row] for row in by_segment.collect()],
        "joined": [[_plain(v) for v in row] for row in joined.collect()],
        "run_row_date_and_id": _found(catalog.run_row(spark, cfg, as_of=JAN, run_id="main")),
        "run_row_date": _found(catalog.run_row(spark, cfg, as_of=JAN)),
        "run_row_newest": _found(catalog.run_row(spark, cfg)),
        "run_row_missing": _found(catalog.run_row(spark, cfg, as_of=dt.date(2023, 12, 31))),
    }


def runs_table_of_an_earlier_version(spark: SparkSession, cfg: CatalogOutputConfig) -> dict[str, Any]:
    """A ``runs`` table made before ``lines_read``, ``lines_in_state``, ``drift_status`` and ``held``, and a
    ``quarantine`` table made before ``detail``: a publish adds them, null for old rows."""
    earlier = CatalogOutputConfig(database="seg_earlier")
    spark.sql("CREATE DATABASE IF NOT EXISTS seg_earlier")
    old_fields = [f for f in catalog.RUNS_SCHEMA.fields if f.name not in catalog.ADDED_COLUMNS[catalog.RUNS]]
    old_row = {
        **catalog.runs_row(
            run_manifest(spark, catalog.begin(spark, earlier, as_of=JAN, run_id="old"), 1, SEGMENTATION),
            model_path=None,
        )
    }
    old = spark.createDataFrame([tuple(old_row[f.name] for f in old_fields)], T.StructType(old_fields))
    old.write.partitionBy("as_of_date", "run_id").saveAsTable(catalog.table_name(earlier, catalog.RUNS))
    old_quarantine = frames(spark, 1)["quarantine"].withColumns({"as_of_date": F.lit(JAN), "run_id": F.lit("old")})
    old_quarantine.write.partitionBy("as_of_date", "run_id").saveAsTable(catalog.table_name(earlier, "quarantine"))
    tables = frames(spark, 2)
    tables["quarantine"] = tables["quarantine"].withColumn("detail", F.lit("input.limits.max_quantity (1e+06)"))
    publish(spark, earlier, FEB, "main", tables, 2)
    runs = spark.table(catalog.table_name(earlier, catalog.RUNS)).orderBy("as_of_date")
    quarantine = spark.table(catalog.table_name(earlier, "quarantine")).orderBy("as_of_date", "raw_line")
    return {
        "columns": runs.columns,
        "rows": [[r["run_id"], r["lines_read"], r["lines_in_state"]] for r in runs.collect()],
        "quarantine_columns": quarantine.columns,
        "quarantine": [[r["run_id"], r["raw_line"], r["detail"]] for r in quarantine.collect()],
    }


def incremental_from_a_table(spark: SparkSession, cfg: CatalogOutputConfig) -> dict[str, Any]:
    """Incremental runs over a catalog table with an ingest-date column, publishing their state as catalog tables
    (database ``seg_inc``): three days, then three more; each compared with a full run over the same rows."""
    folder = WORK / "incremental"
    paths = deliveries.write_daily(folder / "daily", days=6, customers=40, seed=5)
    start = dt.date(2024, 4, 1)

    def ingested(days: range) -> DataFrame:
        frames = [
            spark.read.option("header", "true")
            .csv(str(paths[d]))
            .withColumn("ingest_date", F.lit(start + dt.timedelta(d)))
            for d in days
        ]
        return functools.reduce(DataFrame.unionByName, frames)

    spark.sql("CREATE DATABASE IF NOT EXISTS seg_inc")
    ingested(range(3)).write.mode("overwrite").saveAsTable("seg_inc.lines_in")
    settings = [
        "input.table=seg_inc.lines_in",
        "input.incremental=true",
        "input.incremental_column=ingest_date",
        "output.catalog.database=seg_inc",
    ]
    job = load([REPO / "conf/base.yaml"], settings, output_path=str(folder / "models"))
    held: dict[str, Any] = {}
    for name, days in (("first", None), ("second", range(3, 6))):
        if days is not None:
            ingested(days).write.mode("append").saveAsTable("seg_inc.lines_in")
        absorbed = incremental_steps.publish_state(spark, job, (None,))
        expected, counts, as_of = incremental_steps.full_run(spark, job, folder)
        got = absorbed.features[None]
        section = absorbed.increment.section
        held[name] = {
            "mode": section.mode,
            "lines_read": section.lines_read,
            "lines_in_state": section.lines_in_state,
            "read_up_to": section.read_up_to,
            "same_counts": absorbed.increment.validated.counts == counts,
            "same_as_of": absorbed.increment.validated.as_of == as_of,
            "same_customers": list(got["customer_id"]) == list(expected["customer_id"]),
            "largest_difference": float(
                (got.drop(columns="customer_id") - expected.drop(columns="customer_id")).abs().max().max()
            ),
            "lines_in": counts.lines_in,
        }
    held["tables"] = sorted(r["tableName"] for r in spark.sql("SHOW TABLES IN seg_inc").collect())
    return held


def held_and_promoted(spark: SparkSession, cfg: CatalogOutputConfig) -> dict[str, Any]:
    """A run the drift checks held (database ``seg_drift``): published, but the current run stays the one before;
    then promoted through the catalog publisher; then promoted again (refused)."""
    settings = CatalogOutputConfig(database="seg_drift")
    section = DriftSection(
        status="held",
        action="hold",
        baseline=BaselineRef(as_of_date=JAN.isoformat(), run_id="main"),
        measures=[
            DriftMeasure(
                measure="segment_psi",
                subject="all segments",
                value=0.5,
                threshold=0.02,
                threshold_from="calibrated",
                status="warn",
                severity=25.0,
            )
        ],
    )
    for as_of, version, drift in ((JAN, 1, None), (FEB, 2, section)):
        staging = catalog.begin(spark, settings, as_of=as_of, run_id="main")
        catalog.stage(staging, frames(spark, version))
        manifest = run_manifest(spark, staging, version, SEGMENTATION).model_copy(update={"drift": drift})
        catalog.commit(staging, catalog.runs_row(manifest, model_path=None))

    def state() -> dict[str, Any]:
        current = catalog.run_row(spark, settings)
        rows = spark.table(catalog.table_name(settings, catalog.RUNS)).orderBy("as_of_date").collect()
        return {
            "current": None if current is None else current["as_of_date"].isoformat(),
            "rows": [[r["as_of_date"].isoformat(), r["drift_status"], r["held"]] for r in rows],
            "listed": [[r.as_of_date, r.drift] for r in listing.catalog_runs(spark, settings)],
        }

    held = {"held": state()}
    publisher = CatalogPublisher(spark, for_root(spark, str(WORK / "drift_models")), settings, "main")
    publisher.promote(FEB, "main")
    held["promoted"] = state()
    held["promoted_utc"] = publisher.manifest(FEB, "main").drift.promoted_utc is not None  # type: ignore[union-attr]
    held["again"] = _failure(lambda: publisher.promote(FEB, "main"))
    return held


STEPS: dict[str, Step] = {
    "first_publish": first_publish,
    "second_publish": second_publish,
    "rerun": rerun,
    "failed_run": failed_run,
    "other_columns": other_columns,
    "concurrent_publish": concurrent_publish,
    "scoring_run": scoring_run,
    "queries": queries,
    "runs_table_of_an_earlier_version": runs_table_of_an_earlier_version,
    "incremental_from_a_table": incremental_from_a_table,
    "held_and_promoted": held_and_promoted,
}
WORK = Path(".")  # the driver's folder (main sets it)


def main(argv: list[str]) -> None:
    """``FOLDER`` for a classic Hive session there, or ``--remote URL`` for a Spark Connect server's session."""
    if argv[0] == "--remote":
        spark = SparkSession.builder.remote(argv[1]).getOrCreate()
    else:
        global WORK
        WORK = Path(argv[0]).resolve()
        spark = hive_session(WORK)
    cfg = CatalogOutputConfig(database=DATABASE)
    try:
        for name, step in STEPS.items():
            started = time.perf_counter()
            held = step(spark, cfg)
            print(json.dumps({"step": name, "seconds": round(time.perf_counter() - started, 1), **held}), flush=True)
    finally:
        spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
