"""The skeleton every run shares (``segmentation run`` and ``segmentation score``): ``JobRun``.

Inside ``with JobRun(spark, cfg) as run:`` a job is its list of stages. The skeleton owns what a stage list
should not have to repeat:

- the job's SQL settings on the session for the run's duration, the session's own values restored after;
- the output root's storage, resolved as Spark resolves it (``storage.for_root``), refused before any work when
  this process cannot reach it;
- a work folder for intermediate copies, removed at the end;
- frames kept for the run (``keep``): persisted, or with ``spark.persist: false`` copied to the work folder;
- the attempt's folder (``stage_outputs``), removed if the run fails before ``publish`` commits it;
- stage timing, and the error a failure becomes: this project's errors as they are, a Spark or I/O failure
  as ``RunFailed`` naming its stage, anything else (a bug) as it is. Nothing is published unless every stage
  succeeds, and every published run stays as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from pyspark import StorageLevel
from pyspark.errors import PySparkException
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession

from segmentation import catalog, outputs, session, sources, storage, validation
from segmentation.config import JobConfig
from segmentation.errors import RunFailed, SegmentationError, summary
from segmentation.timing import StageTimer, today_in
from segmentation.validation import LineCounts, Validated

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Published:
    """What a published run holds, for the command line's summary and for callers."""

    as_of: dt.date
    output_root: str
    run_folder: str
    counts: LineCounts
    customers: int
    segment_sizes: dict[int, int]
    segment_names: dict[int, str]
    timings: dict[str, float] = field(default_factory=dict)


class JobRun:
    """One run's work folder, persisted frames, staging, session settings and stage timing (see the module)."""

    def __init__(self, spark: SparkSession, cfg: JobConfig) -> None:
        assert cfg.output.path is not None
        self.spark, self.cfg = spark, cfg
        self.storage = storage.for_root(spark, cfg.output.path)
        if not self.storage.reachable and not cfg.output.catalog.enabled:
            self.storage.exists(self.storage.root)  # raises the ConfigError naming the root, before any work
        self.root = self.storage.root
        self.timer = StageTimer()
        self.catalog = cfg.output.catalog if cfg.output.catalog.enabled else None
        self.staging: outputs.Staging | None = None
        self.catalog_staging: catalog.CatalogStaging | None = None
        self._work: str | None = None
        self._work_tables: str | None = None
        self._tables_committed = False  # catalog tables published: the model they name must stay
        self._kept: list[DataFrame] = []
        self._copies = 0
        self._exit = contextlib.ExitStack()

    def __enter__(self) -> JobRun:
        with contextlib.ExitStack() as setup:  # a failure here undoes what was set up, then is mapped as in a stage
            try:
                setup.enter_context(session.job_settings(self.spark))
                if self.storage.reachable:
                    self._work = outputs.begin_work(self.storage)
                else:  # catalog tables over a Connect client that cannot reach the root: work in the catalog
                    self._work_tables = uuid.uuid4().hex[:12]
            except Exception as exc:
                failed = run_failure(exc, None, self.root)
                if failed is not exc:
                    raise failed from exc
                raise
            self._exit = setup.pop_all()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            if exc is not None:
                self._discard()
        finally:
            for frame in self._kept:
                frame.unpersist()
            if self._work is not None:
                outputs.end_work(self.storage, self._work)
            if self._work_tables is not None and self.catalog is not None:
                catalog.drop_work_tables(self.spark, self.catalog, self._work_tables)
            self._exit.close()
        if exc is not None:
            failed = run_failure(exc, self.timer.current, self.root)
            if failed is not exc:
                raise failed from exc

    def read_validate(self) -> Validated:
        """Stage ``read_validate``: read the input, write its lines to the work copy once, validate them there."""
        with self.stage("read_validate"):
            raw = sources.read_raw(self.spark, self.cfg.input)
            validation.check_timestamp_sample(raw, self.cfg.input)
            lines = self.work_copy(validation.lines_for_copy(raw, self.cfg.input), "lines")
            return validation.validate(lines, self.cfg, today=today_in(self.cfg.input.time_zone), keep=self.keep)

    def stage(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Time the body as stage ``name`` (logged when it starts and ends; in the manifest's timings)."""
        return self.timer.stage(name)

    def keep(self, frame: DataFrame) -> DataFrame:
        """``frame`` persisted (memory, then disk) until the run ends; with ``spark.persist: false`` (serverless
        compute allows no cache) written to the work folder once and read back from there instead."""
        if not self.cfg.spark.persist:
            self._copies += 1
            return self.work_copy(frame, f"kept_{self._copies}")
        kept = frame.persist(StorageLevel.MEMORY_AND_DISK)
        self._kept.append(kept)
        return kept

    def work_copy(self, frame: DataFrame, name: str) -> DataFrame:
        """``frame`` written once to the run's work folder as Parquet and read back from there (to a work table
        in the catalog when the root cannot be reached from here)."""
        if self._work_tables is not None and self.catalog is not None:
            return catalog.write_work_table(self.spark, self.catalog, frame, work_id=self._work_tables, name=name)
        assert self._work is not None, "work_copy outside 'with JobRun(...)'"
        return outputs.write_work_copy(frame, self.storage.join(self._work, name))

    def stage_outputs(
        self, as_of: dt.date, tables: Mapping[str, outputs.TableOutput], model: PipelineModel | None = None
    ) -> outputs.Staging:
        """Write ``tables`` (and ``model``) for this run: into its attempt folder, made on the first call; with
        catalog tables, the tables into staging tables and the model (always files) into the attempt folder."""
        if self.staging is None:
            self.staging = self._begin(as_of)
        if self.catalog is None:
            outputs.write_tables(self.staging, tables, model)
            return self.staging
        if model is not None:
            outputs.write_tables(self.staging, {}, model)  # Spark writes it: the client need not see the root
        if self.catalog_staging is None:
            begun = catalog.begin(self.spark, self.catalog, as_of=as_of, run_id=self.cfg.output.run_id)
            # one attempt id for the run's tables, its model folder and its manifest
            self.catalog_staging = dataclasses.replace(begun, attempt_id=self.staging.attempt_id)
        catalog.stage(self.catalog_staging, {name: table.frame for name, table in tables.items()})
        return self.staging

    def _begin(self, as_of: dt.date) -> outputs.Staging:
        run_id = self.cfg.output.run_id
        if self.storage.reachable:
            return outputs.begin(self.storage, as_of, run_id)
        return outputs.Staging(self.storage, as_of, run_id, uuid.uuid4().hex[:12], seen_commit=0)

    def publish(self, manifest: dict[str, Any]) -> str:
        """Add the stage timings to ``manifest`` and publish the staged run: commit its files, or its catalog
        tables (then, where this process reaches the root, its files too); where it was published."""
        assert self.staging is not None, "publish before stage_outputs"
        manifest["timings_seconds"] = self.timer.as_dict()
        if self.catalog is None:
            return outputs.publish(self.staging, manifest)
        assert self.catalog_staging is not None
        model_path = outputs.table_path(self.staging.folder, outputs.MODEL) if "centroids" in manifest else None
        catalog.commit(self.catalog_staging, catalog.runs_row(manifest, model_path=model_path))
        self.catalog_staging, self._tables_committed = None, True  # committed: nothing to discard
        log.info(
            "published as-of %s, run id %s to the tables of %s",
            self.staging.as_of.isoformat(),
            self.staging.run_id,
            catalog.table_name(self.catalog, catalog.RUNS).rsplit(".", 1)[0],
        )
        if not self.storage.reachable:  # the model is there, written by Spark; nothing else is
            return self.staging.folder
        return outputs.publish(self.staging, manifest)  # the model, manifest and report files, for score and report

    def _discard(self) -> None:
        """Remove what a failed run wrote (published runs and tables are never touched)."""
        try:
            if self.catalog_staging is not None:
                catalog.discard(self.catalog_staging)
        finally:
            if self.staging is not None and self.storage.reachable and not self._tables_committed:
                outputs.discard(self.staging)


def run_failure(exc: BaseException, stage: str | None, root: str) -> BaseException:
    """The exception a failed run raises: ours as they are; a Spark, Py4J or I/O failure as ``RunFailed``.

    Anything else (a TypeError, a KeyError, an assertion) is a bug in this project and is raised as it is,
    with its traceback, never dressed up as a problem with the input.
    """
    spark_or_io = isinstance(exc, PySparkException | OSError) or _from_py4j(exc)
    if isinstance(exc, SegmentationError) or not spark_or_io:
        return exc
    return RunFailed(
        f"stage {stage or 'setup'} failed ({type(exc).__name__}: {summary(exc)}); nothing was published "
        f"and the runs already under {root} are unchanged"
    )


def _from_py4j(exc: BaseException) -> bool:
    """True for Py4J's errors (a JVM call that failed), recognised without importing Py4J: a Spark Connect
    client does not have it."""
    return any(cls.__module__.startswith("py4j.") for cls in type(exc).__mro__)
