"""Writing a run: one Parquet table per output, each partitioned by as-of date, then manifest and _SUCCESS.

Each table is written to its own ``<root>/<table>/as_of_date=<date>/`` folder with Spark's overwrite,
which replaces that date's data whole (including sub-partitions such as a segment that no longer exists)
and never touches other dates. Reading ``<root>/<table>`` gives every date, with ``as_of_date`` as a
partition column that Spark prunes on.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from segmentation.config import is_local_path, local_path

log = logging.getLogger(__name__)

SUCCESS = "_SUCCESS"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class TableOutput:
    """One DataFrame to write, and the columns it is partitioned by under its date folder."""

    frame: DataFrame
    partition_by: Sequence[str] = field(default_factory=tuple)


def root_path(path: str) -> str:
    """The output root, made absolute when it is a local path (so Python and Spark agree on it)."""
    if not is_local_path(path):
        raise ValueError(
            f"output.path: {path!r} is not a local or mounted path; this version writes the manifest with "
            "Python file I/O, so use a local, /dbfs/ or /Volumes/ path"
        )
    return str(Path(local_path(path)).resolve())


def date_folder(root: str, table: str, as_of: dt.date) -> str:
    """``<root>/<table>/as_of_date=<YYYY-MM-DD>``."""
    return os.path.join(root, table, f"as_of_date={as_of.isoformat()}")


def begin(root: str, as_of: dt.date) -> str:
    """Prepare the run folder of ``as_of`` and remove its old ``_SUCCESS``; return the run folder.

    Called before any table is written, so a run that dies half-way never leaves a success marker beside
    partly replaced data.
    """
    run_folder = date_folder(root, "runs", as_of)
    os.makedirs(run_folder, exist_ok=True)
    success = os.path.join(run_folder, SUCCESS)
    if os.path.exists(success):
        os.remove(success)
    return run_folder


def write_tables(
    root: str, as_of: dt.date, tables: Mapping[str, TableOutput], model: PipelineModel | None = None
) -> None:
    """Write every table (and the model, if given) for ``as_of``, each replacing that date's folder whole."""
    for name, table in tables.items():
        target = date_folder(root, name, as_of)
        writer = table.frame.write.mode("overwrite")
        if table.partition_by:
            writer = writer.partitionBy(*table.partition_by)
        writer.parquet(target)
        log.info("wrote %s", target)
    if model is not None:
        model.write().overwrite().save(date_folder(root, "models", as_of))


def finish(run_folder: str, manifest: Mapping[str, Any]) -> None:
    """Write the manifest, then ``_SUCCESS``: the run is published."""
    _write_text(os.path.join(run_folder, MANIFEST), json.dumps(manifest, indent=2, default=str))
    _write_text(os.path.join(run_folder, SUCCESS), "")


def _write_text(path: str, text: str) -> None:
    """Write a small file whole: to a temporary name, then renamed into place."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def read_manifest(root: str, as_of: dt.date) -> dict[str, Any]:
    """The manifest of a published run; refuses a run without ``_SUCCESS``."""
    run_folder = date_folder(root, "runs", as_of)
    if not os.path.exists(os.path.join(run_folder, SUCCESS)):
        raise FileNotFoundError(f"{run_folder}: no {SUCCESS}; the run is incomplete or was never published")
    with open(os.path.join(run_folder, MANIFEST), encoding="utf-8") as handle:
        return json.load(handle)


def published_dates(root: str) -> list[dt.date]:
    """The as-of dates of the runs published under ``root`` (those with ``_SUCCESS``), oldest first."""
    runs = os.path.join(root, "runs")
    if not os.path.isdir(runs):
        return []
    dates = []
    for entry in os.listdir(runs):
        if entry.startswith("as_of_date=") and os.path.exists(os.path.join(runs, entry, SUCCESS)):
            dates.append(dt.date.fromisoformat(entry.split("=", 1)[1]))
    return sorted(dates)
