"""The SparkSession: reuse the one the platform gives, or build one from the job's settings (local mode's
defaults on a laptop), and the SQL settings a job needs for its duration.

Nothing here changes the process: no environment variable is set. A local session whose Python workers must run
this interpreter (a virtual environment) needs ``PYSPARK_PYTHON`` set by whoever starts the process
(``local_worker_environment`` says what); the ``segmentation`` command sets it for its own process. Likewise where
Spark's JVM logging goes in a local session (``terminal_logging``: a log file, and the terminal only with ``-v``)."""

from __future__ import annotations

import getpass
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from importlib import resources
from pathlib import PurePath

from pyspark.sql import SparkSession

from segmentation.config import SparkConfig
from segmentation.runtime import class_data

log = logging.getLogger(__name__)

# Defaults for a session this job creates; the config's spark.conf wins over them.
SESSION_DEFAULTS: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
    "spark.log.level": "WARN",
    "spark.sql.adaptive.enabled": "true",
}
LOCAL_MASTER = "local[*]"
# What Spark runs when a process starts its own JVM without a master: local mode on this machine's cores.
# Extra defaults for such a local session (an explicit local master, or none at all outside spark-submit):
# - a few shuffle partitions instead of 200: a laptop has a few cores, and 200 tiny tasks per shuffle cost
#   more than the work on them (Online Retail: profiles 9.4 s against 1.3 s, write 13.8 s against 3.5 s);
# - no web UI, whose listeners cost time on every task;
# - the throughput collector: in one local JVM on few cores, G1's concurrent threads compete with the job's
#   (Online Retail: 72 s against 87 s end to end, alternated; 20M lines: within noise);
# - Spark's JVM logging from segmentation/log4j2.properties: warnings without the start-up notices, to a log file
#   and to the terminal (both where the environment says: ``terminal_logging``).
# The driver memory is set too (``local_driver_memory``): in local mode the driver's heap is all of Spark's.
LOCAL_DEFAULTS: dict[str, str] = {
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.enabled": "false",
}
LOCAL_DRIVER_MEMORY_GB = 4
LOG4J_FILE = "log4j2.properties"
LOG4J_PROPERTY = "log4j2.configurationFile"
# read by log4j2.properties: the file that gets Spark's warnings and errors with their stack traces, and the
# level from which they also go to the terminal (``off``: none; unset: ``warn``, as a notebook or a test expects)
SPARK_LOG_VARIABLE = "SEGMENTATION_SPARK_LOG"
SPARK_CONSOLE_VARIABLE = "SEGMENTATION_SPARK_CONSOLE"
SPARK_LOGS_FOLDER = "segmentation-logs"
# the JVM options of a local session: the throughput collector, and Spark's Java BLAS and LAPACK without first
# trying native libraries (which print "JNI_OnLoad: dlopen(libblas.so.3) failed" where there are none)
LOCAL_JAVA_OPTIONS = (
    "-XX:+UseParallelGC",
    "-Ddev.ludovic.netlib.blas.allowNative=false",
    "-Ddev.ludovic.netlib.lapack.allowNative=false",
)
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


@contextmanager
def spark_session(settings: SparkConfig, remote: str | None = None) -> Iterator[SparkSession]:
    """The session for one command: the active one (Databricks, notebooks, tests), left running; else one built
    from ``settings`` (``build_session``) and stopped when the body ends.

    Stopping matters over Spark Connect too: models still referenced would otherwise ask the server to drop them
    while the interpreter shuts down, and the client can wait for that forever.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        log.info("using the active Spark session")
        yield active
        return
    spark = build_session(settings, remote)
    try:
        yield spark
    finally:
        spark.stop()


def build_session(settings: SparkConfig, remote: str | None = None) -> SparkSession:
    """A new session from ``settings``; the caller owns it (and stops it).

    ``remote`` (or the SPARK_REMOTE environment variable) asks for a Spark Connect session. Without a master
    in the settings, a process that starts its own JVM (``segmentation run`` on a laptop) gets local mode with
    the local defaults; under spark-submit the launcher's master and settings stand.
    """
    builder = SparkSession.builder.appName(settings.app_name)
    remote = remote or os.environ.get("SPARK_REMOTE")
    if remote:
        builder = builder.remote(remote)
    else:
        master, conf = session_conf(settings, under_spark_submit="PYSPARK_GATEWAY_PORT" in os.environ)
        if master:
            builder = builder.config("spark.master", master)
        for key, value in conf.items():
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if remote:  # the server owns the session's static settings; the runtime SQL ones are ours to set
        for key, value in {"spark.sql.session.timeZone": "UTC", **dict(settings.conf)}.items():
            spark.conf.set(key, str(value))
        log.info("connected to Spark %s over Spark Connect", spark.version)  # the URL may hold a token
    else:
        log.info("started Spark %s (master %s)", spark.version, spark.conf.get("spark.master", "unknown"))
    return spark


def local_worker_environment(settings: SparkConfig, remote: str | None = None) -> dict[str, str]:
    """The environment a session built from ``settings`` needs for its Python workers to run this interpreter:
    ``PYSPARK_PYTHON`` for a local master (``local-cluster`` too), nothing for Spark Connect or a cluster.

    For the program that owns the process to set (the ``segmentation`` command does); notebooks and other
    callers set it themselves where their workers would otherwise start another Python.
    """
    if remote or os.environ.get("SPARK_REMOTE"):
        return {}
    master, _ = session_conf(settings, under_spark_submit="PYSPARK_GATEWAY_PORT" in os.environ)
    return {"PYSPARK_PYTHON": sys.executable} if master and master.startswith("local") else {}


def is_local(master: str | None) -> bool:
    """True for a local master (``local``, ``local[4]``, ``local[*]``, ``local-cluster[...]`` is not one)."""
    return master is not None and (master == "local" or master.startswith("local["))


def session_conf(settings: SparkConfig, *, under_spark_submit: bool) -> tuple[str | None, dict[str, str]]:
    """The master and the settings of a session this job creates (not over Spark Connect).

    ``settings.master`` if set; else local mode when this process starts its own JVM, and none (the launcher's)
    under spark-submit. A local master adds ``LOCAL_DEFAULTS``, the driver memory and the JVM options (with the
    quiet logging of ``log4j2.properties``, and the class-data archive of ``class_data`` once it has been made).
    The config's ``spark.conf`` wins over every default; one that sets ``spark.driver.extraJavaOptions`` replaces
    those options, and Spark's log level is then set to WARN instead.
    """
    master = settings.master or (None if under_spark_submit else LOCAL_MASTER)
    defaults = dict(SESSION_DEFAULTS)
    if is_local(master):
        defaults |= LOCAL_DEFAULTS
        defaults["spark.driver.memory"] = local_driver_memory(physical_memory())
        options = [*LOCAL_JAVA_OPTIONS, *class_data.sharing_options(), *log4j_options()]
        defaults["spark.driver.extraJavaOptions"] = " ".join(options)
    conf = {**defaults, **{key: str(value) for key, value in settings.conf.items()}}
    if LOG4J_PROPERTY in conf.get("spark.driver.extraJavaOptions", "") and "spark.log.level" not in settings.conf:
        del conf["spark.log.level"]  # the file sets it, without Spark's notice that it did
    return master, conf


def log4j_options() -> list[str]:
    """The JVM option that points log4j at ``log4j2.properties`` (as a file URI: no quoting, any path), or none
    when the package is not installed as files (a zip)."""
    found = resources.files("segmentation.runtime").joinpath(LOG4J_FILE)
    return [f"-D{LOG4J_PROPERTY}={found.as_uri()}"] if isinstance(found, PurePath) and found.is_file() else []


def terminal_logging(verbose: bool, now: datetime | None = None) -> dict[str, str]:
    """The environment a command line that owns its process sets before it starts a local session: Spark's
    warnings and errors, stack traces and all, go to a log file of this process's own and, only when
    ``verbose``, to the terminal as well (``SEGMENTATION_SPARK_CONSOLE`` ``warn``, else ``off``).

    The file is ``<temp folder>/segmentation-logs-<user>/spark-<local time>-<pid>.log`` (``now`` stands for the
    local time; the command line makes that folder readable by the user only: Spark's messages can quote input
    values), unless ``SEGMENTATION_SPARK_LOG`` is set already: the user's choice stands. log4j creates the file,
    and its folder, at its first line; ``spark_log_path`` says which file it is. A session under spark-submit or
    over Spark Connect keeps its cluster's logging and reads neither variable.
    """
    path = os.environ.get(SPARK_LOG_VARIABLE) or default_spark_log(now or datetime.now(), os.getpid())
    return {SPARK_LOG_VARIABLE: path, SPARK_CONSOLE_VARIABLE: "warn" if verbose else "off"}


def default_spark_log(now: datetime, pid: int) -> str:
    """The log file of process ``pid`` started at local time ``now``, in ``segmentation-logs-<user>`` of the temp
    folder (one per user: a folder another user made first would not be writable)."""
    name = f"spark-{now:%Y%m%d-%H%M%S}-{pid}.log"
    return os.sep.join((tempfile.gettempdir(), f"{SPARK_LOGS_FOLDER}-{_user()}", name))


def _user() -> str:
    """This process's user name (its uid where the platform has no name for it), safe in a file name."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def spark_log_path() -> str | None:
    """The file this process's environment names for Spark's log (``SEGMENTATION_SPARK_LOG``), or None. It exists
    only once a local session started with ``log4j2.properties`` has logged a warning or an error."""
    return os.environ.get(SPARK_LOG_VARIABLE) or None


def local_driver_memory(physical_bytes: int | None) -> str:
    """The driver memory of a local session: 4g, or half the machine's memory where that is less."""
    if physical_bytes is None:
        return f"{LOCAL_DRIVER_MEMORY_GB}g"
    half_mb = physical_bytes // 2 // 2**20
    return f"{LOCAL_DRIVER_MEMORY_GB}g" if half_mb >= LOCAL_DRIVER_MEMORY_GB * 1024 else f"{max(512, half_mb)}m"


def physical_memory() -> int | None:
    """This machine's memory in bytes, where the platform says (Linux, macOS), else None."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


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
        for key, was in saved.items():
            if was is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, was)
