"""Getting a SparkSession (reuse the one the platform gives, or build one from the job's settings), the SQL
settings a job needs for its duration, and thread pools that work over Spark Connect."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from pyspark.sql import SparkSession

from segmentation.config import SparkConfig

log = logging.getLogger(__name__)
T = TypeVar("T")

# Defaults for a session this job creates; the config's spark.conf wins over them.
SESSION_DEFAULTS: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
    "spark.log.level": "WARN",
    "spark.sql.adaptive.enabled": "true",
}
# Extra defaults for a local master: a few shuffle partitions instead of 200 (a laptop has a few cores, and
# 200 tiny tasks per shuffle cost more than the work on them).
LOCAL_DEFAULTS: dict[str, str] = {"spark.sql.shuffle.partitions": "8"}
# SQL settings a job needs while it runs, on whatever session it runs in (set by ``job_settings``):
# - a text timestamp that Spark's parser rejects is an invalid line to quarantine, not a job failure;
# - pandas writes nanosecond timestamps, which Spark reads as integers (nanoseconds since the epoch) only
#   with this setting; validation converts them.
# - timestamps are parsed and days counted in UTC on any session: input.time_zone says what local times mean.
JOB_SQL_SETTINGS: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.sql.legacy.parquet.nanosAsLong": "true",
}
_created: list[SparkSession] = []  # sessions get_spark built (and so may stop), never ones it was handed


def get_spark(settings: SparkConfig, remote: str | None = None) -> SparkSession:
    """The active session if there is one (Databricks, notebooks, tests), else a new one from settings.

    ``remote`` (or the SPARK_REMOTE environment variable) asks for a Spark Connect session.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        log.info("using the active Spark session")
        return active
    builder = SparkSession.builder.appName(settings.app_name)
    remote = remote or os.environ.get("SPARK_REMOTE")
    if remote:
        builder = builder.remote(remote)
    elif settings.master:
        builder = builder.config("spark.master", settings.master)
        if settings.master.startswith("local"):  # local workers run this interpreter, with this job's packages
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if not remote:
        local = bool(settings.master and settings.master.startswith("local"))
        defaults = {**SESSION_DEFAULTS, **(LOCAL_DEFAULTS if local else {})}
        for key, value in {**defaults, **dict(settings.conf)}.items():
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if remote:  # the server owns the session's static settings; the runtime SQL ones are ours to set
        for key, value in {"spark.sql.session.timeZone": "UTC", **dict(settings.conf)}.items():
            spark.conf.set(key, str(value))
        log.info("connected to Spark %s over Spark Connect", spark.version)  # the URL may hold a token
    else:
        log.info("started Spark %s", spark.version)
    _created.append(spark)
    return spark


@contextmanager
def job_settings(spark: SparkSession, settings: Mapping[str, str] = JOB_SQL_SETTINGS) -> Iterator[None]:
    """Set ``settings`` on ``spark`` for the body, then give the session its own values back, also after a failure.

    A notebook's later cells then see the session as it was: a key the session had set gets its value back, a
    key it had not set is unset again. Runtime settings belong to the session, so two jobs run at once from
    threads of one session share them: the first to end restores them under the other (run them one after
    the other, or in sessions of their own with ``spark.newSession()``).
    """
    saved = {key: spark.conf.get(key, None) for key in settings}
    try:
        for key, value in settings.items():
            spark.conf.set(key, value)
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def is_connect(frame_or_session: object) -> bool:
    """True for a Spark Connect DataFrame or session (without importing the optional Connect client)."""
    return type(frame_or_session).__module__.startswith("pyspark.sql.connect")


class InlineExecutor(Executor):
    """Runs every task at once in the calling thread."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def executor_for(frame: object, workers: int) -> Executor:
    """A pool of ``workers`` threads to run Spark jobs at once; over Spark Connect, the calling thread alone.

    Spark ML over Connect (pyspark 4.3) fails from worker threads: ``pyspark.ml.util`` asserts
    ``SparkSession.getActiveSession()``, which the Connect client keeps in a ``threading.local``, so a new
    thread has none. There everything runs in the thread that holds the session.
    """
    return InlineExecutor() if is_connect(frame) else ThreadPoolExecutor(max_workers=max(1, workers))


def release(spark: SparkSession) -> None:
    """Stop ``spark`` if ``get_spark`` created it; a session the platform or a notebook handed over stays up.

    Over Spark Connect this also matters at exit: models still referenced would otherwise ask the server to
    drop them while the interpreter shuts down, and the client can wait for that forever.
    """
    if any(spark is created for created in _created):
        _created.remove(spark)
        spark.stop()
