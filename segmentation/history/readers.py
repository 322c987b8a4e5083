"""Membership history: one table of every committed run under an output root read as one table with
``as_of_date`` and ``run_id`` columns: ``read`` (Spark), ``read_pandas`` (pyarrow) and ``parquet_files`` (for
DuckDB or any Parquet reader). Only committed attempts are read, never a half-written or replaced one. With
catalog tables it is the table itself, joined on ``runs``."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segmentation.errors import InputError
from segmentation.publish import Storage, committed_runs, for_root, resolve_run, table_path


@dataclass(frozen=True)
class RunEntry:
    """One committed run under an output root."""

    as_of: dt.date
    run_id: str
    folder: str  # its committed attempt folder


def list_runs(store: Storage, run_id: str | None = None) -> list[RunEntry]:
    """Every committed run under the root (of ``run_id`` if given), oldest first."""
    found = []
    for as_of, rid in committed_runs(store):
        if run_id in (None, rid):
            folder = resolve_run(store, as_of, rid)
            found.append(RunEntry(as_of, rid, folder))
    return found


def read(spark: SparkSession, root: str, table: str = "segments", *, run_id: str | None = None) -> DataFrame:
    """One table of every committed run under ``root`` as one DataFrame, with ``as_of_date`` and ``run_id``.

    The committed attempts' table folders, each read as Parquet, as one union; runs without that table are
    skipped (and columns a run lacks are null).
    """
    store = for_root(spark, root)
    runs = [r for r in list_runs(store, run_id) if store.exists(table_path(r.folder, table))]
    if not runs:
        raise InputError(f"{root}: no published run has a {table} table")
    frames = [
        spark.read.parquet(table_path(r.folder, table)).withColumns(
            {"as_of_date": F.lit(r.as_of), "run_id": F.lit(r.run_id)}
        )
        for r in runs
    ]
    # one read per run: Spark infers partition columns (``segment=…``) below one root per read
    return functools.reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)


def parquet_files(root: str, table: str = "segments", *, run_id: str | None = None) -> list[str]:
    """The Parquet files of one table of every committed run under a local ``root`` (for DuckDB, pyarrow...).

    Their paths hold ``as_of_date=…/run_id=…`` (and ``segment=…`` for segments), so a reader with Hive
    partitioning (``duckdb.read_parquet(files, hive_partitioning=True)``) gets those as columns.
    """
    store = for_root(None, root)
    files = []
    for run in list_runs(store, run_id):
        files += _parquet_under(store, table_path(run.folder, table))
    return files


def _parquet_under(store: Storage, folder: str) -> list[str]:
    found = []
    for entry in store.list(folder):
        path = store.join(folder, entry.name)
        if entry.is_dir and "=" in entry.name:
            found += _parquet_under(store, path)
        elif entry.name.endswith(".parquet") and not entry.name.startswith(("_", ".")):
            found.append(path)
    return sorted(found)


def read_pandas(root: str, table: str = "segments", *, run_id: str | None = None) -> pd.DataFrame:
    """One table of every committed run under a local ``root`` as one pandas frame, with ``as_of_date`` and
    ``run_id`` (and the table's own partition columns), read with pyarrow."""
    import pyarrow.dataset as ds

    store = for_root(None, root)
    frames = []
    for run in list_runs(store, run_id):
        folder = table_path(run.folder, table)
        if not store.exists(folder):
            continue
        frame = ds.dataset(folder, format="parquet", partitioning="hive").to_table().to_pandas()
        frames.append(frame.assign(as_of_date=run.as_of, run_id=run.run_id))
    if not frames:
        raise InputError(f"{root}: no published run has a {table} table")
    return pd.concat(frames, ignore_index=True)
