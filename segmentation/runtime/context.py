"""The skeleton every run shares (``segmentation run`` and ``segmentation score``): ``RunContext``.

Inside ``with RunContext(spark, cfg) as run:`` a job is its list of stages. The context owns what a stage list
should not have to repeat:

- the job's SQL settings on the session for the run's duration, the session's own values restored after;
- the publisher the configuration asks for (``publish.publisher_for``: files or catalog tables), refused before
  any work when this process cannot reach the output root; its work area, removed at the end;
- frames kept for the run (``keep``): persisted, or with ``spark.persist: false`` copied to the work area;
- the run's attempt, discarded if the run fails before ``publish`` commits it;
- stage timing, and the error a failure becomes: this project's errors as they are, a Spark or I/O failure
  as ``RunFailed`` naming its stage, anything else (a bug) as it is. Nothing is published unless every stage
  succeeds, and every published run stays as it was;
- releasing the models a run dropped (``release_models``, ``releasing_models``), the one place that runs Python's
  garbage collector.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import logging
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import ParamSpec, TypeVar

from pyspark import StorageLevel
from pyspark.errors import PySparkException
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession

from segmentation.config import JobConfig
from segmentation.errors import RunFailed, SegmentationError, summary
from segmentation.input import diagnostics, sources, validate
from segmentation.input.quarantine import LineCounts
from segmentation.input.validate import Validated
from segmentation.publish import Manifest, Publisher, ReportFiles, TableOutput, publisher_for
from segmentation.publish.checks import HELD, DriftSection
from segmentation.publish.manifest import IncrementalSection
from segmentation.publish.publisher import Attempt
from segmentation.runtime import session
from segmentation.runtime.timing import StageTimer, today_in

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class RunSummary:
    """What a published run holds, for the command line's summary and for callers."""

    as_of: dt.date
    output_root: str
    run_folder: str
    counts: LineCounts
    customers: int
    segment_sizes: dict[int, int]
    segment_names: dict[int, str]
    timings: dict[str, float] = field(default_factory=dict)
    report: str | None = None  # where to open the run's report (``Publisher.report_location``); None: none
    incremental: IncrementalSection | None = None  # an incremental run's state: what it read, what it holds
    drift: DriftSection | None = None  # the drift measures against the baseline, and whether the run was held
    run_id: str = ""  # the run's run id (output.run_id)

    @property
    def held(self) -> bool:
        """Published, but not the current run: a measure was beyond its threshold with ``drift.action: hold``."""
        return self.drift is not None and self.drift.status == HELD


class RunContext:
    """One run's publisher and work area, persisted frames, session settings and stage timing (see the module)."""

    def __init__(self, spark: SparkSession, cfg: JobConfig, publisher: Publisher | None = None) -> None:
        self.spark, self.cfg = spark, cfg
        self.publisher = publisher if publisher is not None else publisher_for(spark, cfg)
        self.storage = self.publisher.storage
        self.root = self.publisher.location  # where messages say the published runs are
        self.timer = StageTimer()
        self.attempt: Attempt | None = None
        self._kept: list[DataFrame] = []
        self._copies = 0
        self._exit = contextlib.ExitStack()

    def __enter__(self) -> RunContext:
        with contextlib.ExitStack() as setup:  # a failure here undoes what was set up, then is mapped as in a stage
            try:
                setup.enter_context(session.job_settings(self.spark))
                self.publisher.start_work()
                setup.callback(self.publisher.end_work)
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
                self.publisher.discard()
        finally:
            for frame in self._kept:
                frame.unpersist()
            self._exit.close()  # the work area, then the session's own settings
        if exc is not None:
            failed = run_failure(exc, self.timer.current, self.root)
            if failed is not exc:
                raise failed from exc

    def read_validate(self) -> Validated:
        """Stage ``read_validate``: read the input, write its lines to the work copy once, validate them there."""
        with self.stage("read_validate"):
            raw = sources.read_raw(self.spark, self.cfg.input)
            diagnostics.check_timestamp_sample(raw, self.cfg.input)
            lines = self.work_copy(validate.lines_for_copy(raw, self.cfg.input), "lines")
            return validate.validate(lines, self.cfg, today=today_in(self.cfg.input.time_zone), keep=self.keep)

    def stage(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Time the body as stage ``name`` (logged when it starts and ends; in the manifest's timings)."""
        return self.timer.stage(name)

    def keep(self, frame: DataFrame) -> DataFrame:
        """``frame`` persisted (memory, then disk) until the run ends; with ``spark.persist: false`` (serverless
        compute allows no cache) written to the work area once and read back from there instead."""
        if not self.cfg.spark.persist:
            self._copies += 1
            return self.work_copy(frame, f"kept_{self._copies}")
        kept = frame.persist(StorageLevel.MEMORY_AND_DISK)
        self._kept.append(kept)
        return kept

    def work_copy(self, frame: DataFrame, name: str) -> DataFrame:
        """``frame`` written once to the run's work area and read back from there."""
        return self.publisher.work_copy(frame, name)

    def stage_outputs(
        self, as_of: dt.date, tables: Mapping[str, TableOutput], model: PipelineModel | None = None
    ) -> Attempt:
        """Write ``tables`` (and ``model``) into this run's attempt, begun on the first call; the attempt."""
        self.attempt = self.publisher.begin(as_of)
        self.publisher.stage(as_of, tables, model)
        return self.attempt

    def stage_report(self, report: ReportFiles) -> None:
        """Write the rendered report into this run's attempt."""
        self.publisher.stage_report(report)

    def publish(self, manifest: Manifest) -> str:
        """Publish the staged run with ``manifest`` and the stage timings; where its files are."""
        return self.publisher.publish(manifest.model_copy(update={"timings_seconds": self.timer.as_dict()}))

    @staticmethod
    def release_models() -> None:
        """Free the fitted models nothing refers to any more, now (``release_models``)."""
        release_models()


def release_models() -> None:
    """Free the fitted models nothing refers to any more, now, between Spark calls.

    Over Spark Connect a model's ``__del__`` asks the server to drop it, with a gRPC call. Models caught in a
    reference cycle are freed whenever Python's cyclic garbage collector happens to run, which can be in the
    middle of another gRPC call on the same thread (that nested release then waits forever: seen with pyspark
    4.3, a run hung in ``createDataFrame`` inside ``RemoteModelRef.release_ref``), or at the interpreter's exit,
    where the client can also wait forever. Collecting at safe points frees them while no call is in flight:
    after the sweep and the final fit (the run calls ``RunContext.release_models``) and once a job function has
    returned or failed, when its own frame no longer holds them (``releasing_models``). Cheap in classic Spark,
    where it frees nothing on the server. The one place this package runs the garbage collector.
    """
    gc.collect()


def releasing_models(job: Callable[P, R]) -> Callable[P, R]:
    """``job`` that releases the run's models (``release_models``) after it returns or fails, once its frame,
    which held them, is gone (after a failure its traceback's frames are cleared of their locals first)."""

    @functools.wraps(job)
    def released(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return job(*args, **kwargs)
        except BaseException as exc:
            traceback.clear_frames(exc.__traceback__)  # the failed job's frames held its models
            raise
        finally:
            release_models()

    return released


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
