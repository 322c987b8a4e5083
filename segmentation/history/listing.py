"""The published runs of an output root or of a catalog database, one entry each (``segmentation runs``): as-of
date, run id, kind, when its manifest was written (at the commit), chosen k, customers, the drift checks' status
and where its report is."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from segmentation.config import CatalogOutputConfig
from segmentation.errors import ConfigError, InputError
from segmentation.publish import Storage, catalog_table_name, committed_runs, read_manifest, resolve_run

REPORT_FILE = "report.html"


@dataclass(frozen=True)
class PublishedRun:
    """One committed run, as ``segmentation runs`` lists it."""

    as_of_date: str
    run_id: str
    kind: str
    committed_utc: str
    chosen_k: int | None
    customers: int
    report: str | None  # report.html, the report table's rows of this run, or None (a scoring run has none)
    location: str  # the run's committed attempt folder, or its rows in the catalog's runs table
    drift: str = "-"  # the drift checks' status: ok, warn, held (not current until promoted), promoted, no baseline

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return asdict(self)


def file_runs(store: Storage, run_id: str | None = None) -> list[PublishedRun]:
    """Every committed run under the root of ``store`` (of ``run_id`` if given), oldest first; InputError when
    there is no such root (a mistyped path is not an empty root)."""
    if not store.exists(store.root):
        raise InputError(f"no output root at {store.root}")
    found = []
    for as_of, rid in committed_runs(store):
        if run_id not in (None, rid):
            continue
        folder = resolve_run(store, as_of, rid)
        manifest = read_manifest(store, folder)
        report = store.join(folder, REPORT_FILE)
        found.append(
            PublishedRun(
                as_of.isoformat(),
                rid,
                manifest.kind,
                manifest.created_utc,
                manifest.chosen_k,
                manifest.counts.customers,
                report if store.exists(report) else None,
                folder,
                drift_status(manifest.drift.status if manifest.drift else None, held=manifest.held),
            )
        )
    return found


def drift_status(status: str | None, *, held: bool | None) -> str:
    """A run's drift status as listed: a held run promoted since is ``promoted``; ``-`` for a run without checks."""
    if status is None:
        return "-"
    return "promoted" if status == "held" and held is False else status


def catalog_database(text: str) -> CatalogOutputConfig:
    """``--catalog DB`` or ``--catalog CATALOG.DB`` as the catalog output settings; ConfigError otherwise."""
    parts = text.split(".")
    try:
        if len(parts) == 1:
            return CatalogOutputConfig(database=parts[0])
        if len(parts) == 2:
            return CatalogOutputConfig.model_validate({"catalog": parts[0], "database": parts[1]})
    except ValueError:
        pass
    raise ConfigError(f"--catalog {text!r}: expected DATABASE or CATALOG.DATABASE (letters, digits and '_')")


def catalog_runs(spark: SparkSession, settings: CatalogOutputConfig, run_id: str | None = None) -> list[PublishedRun]:
    """Every run committed to the catalog tables of ``settings`` (its ``runs`` table), oldest first."""
    runs_table, report_table = catalog_table_name(settings, "runs"), catalog_table_name(settings, "report")
    database = ".".join(part for part in (settings.catalog_name, settings.database) if part)
    if not spark.catalog.databaseExists(database):
        raise InputError(f"no database {database} in the session's catalog")
    if not spark.catalog.tableExists(runs_table):
        return []
    rows = spark.table(runs_table)
    if run_id is not None:
        rows = rows.where(F.col("run_id") == run_id)
    has_report = spark.catalog.tableExists(report_table)
    status = [F.col(c) if c in rows.columns else F.lit(None).alias(c) for c in ("drift_status", "held")]
    listed = rows.select("as_of_date", "run_id", "kind", "committed_utc", "chosen_k", "customers", *status)
    found = []
    for row in listed.orderBy("as_of_date", "committed_utc").collect():  # one row per run: small
        as_of = row["as_of_date"]
        where = f"as_of_date = '{as_of.isoformat()}' AND run_id = '{row['run_id']}'"
        committed = row["committed_utc"]
        found.append(
            PublishedRun(
                as_of.isoformat(),
                row["run_id"],
                row["kind"],
                committed.isoformat() if isinstance(committed, dt.datetime) else str(committed),
                row["chosen_k"],
                int(row["customers"]),
                f"{report_table} WHERE {where}" if has_report and row["kind"] == "segmentation" else None,
                f"{runs_table} WHERE {where}",
                drift_status(row["drift_status"], held=row["held"]),
            )
        )
    return found


def runs_text(runs: list[PublishedRun], where: str) -> str:
    """A table of ``runs`` for a terminal (or a line saying there is none under ``where``)."""
    if not runs:
        return f"no published run in {where}"
    header = (
        f"{'as-of date':<10}  {'run id':<12} {'kind':<12} {'committed (UTC)':<19}  {'k':>3} {'customers':>10}  "
        f"{'drift':<11} report"
    )
    lines = [header]
    for r in runs:
        k = "-" if r.chosen_k is None else str(r.chosen_k)
        lines.append(
            f"{r.as_of_date:<10}  {r.run_id:<12} {r.kind:<12} {r.committed_utc[:19]:<19}  {k:>3} {r.customers:>10}  "
            f"{r.drift:<11} {r.report or '-'}"
        )
    return "\n".join(lines)
