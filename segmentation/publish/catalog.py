"""Publishing a run as catalog tables (Unity Catalog, a Hive metastore, AWS Glue): ``output.catalog``.

Every table (segments, features, profiles, sweep, quarantine, and ``runs``) is partitioned by
``as_of_date`` (DATE) and ``run_id`` (STRING), its last two columns, and lives in ``output.catalog.database``
(of ``output.catalog.catalog`` if set). ``runs`` holds one row per published run: its date, run id, attempt,
counts, chosen k and its reason, config and code version. A run is published in steps:

- ``begin``: the database is made if missing; the attempt id that ``runs`` names for this date and run id is
  noted; staging and work tables left by killed runs (over a day old) are dropped.
- ``stage``: each frame is written whole to its own staging table
  ``_segmentation_stage_<yyyymmddHHMMSS>_<attempt>_<table>``; no table a reader uses changes.
- ``commit``: if ``runs`` names another attempt than ``begin`` saw, another job published this date and run
  id meanwhile and this run stops (``RunFailed``), leaving that run whole. Otherwise the ``runs`` row of this
  date and run id is removed first (so while the tables are copied that run is simply not published), each
  table's partition of this date and run id is replaced with the staged rows (other partitions are never
  touched), the ``runs`` row is written last, and the staging tables are dropped.
- ``promote``: a run the drift checks held (``runs.held`` true: readers of the current run skip it) has its
  ``runs`` row rewritten with ``held`` false.
- ``discard``: a failed attempt's staging tables are dropped; the published tables stay as they were.

A reader that joins on ``runs`` so never sees a half-written run. A metastore has no transactions across
tables, so a reader of a table alone may see a run of this date and run id partly replaced while ``commit``
copies (or after it failed while copying; ``runs`` then has no row for it, and the next run of that date and
run id replaces it whole), and two jobs that reach ``commit`` at the same moment are not told apart: run one
job per date and run id at a time. Partitions are replaced with
``INSERT OVERWRITE ... PARTITION (as_of_date = …, run_id = …)`` (a static partition, so exactly that one is
replaced, also by no rows), or for a Delta table with ``replaceWhere``. Only DataFrame, SQL and catalog calls
that Spark Connect also has are used.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segmentation.config import CatalogOutputConfig
from segmentation.errors import RunFailed, summary
from segmentation.publish.catalog_names import (
    AS_OF_DATE,
    HELPER_TABLE,
    IDENTIFIER,
    PARTITION_COLUMNS,
    RUN_ID,
    RUNS,
    STAGE_PREFIX,
    WORK_PREFIX,
    database_name,
    helper_table,
    partition_condition,
    partition_spec,
    quote_identifier,
    stale,
    table_name,
)
from segmentation.publish.catalog_runs import ADDED_COLUMNS as ADDED_COLUMNS
from segmentation.publish.catalog_runs import RUNS_SCHEMA as RUNS_SCHEMA
from segmentation.publish.catalog_runs import run_row as run_row
from segmentation.publish.catalog_runs import runs_row as runs_row
from segmentation.publish.manifest import Manifest
from segmentation.publish.publisher import WRITE_PARALLELISM
from segmentation.runtime.threads import run_all

log = logging.getLogger(__name__)

DELTA = "delta"


@dataclass(frozen=True)
class CatalogStaging:
    """A run being published as catalog tables; ``seen_attempt`` is the attempt id ``runs`` named for this date
    and run id when ``begin`` ran (None if none), checked again by ``commit``."""

    spark: SparkSession
    cfg: CatalogOutputConfig
    as_of: dt.date
    run_id: str
    attempt_id: str
    seen_attempt: str | None


# ---------------------------------------------------------------- publishing


def begin(spark: SparkSession, cfg: CatalogOutputConfig, *, as_of: dt.date, run_id: str) -> CatalogStaging:
    """Start publishing the run of ``as_of`` and ``run_id``: make the database if missing, note the attempt
    ``runs`` names for this date and run id, and drop staging and work tables of killed runs (over a day old)."""
    ensure_database(spark, cfg)
    drop_stale_tables(spark, cfg)
    seen = run_row(spark, cfg, as_of=as_of, run_id=run_id)
    return CatalogStaging(
        spark=spark,
        cfg=cfg,
        as_of=as_of,
        run_id=run_id,
        attempt_id=uuid.uuid4().hex[:12],
        seen_attempt=None if seen is None else seen["attempt_id"],
    )


def stage(staging: CatalogStaging, tables: Mapping[str, DataFrame]) -> None:
    """Write each frame whole to its own staging table, with ``as_of_date`` and ``run_id`` appended last.

    Several are written at once; every write finishes (or fails) before this returns, then the first failure
    is raised (the caller then calls ``discard``). No table a reader uses changes.
    """
    for name, frame in tables.items():
        if name == RUNS or not IDENTIFIER.match(name):
            raise ValueError(f"cannot stage a table named {name!r}")
        if taken := [c for c in frame.columns if c.lower() in PARTITION_COLUMNS]:
            raise ValueError(f"table {name} already has the partition column(s) {taken}")
    as_of, run_id = F.lit(staging.as_of), F.lit(staging.run_id)
    writes = {
        name: functools.partial(_write_staged, staging, name, frame.withColumns({AS_OF_DATE: as_of, RUN_ID: run_id}))
        for name, frame in tables.items()
    }
    _all_at_once(staging.spark, writes)


def commit(staging: CatalogStaging, run_row: Mapping[str, Any]) -> None:
    """Publish the staged tables and then ``run_row`` as the run of this date and run id (see the module).

    ``run_row`` (from ``runs_row``) must name this run's date and run id; its ``attempt_id`` is set to this
    attempt's and ``committed_utc`` to now. Raises ``RunFailed``, publishing nothing, when another job
    published this date and run id since ``begin``, or when a table's columns differ from the staged ones.
    """
    spark, cfg, as_of, run_id = staging.spark, staging.cfg, staging.as_of, staging.run_id
    _check_no_other_publish(staging)
    row = _own_runs_row(staging, run_row)
    _write_staged(staging, RUNS, spark.createDataFrame([tuple(row.values())], RUNS_SCHEMA))
    staged = _staged_tables(staging)
    targets = _all_at_once(
        spark, {t: functools.partial(_prepare_target, spark, cfg, t, source) for t, source in staged.items()}
    )
    runs = targets.pop(RUNS)  # every check is done before any table a reader uses changes
    for target in (runs, *targets.values()):  # columns an earlier version's tables lack, before any row changes
        _add_columns(spark, target)
    _unpublish(spark, runs, as_of, run_id)
    _all_at_once(
        spark,
        {
            t: functools.partial(_replace_partition, spark, target, staged[t], as_of, run_id)
            for t, target in targets.items()
        },
    )
    _replace_partition(spark, runs, staged[RUNS], as_of, run_id)
    log.info("published as-of %s, run id %s as catalog tables", as_of.isoformat(), run_id)
    discard(staging)


def promote(spark: SparkSession, cfg: CatalogOutputConfig, *, manifest: Manifest, row: Mapping[str, Any]) -> None:
    """Rewrite the ``runs`` row of a held run (``row``, from ``run_row``) as current: ``held`` false and its
    manifest (``manifest``, with ``drift.promoted_utc`` set). Only that row's partition is replaced."""
    promoted = {**row, "held": False, "manifest_json": json.dumps(manifest.to_json(), default=str)}
    view = f"_segmentation_promote_{uuid.uuid4().hex[:12]}"
    spark.createDataFrame([tuple(promoted[f.name] for f in RUNS_SCHEMA.fields)], RUNS_SCHEMA).createOrReplaceTempView(
        view
    )
    try:
        runs = _prepare_target(spark, cfg, RUNS, view)
        _add_columns(spark, runs)
        _replace_partition(spark, runs, view, row[AS_OF_DATE], row[RUN_ID])
    finally:
        spark.catalog.dropTempView(view)
    log.info("promoted as-of %s, run id %s in %s", row[AS_OF_DATE], row[RUN_ID], table_name(cfg, RUNS))


def discard(staging: CatalogStaging) -> None:
    """Drop this attempt's staging tables (published tables are never touched)."""
    drops = {
        table: functools.partial(staging.spark.sql, f"DROP TABLE IF EXISTS {table}")
        for table in _staged_tables(staging).values()
    }
    _all_at_once(staging.spark, drops)


# ---------------------------------------------------------------- work tables


def write_work_table(
    spark: SparkSession, cfg: CatalogOutputConfig, frame: DataFrame, *, work_id: str, name: str
) -> DataFrame:
    """``frame`` saved once as the managed table ``_segmentation_work_<ts>_<work_id>_<name>`` and read back.

    For a run with no file area it can clean (Spark Connect whose client cannot reach the output root).
    """
    ensure_database(spark, cfg)
    target = table_name(cfg, helper_table(WORK_PREFIX, dt.datetime.now(dt.UTC), owner=work_id, name=name))
    writer = frame.write.mode("error")  # "errorifexists" is not accepted by Spark Connect
    if cfg.format:
        writer = writer.format(cfg.format)
    writer.saveAsTable(target)
    return spark.table(target)


def drop_work_tables(spark: SparkSession, cfg: CatalogOutputConfig, work_id: str) -> None:
    """Drop every work table of ``work_id``."""
    for table in _helper_tables(spark, cfg, "work", work_id.lower()):
        spark.sql(f"DROP TABLE IF EXISTS {table_name(cfg, table)}")


# ---------------------------------------------------------------- the database and helper tables


def ensure_database(spark: SparkSession, cfg: CatalogOutputConfig) -> None:
    """Make the database if it is missing; go on if that is not allowed but it exists."""
    plain = ".".join(part for part in (cfg.catalog_name, cfg.database) if part)  # validated identifiers: no quoting
    if spark.catalog.databaseExists(plain):
        return
    try:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {database_name(cfg)}")
    except Exception as exc:
        if not spark.catalog.databaseExists(plain):
            raise RunFailed(f"cannot create the database {plain} for the catalog tables: {summary(exc)}") from exc


def drop_stale_tables(spark: SparkSession, cfg: CatalogOutputConfig, now: dt.datetime | None = None) -> list[str]:
    """Drop staging and work tables made over a day ago (by killed runs; a live job's are younger); their names."""
    now = now or dt.datetime.now(dt.UTC)
    dropped = [table for table in _helper_tables(spark, cfg) if stale(table, now)]
    for table in dropped:
        log.warning("dropping table %s left by a killed run", table)
        spark.sql(f"DROP TABLE IF EXISTS {table_name(cfg, table)}")
    return dropped


def _helper_tables(
    spark: SparkSession, cfg: CatalogOutputConfig, kind: str | None = None, owner: str | None = None
) -> list[str]:
    """Names of the staging/work tables in the database, of one ``kind`` and ``owner`` (attempt or work id)."""
    listed = spark.sql(f"SHOW TABLES IN {database_name(cfg)} LIKE '_segmentation_*'").collect()
    found = []
    for row in listed:
        if row["isTemporary"]:
            continue
        match = HELPER_TABLE.match(row["tableName"])
        if match and kind in (None, match.group(1).lower()) and owner in (None, match.group(3).lower()):
            found.append(row["tableName"])
    return sorted(found)


def _staged_tables(staging: CatalogStaging) -> dict[str, str]:
    """This attempt's staging tables: table name -> quoted staging table name."""
    tables = _helper_tables(staging.spark, staging.cfg, "stage", staging.attempt_id.lower())
    return {HELPER_TABLE.match(t).group(4).lower(): table_name(staging.cfg, t) for t in tables}  # type: ignore[union-attr]


def _write_staged(staging: CatalogStaging, name: str, frame: DataFrame) -> None:
    table = helper_table(STAGE_PREFIX, dt.datetime.now(dt.UTC), owner=staging.attempt_id, name=name)
    writer = frame.write.mode("error")
    if staging.cfg.format:
        writer = writer.format(staging.cfg.format)
    writer.saveAsTable(table_name(staging.cfg, table))
    log.info("staged table %s", name)


def _all_at_once(spark: SparkSession, calls: Mapping[str, Any]) -> dict[str, Any]:
    """Each call's result by name, several run at once (Spark jobs and metastore calls wait more than they work)."""
    return run_all(spark, calls, workers=WRITE_PARALLELISM)


# ---------------------------------------------------------------- commit's steps


def _check_no_other_publish(staging: CatalogStaging) -> None:
    """Raise RunFailed (dropping this attempt's staging tables) if ``runs`` names another attempt than at begin."""
    current = run_row(staging.spark, staging.cfg, as_of=staging.as_of, run_id=staging.run_id)
    attempt = None if current is None else current["attempt_id"]
    if attempt == staging.seen_attempt:
        return
    discard(staging)
    run = f"as-of {staging.as_of.isoformat()}, run id {staging.run_id}"
    if current is None:
        raise RunFailed(
            f"another job started publishing {run} (attempt {staging.seen_attempt} was unpublished) while this run "
            "was running; this run was not published"
        )
    when = current["committed_utc"].isoformat(timespec="seconds") if current["committed_utc"] else "an unknown time"
    raise RunFailed(
        f"another job published {run} at {when} (attempt {attempt}) while this run was running; this run was not "
        "published; the tables hold the other run whole"
    )


def _own_runs_row(staging: CatalogStaging, row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` in ``RUNS_SCHEMA`` order with this attempt's id and the commit time."""
    if row.get(AS_OF_DATE) != staging.as_of or row.get(RUN_ID) != staging.run_id:
        raise ValueError(
            f"the runs row is of as-of {row.get(AS_OF_DATE)}, run id {row.get(RUN_ID)}, not of the run being "
            f"published (as-of {staging.as_of.isoformat()}, run id {staging.run_id})"
        )
    own = {**row, "attempt_id": staging.attempt_id, "committed_utc": dt.datetime.now(dt.UTC)}
    if missing := [f.name for f in RUNS_SCHEMA.fields if f.name not in own]:
        raise ValueError(f"the runs row has no {missing}")
    return {f.name: own[f.name] for f in RUNS_SCHEMA.fields}


@dataclass(frozen=True)
class _Target:
    """A published table ready for a partition to be replaced: its name, format and data columns in order."""

    name: str
    provider: str
    columns: Sequence[str]
    added: Sequence[tuple[str, str]] = ()  # columns a ``runs`` table made by an earlier version lacks (and type)


def _prepare_target(spark: SparkSession, cfg: CatalogOutputConfig, table: str, source: str) -> _Target:
    """The table ``table`` made if missing (partitioned by as-of date and run id), checked against ``source``."""
    name = table_name(cfg, table)
    staged = spark.table(source)
    if not spark.catalog.tableExists(name):
        writer = staged.limit(0).write.partitionBy(*PARTITION_COLUMNS).mode("ignore")  # ignore: made meanwhile
        if cfg.format:
            writer = writer.format(cfg.format)
        writer.saveAsTable(name)
        log.info("created table %s", name)
    provider, partitioned_by = _describe(spark, name)
    if [c.lower() for c in partitioned_by] != list(PARTITION_COLUMNS):
        raise RunFailed(
            f"table {name} is partitioned by {partitioned_by or 'nothing'}, not by {list(PARTITION_COLUMNS)}; "
            "this run was not published (drop or rename that table, or publish to another database)"
        )
    have = _data_columns(spark.table(name))
    want = _data_columns(staged)
    added = [(c, t) for c, t in want if c in ADDED_COLUMNS.get(table, ()) and (c, t) not in have]
    have = [*have, *added]  # a table made before these columns: added by commit, after every check
    if {c.lower(): t for c, t in have} != {c.lower(): t for c, t in want}:
        raise RunFailed(
            f"table {name} has the columns {_listed(have)} but this run's {table} has {_listed(want)}; this run was "
            "not published (drop or rename that table, or publish to another database)"
        )
    return _Target(name, provider, [c for c, _ in have], added)


def _add_columns(spark: SparkSession, target: _Target) -> None:
    """Add the columns an earlier version's table lacks (null for the rows already there)."""
    if target.added:
        listed = ", ".join(f"{quote_identifier(c)} {t}" for c, t in target.added)
        spark.sql(f"ALTER TABLE {target.name} ADD COLUMNS ({listed})")
        log.info("added the columns %s to %s", [c for c, _ in target.added], target.name)


def _data_columns(frame: DataFrame) -> list[tuple[str, str]]:
    return [(f.name, f.dataType.simpleString()) for f in frame.schema.fields if f.name.lower() not in PARTITION_COLUMNS]


def _listed(columns: Sequence[tuple[str, str]]) -> str:
    return "[" + ", ".join(f"{name} {kind}" for name, kind in columns) + "]"


def _describe(spark: SparkSession, name: str) -> tuple[str, list[str]]:
    """A table's provider (``parquet``, ``delta``, ``hive``…) and partition columns, from DESCRIBE TABLE EXTENDED."""
    provider, partitions, section = "", [], ""
    for row in spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect():
        key, value = (row["col_name"] or "").strip(), (row["data_type"] or "").strip()
        if key.startswith("#"):
            section = section if key == "# col_name" else key
        elif section == "# Partition Information" and key:
            partitions.append(key)
        elif key == "Provider":
            provider = value.lower()
    return provider, partitions


def _unpublish(spark: SparkSession, runs: _Target, as_of: dt.date, run_id: str) -> None:
    """Remove the ``runs`` row of this date and run id: from then on that run is not published."""
    if runs.provider == DELTA:
        spark.sql(f"DELETE FROM {runs.name} WHERE {partition_condition(as_of, run_id)}")
    else:
        spark.sql(f"ALTER TABLE {runs.name} DROP IF EXISTS PARTITION {partition_spec(as_of, run_id)}")


def _replace_partition(spark: SparkSession, target: _Target, source: str, as_of: dt.date, run_id: str) -> None:
    """Replace exactly the (as_of_date, run_id) partition of ``target`` with the rows of ``source``.

    A static partition in ``INSERT OVERWRITE`` replaces that partition alone whatever the session's
    ``partitionOverwriteMode`` is, and empties it when ``source`` has no rows. Not ``insertInto(overwrite=True)``
    with the writer option ``partitionOverwriteMode=dynamic``: Spark 4.3 ignores that option there and replaces
    the whole table (a Parquet table in a Hive metastore), and a dynamic overwrite by no rows keeps the old ones.
    """
    columns = ", ".join(quote_identifier(c) for c in target.columns)
    if target.provider == DELTA:
        rows = spark.table(source).selectExpr(*[quote_identifier(c) for c in (*target.columns, *PARTITION_COLUMNS)])
        writer = rows.write.format(DELTA).mode("overwrite").option("replaceWhere", partition_condition(as_of, run_id))
        writer.saveAsTable(target.name)
    else:
        spark.sql(
            f"INSERT OVERWRITE TABLE {target.name} PARTITION {partition_spec(as_of, run_id)} "
            f"SELECT {columns} FROM {source}"
        )
