"""The two publishers (``publisher.Publisher``): ``FilePublisher`` (tables, model, report and manifest under an
output root, committed by ``files``) and ``CatalogPublisher`` (tables in the catalog, committed by ``catalog``;
the model under the output root, and where this process reaches it the report and manifest files too), and
``publisher_for``, which picks the one a configuration asks for.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segmentation.config import CatalogOutputConfig, JobConfig
from segmentation.errors import InputError
from segmentation.publish import catalog, files
from segmentation.publish.catalog_names import AS_OF_DATE, RUN_ID, RUNS, partition_condition, table_name
from segmentation.publish.manifest import Manifest, parse
from segmentation.publish.publisher import MODEL, REPORT_TABLE, Publisher, ReportFiles, StoredRun, TableOutput
from segmentation.publish.storage import Storage, for_root
from segmentation.runtime.timing import utc_timestamp

log = logging.getLogger(__name__)


def publisher_for(spark: SparkSession, cfg: JobConfig) -> Publisher:
    """The publisher ``cfg.output`` asks for: catalog tables when ``output.catalog.database`` is set, else files.

    Raises the ConfigError naming the output root, before any work, when files are asked for and this process
    cannot reach the root (a Spark Connect client that does not see the server's disk).
    """
    assert cfg.output.path is not None
    store = for_root(spark, cfg.output.path)
    if cfg.output.catalog.enabled:
        return CatalogPublisher(spark, store, cfg.output.catalog, cfg.output.run_id)
    if not store.reachable:
        store.exists(store.root)  # raises the ConfigError naming the root
    return FilePublisher(spark, store, cfg.output.run_id)


class FilePublisher:
    """A run published as files under the output root, at one commit point (``files``)."""

    def __init__(self, spark: SparkSession, store: Storage, run_id: str) -> None:
        self.spark, self._storage, self.run_id = spark, store, run_id
        self.staging: files.Staging | None = None
        self._report: str | None = None
        self._work: str | None = None

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def location(self) -> str:
        return self._storage.root

    def start_work(self) -> None:
        self._work = files.begin_work(self._storage)

    def end_work(self) -> None:
        if self._work is not None:
            files.end_work(self._storage, self._work)
            self._work = None

    def work_copy(self, frame: DataFrame, name: str) -> DataFrame:
        assert self._work is not None, "work_copy before start_work"
        return files.write_work_copy(frame, self._storage.join(self._work, name))

    def begin(self, as_of: dt.date) -> files.Staging:
        """The attempt of ``as_of`` (begun on the first call)."""
        if self.staging is None:
            self.staging = files.begin(self._storage, as_of, self.run_id)
        return self.staging

    def stage(self, as_of: dt.date, tables: Mapping[str, TableOutput], model: PipelineModel | None = None) -> None:
        files.write_tables(self.begin(as_of), tables, model)

    def stage_report(self, report: ReportFiles) -> None:
        assert self.staging is not None, "stage_report before stage"
        self._report = files.write_report(self._storage, self.staging.folder, report)["html"]

    def report_location(self) -> str | None:
        return self._report

    def publish(self, manifest: Manifest) -> str:
        assert self.staging is not None, "publish before stage"
        return files.publish(self.staging, manifest)

    def discard(self) -> None:
        if self.staging is not None:
            files.discard(self.staging)

    def committed_runs(self, run_id: str | None = None) -> list[tuple[dt.date, str]]:
        return [(d, r) for d, r in files.committed_runs(self._storage) if run_id in (None, r)]

    def manifests(self, run_id: str) -> list[Manifest]:
        return [
            files.read_manifest(self._storage, files.resolve_run(self._storage, d, r))
            for d, r in self.committed_runs(run_id)
        ]

    def manifest(self, as_of: dt.date, run_id: str) -> Manifest:
        return files.read_manifest(self._storage, files.resolve_run(self._storage, as_of, run_id))

    def read_run(self, as_of: dt.date, run_id: str) -> StoredRun:
        folder = files.run_folder(self._storage.root, as_of, run_id)
        try:
            attempt = files.resolve_run(for_root(self.spark, folder))
        except InputError as exc:
            published = ", ".join(f"{d.isoformat()}/{r}" for d, r in self.committed_runs()) or "none"
            raise InputError(
                f"no committed run of as-of date {as_of.isoformat()}, run id {run_id} under {self._storage.root} "
                f"({exc}); published runs there: {published}"
            ) from None
        manifest = files.read_manifest(self._storage, attempt)
        features = self.spark.read.parquet(files.table_path(attempt, "features"))
        return StoredRun(as_of, run_id, attempt, manifest, files.table_path(attempt, MODEL), features)

    def promote(self, as_of: dt.date, run_id: str) -> str:
        return files.promote(self._storage, as_of, run_id)


class CatalogPublisher:
    """A run published as catalog tables (``catalog``): the tables are staged and committed in the catalog; the
    model (always files, written by Spark) goes into an attempt folder under the output root, and where this
    process reaches the root, the manifest and report files are committed there too, after the tables."""

    def __init__(self, spark: SparkSession, store: Storage, settings: CatalogOutputConfig, run_id: str) -> None:
        self.spark, self._storage, self.settings, self.run_id = spark, store, settings, run_id
        self.file_publisher = FilePublisher(spark, store, run_id) if store.reachable else None
        self.staging: files.Staging | None = None
        self.table_staging: catalog.CatalogStaging | None = None
        self._work_tables: str | None = None
        self._committed = False  # the tables are published: the model they name must stay
        self._report_staged = False

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def location(self) -> str:
        return table_name(self.settings, RUNS).rsplit(".", 1)[0]

    def start_work(self) -> None:
        if self.file_publisher is not None:
            self.file_publisher.start_work()
        else:  # a Connect client that cannot reach the root: work in the catalog
            self._work_tables = uuid.uuid4().hex[:12]

    def end_work(self) -> None:
        if self.file_publisher is not None:
            self.file_publisher.end_work()
        if self._work_tables is not None:
            catalog.drop_work_tables(self.spark, self.settings, self._work_tables)
            self._work_tables = None

    def work_copy(self, frame: DataFrame, name: str) -> DataFrame:
        if self.file_publisher is not None:
            return self.file_publisher.work_copy(frame, name)
        assert self._work_tables is not None, "work_copy before start_work"
        return catalog.write_work_table(self.spark, self.settings, frame, work_id=self._work_tables, name=name)

    def begin(self, as_of: dt.date) -> files.Staging:
        """The attempt of ``as_of`` (begun on the first call): its files folder and, with the same attempt id, the
        staging of its tables."""
        if self.staging is None:
            if self.file_publisher is not None:
                self.staging = self.file_publisher.begin(as_of)
            else:  # nothing to list or clean where this process cannot look: Spark writes the model there
                self.staging = files.Staging(self._storage, as_of, self.run_id, uuid.uuid4().hex[:12], seen_commit=0)
            begun = catalog.begin(self.spark, self.settings, as_of=as_of, run_id=self.run_id)
            # one attempt id for the run's tables, its model folder and its manifest
            self.table_staging = dataclasses.replace(begun, attempt_id=self.staging.attempt_id)
        return self.staging

    def stage(self, as_of: dt.date, tables: Mapping[str, TableOutput], model: PipelineModel | None = None) -> None:
        staging = self.begin(as_of)
        if model is not None:
            files.write_tables(staging, {}, model)  # Spark writes it: the client need not see the root
        assert self.table_staging is not None
        catalog.stage(self.table_staging, {name: table.frame for name, table in tables.items()})

    def stage_report(self, report: ReportFiles) -> None:
        assert self.staging is not None, "stage_report before stage"
        if self.file_publisher is not None:
            self.file_publisher.stage_report(report)
        documents = self.spark.createDataFrame(
            [("markdown", report.markdown), ("html", report.html)], "format string, content string"
        )
        self.stage(self.staging.as_of, {REPORT_TABLE: TableOutput(documents)})
        self._report_staged = True

    def report_location(self) -> str | None:
        if self.file_publisher is not None and self.file_publisher.report_location():
            return self.file_publisher.report_location()
        return f"table {table_name(self.settings, REPORT_TABLE)}" if self._report_staged else None

    def publish(self, manifest: Manifest) -> str:
        assert self.staging is not None and self.table_staging is not None, "publish before stage"
        model_path = files.table_path(self.staging.folder, MODEL) if manifest.centroids is not None else None
        catalog.commit(self.table_staging, catalog.runs_row(manifest, model_path=model_path))
        self.table_staging, self._committed = None, True  # committed: nothing to discard
        log.info(
            "published as-of %s, run id %s to the tables of %s",
            self.staging.as_of.isoformat(),
            self.staging.run_id,
            self.location,
        )
        if self.file_publisher is None:  # the model is there, written by Spark; nothing else is
            return self.staging.folder
        return self.file_publisher.publish(manifest)  # the model, manifest and report files, for score and report

    def discard(self) -> None:
        try:
            if self.table_staging is not None:
                catalog.discard(self.table_staging)
        finally:
            if self.file_publisher is not None and not self._committed:
                self.file_publisher.discard()

    def committed_runs(self, run_id: str | None = None) -> list[tuple[dt.date, str]]:
        name = table_name(self.settings, RUNS)
        if not self.spark.catalog.tableExists(name):
            return []
        runs = self.spark.table(name)
        if run_id is not None:
            runs = runs.where(F.col(RUN_ID) == F.lit(run_id))
        return sorted((r[AS_OF_DATE], r[RUN_ID]) for r in runs.select(AS_OF_DATE, RUN_ID).collect())

    def manifests(self, run_id: str) -> list[Manifest]:
        runs = table_name(self.settings, RUNS)
        if not self.spark.catalog.tableExists(runs):
            return []
        rows = self.spark.table(runs).where(F.col(RUN_ID) == run_id).select(AS_OF_DATE, "manifest_json").collect()
        return [parse(json.loads(r["manifest_json"]), f"{runs} (as-of {r[AS_OF_DATE]}, run id {run_id})") for r in rows]

    def manifest(self, as_of: dt.date, run_id: str) -> Manifest:
        return self._manifest_and_row(as_of, run_id)[0]

    def _manifest_and_row(self, as_of: dt.date, run_id: str) -> tuple[Manifest, dict[str, Any]]:
        runs = table_name(self.settings, RUNS)
        row = catalog.run_row(self.spark, self.settings, as_of=as_of, run_id=run_id)
        if row is None:
            raise InputError(f"no committed run of as-of date {as_of.isoformat()}, run id {run_id} in {runs}")
        return parse(json.loads(row["manifest_json"]), f"{runs} (as-of {as_of.isoformat()}, run id {run_id})"), row

    def read_run(self, as_of: dt.date, run_id: str) -> StoredRun:
        runs = table_name(self.settings, RUNS)
        manifest, row = self._manifest_and_row(as_of, run_id)
        features = self.spark.table(table_name(self.settings, "features")).where(partition_condition(as_of, run_id))
        features = features.drop(AS_OF_DATE, RUN_ID)
        return StoredRun(as_of, run_id, runs, manifest, row["model_path"], features)

    def promote(self, as_of: dt.date, run_id: str) -> str:
        manifest, row = self._manifest_and_row(as_of, run_id)
        if not manifest.held:
            raise InputError(
                f"the run of {as_of.isoformat()}, run id {run_id} in {self.location} is not held; nothing to promote"
            )
        assert manifest.drift is not None
        promoted = manifest.model_copy(
            update={"drift": manifest.drift.model_copy(update={"promoted_utc": utc_timestamp()})}
        )
        catalog.promote(self.spark, self.settings, manifest=promoted, row=row)
        if self.file_publisher is not None and (as_of, run_id) in self.file_publisher.committed_runs(run_id):
            files.promote(self._storage, as_of, run_id)  # the run's files (manifest, report) and their latest
        return table_name(self.settings, RUNS)


def read_run_table(spark: SparkSession, cfg: JobConfig, *, as_of: dt.date, run_folder: str, table: str) -> DataFrame:
    """One table of a published run of ``cfg``'s run id: its partition of the catalog table (catalog tables), or
    the Parquet in its folder (``run_folder``, a committed attempt folder)."""
    if cfg.output.catalog.enabled:
        frame = spark.table(table_name(cfg.output.catalog, table))
        return frame.where(partition_condition(as_of, cfg.output.run_id)).drop(AS_OF_DATE, RUN_ID)
    return spark.read.parquet(files.table_path(run_folder, table))
