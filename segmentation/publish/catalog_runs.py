"""The ``runs`` table of catalog publishing: its schema (and the columns later versions added to any table), the
row of a run from its manifest, and reading the row of a run (or of the current one: the newest not held)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segmentation.config import CatalogOutputConfig
from segmentation.publish.catalog_names import AS_OF_DATE, RUN_ID, RUNS, table_name
from segmentation.publish.manifest import Manifest

RUNS_SCHEMA = T.StructType(
    [
        T.StructField("attempt_id", T.StringType(), False),
        T.StructField("kind", T.StringType(), False),
        T.StructField("committed_utc", T.TimestampType(), False),
        T.StructField("lines_in", T.LongType(), True),
        T.StructField("lines_clean", T.LongType(), True),
        T.StructField("lines_quarantined", T.LongType(), True),
        T.StructField("lines_out_of_window", T.LongType(), True),
        T.StructField("customers", T.LongType(), True),
        T.StructField("chosen_k", T.IntegerType(), True),
        T.StructField("choice_reason", T.StringType(), True),
        T.StructField("model_path", T.StringType(), True),
        T.StructField("code_version", T.StringType(), True),
        T.StructField("spark_version", T.StringType(), True),
        T.StructField("config_json", T.StringType(), True),
        T.StructField("manifest_json", T.StringType(), True),
        T.StructField("lines_read", T.LongType(), True),
        T.StructField("lines_in_state", T.LongType(), True),
        T.StructField("drift_status", T.StringType(), True),
        T.StructField("held", T.BooleanType(), True),
        T.StructField(AS_OF_DATE, T.DateType(), False),
        T.StructField(RUN_ID, T.StringType(), False),
    ]
)

ADDED_COLUMNS = {  # columns later versions added to a table (null in the rows an earlier version wrote)
    RUNS: ("lines_read", "lines_in_state", "drift_status", "held"),
    "quarantine": ("detail",),
}


def runs_row(manifest: Manifest, *, model_path: str | None) -> dict[str, Any]:
    """The ``runs`` row of a run from its manifest, keys in ``RUNS_SCHEMA`` order.

    ``chosen_k`` and ``choice_reason`` are None for a scoring run; ``committed_utc`` is now, and ``commit``
    sets it again when it writes the row.
    """
    counts, state = manifest.counts, manifest.incremental
    return {
        "attempt_id": manifest.attempt_id,
        "kind": manifest.kind,
        "committed_utc": dt.datetime.now(dt.UTC),
        "lines_in": counts.lines_in,
        "lines_clean": counts.lines_clean,
        "lines_quarantined": counts.lines_quarantined,
        "lines_out_of_window": counts.lines_out_of_window,
        "customers": counts.customers,
        "chosen_k": manifest.chosen_k,
        "choice_reason": manifest.choice_reason,
        "model_path": model_path,
        "code_version": manifest.versions.segmentation,
        "spark_version": manifest.versions.spark,
        "config_json": json.dumps(manifest.config),
        "manifest_json": json.dumps(manifest.to_json(), default=str),
        "lines_read": state.lines_read if state else counts.lines_in,
        "lines_in_state": state.lines_in_state if state else None,
        "drift_status": manifest.drift.status if manifest.drift else None,
        "held": manifest.held,
        AS_OF_DATE: dt.date.fromisoformat(manifest.as_of_date),
        RUN_ID: manifest.run_id,
    }


def run_row(
    spark: SparkSession, cfg: CatalogOutputConfig, *, as_of: dt.date | None = None, run_id: str | None = None
) -> dict[str, Any] | None:
    """The ``runs`` row of the run with this date and run id (``committed_utc`` an aware UTC datetime).

    With only a date: that date's last run id in name order; with neither: the newest as-of date (ties: the
    latest commit) that is not held by the drift checks. None if there is no such run (or no ``runs`` table).
    """
    name = table_name(cfg, RUNS)
    if not spark.catalog.tableExists(name):
        return None
    runs = spark.table(name)
    if as_of is not None:
        runs = runs.where(F.col(AS_OF_DATE) == F.lit(as_of))
    if run_id is not None:
        runs = runs.where(F.col(RUN_ID) == F.lit(run_id))
    if as_of is not None:
        order = [F.col(RUN_ID).desc()]
    else:
        order = [F.col(AS_OF_DATE).desc(), F.col("committed_utc").desc(), F.col(RUN_ID).desc()]
        if "held" in runs.columns:  # the current run: a held one is not, until promoted
            runs = runs.where(~F.coalesce(F.col("held"), F.lit(False)))
    found = runs.withColumn("_committed_micros", F.unix_micros("committed_utc")).orderBy(*order).limit(1).collect()
    if not found:
        return None
    row = found[0].asDict()
    micros = row.pop("_committed_micros")
    row["committed_utc"] = None if micros is None else dt.datetime.fromtimestamp(micros / 1e6, dt.UTC)
    return row
