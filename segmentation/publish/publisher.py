"""The one interface a run is published through, whatever holds the runs (``Publisher``), and what its two
implementations share: files under an output root (``publishers.FilePublisher``) and catalog tables
(``publishers.CatalogPublisher``). The run context calls it and never asks which one it has.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from segmentation.publish.manifest import Attempt, Manifest
from segmentation.publish.storage import Storage

STALE_SECONDS = 24 * 3600  # a work folder, attempt or helper table older than this was left by a killed job
WRITE_PARALLELISM = 4  # tables written, copied or dropped at once (each is a few small Spark jobs)
MODEL = "model"  # the fitted model's folder in a run's files (written by Spark, also with catalog tables)
REPORT_TABLE = "report"  # with catalog tables: the report's Markdown and HTML, one row each


@dataclass(frozen=True)
class TableOutput:
    """One DataFrame to write, and the columns it is partitioned by inside its table folder."""

    frame: DataFrame
    partition_by: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class StoredRun:
    """A committed run read back: its date and run id, where it is (a folder, or the ``runs`` table), its
    manifest, the folder of the model it was fitted with (its own) and its features table."""

    as_of: dt.date
    run_id: str
    where: str
    manifest: Manifest
    model_folder: str | None
    features: DataFrame


@dataclass(frozen=True)
class ReportFiles:
    """A rendered report: ``report.html`` and ``report.md`` as text, and the charts (name -> PNG bytes)."""

    html: str
    markdown: str
    charts: Mapping[str, bytes]


class Publisher(Protocol):
    """Publishes one run at one commit point, and reads the runs committed before it.

    The life of a run: ``start_work`` (a work area), ``work_copy`` any number of times, ``stage`` its tables and model
    (into an attempt no reader sees), ``stage_report``, then ``publish`` its manifest (the commit point) or
    ``discard`` the attempt after a failure; ``end_work`` always, which removes the work area.
    """

    @property
    def storage(self) -> Storage:
        """The output root's storage: the model, and where this process reaches it, the report files."""
        ...

    @property
    def location(self) -> str:
        """Where the runs are, as messages name it: the output root, or the database of the tables."""
        ...

    def start_work(self) -> None:
        """Make the work area (a folder under the root, or work tables in the catalog)."""
        ...

    def end_work(self) -> None:
        """Remove the work area (also after a failure)."""
        ...

    def work_copy(self, frame: DataFrame, name: str) -> DataFrame:
        """``frame`` written once to the work area and read back from there."""
        ...

    def begin(self, as_of: dt.date) -> Attempt:
        """Start the attempt of ``as_of`` (once; later calls return the same one)."""
        ...

    def stage(self, as_of: dt.date, tables: Mapping[str, TableOutput], model: PipelineModel | None = None) -> None:
        """Write ``tables`` (and ``model``) into this run's attempt, begun on the first call."""
        ...

    def stage_report(self, report: ReportFiles) -> None:
        """Write the rendered report into the attempt (files, and the ``report`` table with catalog tables)."""
        ...

    def publish(self, manifest: Manifest) -> str:
        """Commit the staged attempt with ``manifest``; where the run's files are."""
        ...

    def report_location(self) -> str | None:
        """Where a reader opens the staged report: its ``report.html``, or the ``report`` table (None: no report)."""
        ...

    def discard(self) -> None:
        """Remove what this attempt wrote; published runs are never touched."""
        ...

    def committed_runs(self, run_id: str | None = None) -> list[tuple[dt.date, str]]:
        """(as-of date, run id) of every committed run (of ``run_id`` if given), oldest first."""
        ...

    def manifests(self, run_id: str) -> list[Manifest]:
        """The manifest of every committed run of ``run_id``."""
        ...

    def manifest(self, as_of: dt.date, run_id: str) -> Manifest:
        """The manifest of the committed run of ``as_of`` and ``run_id``; ``InputError`` if there is none."""
        ...

    def read_run(self, as_of: dt.date, run_id: str) -> StoredRun:
        """The committed run of ``as_of`` and ``run_id``; ``InputError`` naming where it was looked for."""
        ...

    def promote(self, as_of: dt.date, run_id: str) -> str:
        """Make the run of ``as_of`` and ``run_id`` that the drift checks held the current one; where it is.
        ``InputError`` if there is no such run or it is not held."""
        ...
