"""Publishing a run atomically: write everything into staging, then move the finished run into place.

Layout under the output root::

    latest                                    one line: the folder of the newest published run
    runs/as_of_date=<D>/run_id=<R>/           a published run: one folder per table, model/,
                                              manifest.json and _SUCCESS
    _staging/<D>__<R>__<attempt>/             runs being written (removed when they fail or publish)
    _work/<id>/                               a running job's intermediate files (removed when it ends)
    _trash/                                   replaced runs on their way out

A run writes every table and the model into its own staging folder, then the manifest, then
``_SUCCESS``. Only then does it move the staging folder to ``runs/as_of_date=<D>/run_id=<R>`` (one
directory rename; a run already there with the same date and run id is moved aside first and deleted
after), and last it rewrites ``latest``. So a reader that follows ``latest`` or looks for ``_SUCCESS``
never sees a half-written run, a failed or killed run never touches a published one, and a re-run of the
same date and run id replaces that run whole without touching other dates or run ids.

Python file I/O does the renames, so the root must be a local or mounted path (``/dbfs/``, ``/Volumes/``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from segmentation import model, privacy, validation
from segmentation.config import is_local_path, local_path
from segmentation.errors import ConfigError, InputError
from segmentation.session import executor_for
from segmentation.timing import utc_timestamp

log = logging.getLogger(__name__)

SUCCESS = "_SUCCESS"
MANIFEST = "manifest.json"
LATEST = "latest"
RUNS = "runs"
STAGING = "_staging"
WORK = "_work"
TRASH = "_trash"
MODEL = "model"
OWNER = "_owner.json"
STALE_STAGING_SECONDS = 24 * 3600
WRITE_PARALLELISM = 4  # tables written at once (each is a few small Spark jobs)


@dataclass(frozen=True)
class TableOutput:
    """One DataFrame to write, and the columns it is partitioned by inside its table folder."""

    frame: DataFrame
    partition_by: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class Staging:
    """A run being written: where it is staged and where it will be published."""

    root: str
    as_of: dt.date
    run_id: str
    attempt_id: str
    folder: str

    @property
    def target(self) -> str:
        return run_folder(self.root, self.as_of, self.run_id)


def root_path(path: str) -> str:
    """The output root, made absolute when it is a local path (so Python and Spark agree on it)."""
    if not is_local_path(path):
        raise ConfigError(
            f"output.path: {path!r} is not a local or mounted path; runs are published with file renames, "
            "so use a local, /dbfs/ or /Volumes/ path"
        )
    return str(Path(local_path(path)).resolve())


def run_folder(root: str, as_of: dt.date, run_id: str) -> str:
    """``<root>/runs/as_of_date=<YYYY-MM-DD>/run_id=<run_id>``: where a published run lives."""
    return os.path.join(root, RUNS, f"as_of_date={as_of.isoformat()}", f"run_id={run_id}")


def table_path(folder: str, table: str) -> str:
    """The folder of one table (or ``model``) inside a run folder."""
    return os.path.join(folder, table)


# ---------------------------------------------------------------- writing


def begin_work(root: str) -> str:
    """A fresh folder for one job's intermediate files, ``<root>/_work/<id>``, after removing any left by
    killed jobs: those of a process of this host that is gone, or untouched for a day.

    Spark writes and reads it, so it lives under the (shared) output root.
    """
    work_root = os.path.join(root, WORK)
    os.makedirs(work_root, exist_ok=True)
    for entry in os.listdir(work_root):
        path = os.path.join(work_root, entry)
        if _abandoned(path):
            log.warning("removing work folder %s left by a killed job", path)
            shutil.rmtree(path, ignore_errors=True)
    folder = os.path.join(work_root, uuid.uuid4().hex[:12])
    os.makedirs(folder)
    write_file(os.path.join(folder, OWNER), json.dumps(_owner()))
    return folder


def write_work_copy(frame: DataFrame, path: str) -> DataFrame:
    """``frame`` written once as Parquet at ``path`` (in a job's work folder) and read back from there.

    For frames that later steps read several times (a log's parsed lines): Parquet is read by column, so
    most of those passes read only a few columns, where Spark's cache reads every column of its blocks back;
    a copy on disk also stays as it is (a lost cache block would be computed again), and the plans that read
    it start from the copy, not from the whole parse (over Spark Connect a plan has a nesting limit).
    Written without dictionaries: most of these columns are near unique.
    """
    writer = frame.write.mode("error").option("parquet.enable.dictionary", "false")
    writer.parquet(path)  # mode "error", not "errorifexists": Spark Connect accepts only the former
    return frame.sparkSession.read.parquet(path)


def _owner() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started_utc": utc_timestamp()}


def _abandoned(folder: str) -> bool:
    """True for a work folder untouched for a day, or whose owner was a process of this host that is gone."""
    try:
        if time.time() - os.path.getmtime(folder) > STALE_STAGING_SECONDS:
            return True
        with open(os.path.join(folder, OWNER), encoding="utf-8") as handle:
            owner = json.load(handle)
    except (OSError, ValueError):
        return False  # being created or removed right now: not ours to judge
    if owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
        return False
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, run by another user
    return False


def end_work(folder: str) -> None:
    """Remove a job's work folder (and ``_work`` itself once no other job is using it)."""
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):  # another job's work folder is still in it
        os.rmdir(os.path.dirname(folder))


def begin(root: str, as_of: dt.date, run_id: str) -> Staging:
    """A fresh staging folder for this run, after removing stale staging and trash left by killed runs.

    Stale means: an earlier attempt at the same date and run id (only one attempt of a run should write at a
    time), or any staging folder untouched for a day.
    """
    attempt = uuid.uuid4().hex[:12]
    prefix = f"{as_of.isoformat()}__{run_id}__"
    staging_root = os.path.join(root, STAGING)
    os.makedirs(staging_root, exist_ok=True)
    now = time.time()
    for entry in os.listdir(staging_root):
        path = os.path.join(staging_root, entry)
        if entry.startswith(prefix) or now - os.path.getmtime(path) > STALE_STAGING_SECONDS:
            log.warning("removing stale staging folder %s left by an earlier attempt", path)
            shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(os.path.join(root, TRASH), ignore_errors=True)
    folder = os.path.join(staging_root, prefix + attempt)
    os.makedirs(folder)
    write_file(os.path.join(folder, OWNER), json.dumps(_owner()))
    return Staging(root=root, as_of=as_of, run_id=run_id, attempt_id=attempt, folder=folder)


def run_tables(
    segmented: DataFrame, profiles: DataFrame, validated: validation.Validated, *, key: bytes | None
) -> dict[str, TableOutput]:
    """The tables every run publishes: segments, features, profiles and quarantine (ids pseudonymised if keyed)."""
    segments = segmented.select("customer_id", model.SEGMENT, model.SEGMENT_NAME).repartition(model.SEGMENT)
    quarantine = validation.quarantined_lines(validated.lines, validated.text_columns)
    return {
        "segments": TableOutput(privacy.protect(segments, key), (model.SEGMENT,)),
        "features": TableOutput(privacy.protect(segmented.drop(model.CLUSTER), key)),
        "profiles": TableOutput(profiles.coalesce(1)),
        "quarantine": TableOutput(privacy.protect(quarantine, key), (validation.REASON,)),
    }


def write_tables(staging: Staging, tables: Mapping[str, TableOutput], model: PipelineModel | None = None) -> None:
    """Write every table (and the model, if given) into the staging folder, several at once.

    Each write is a few small Spark jobs whose fixed costs dominate on small data; threads let Spark run them
    concurrently. Every write finishes (or fails) before this returns, so a failed run's staging folder is
    never removed while another write is still filling it; the first failure is then raised.
    """
    writes: list[tuple[str, Callable[[], None]]] = [
        (name, functools.partial(_write_table, staging, name, table)) for name, table in tables.items()
    ]
    if model is not None:
        writes.append((MODEL, functools.partial(model.write().save, table_path(staging.folder, MODEL))))
    frames = [t.frame for t in tables.values()]
    with executor_for(frames[0] if frames else None, min(WRITE_PARALLELISM, len(writes))) as pool:
        futures = [pool.submit(write) for _, write in writes]
        wait(futures)
    for future in futures:
        future.result()


def _write_table(staging: Staging, name: str, table: TableOutput) -> None:
    target = table_path(staging.folder, name)
    writer = table.frame.write.mode("error")  # "errorifexists" is not accepted by Spark Connect
    if table.partition_by:
        writer = writer.partitionBy(*table.partition_by)
    writer.parquet(target)
    log.info("wrote table %s", name)


def publish(staging: Staging, manifest: Mapping[str, Any]) -> str:
    """Write the manifest and ``_SUCCESS``, move the run into place, then point ``latest`` at it.

    Returns the published run folder.
    """
    os.remove(os.path.join(staging.folder, OWNER))
    write_file(os.path.join(staging.folder, MANIFEST), json.dumps(manifest, indent=2, default=str))
    write_file(os.path.join(staging.folder, SUCCESS), "")
    target = staging.target
    os.makedirs(os.path.dirname(target), exist_ok=True)
    replaced = None
    if os.path.exists(target):
        replaced = os.path.join(staging.root, TRASH, staging.attempt_id)
        os.makedirs(os.path.dirname(replaced), exist_ok=True)
        os.rename(target, replaced)
    os.rename(staging.folder, target)
    if replaced:
        shutil.rmtree(replaced, ignore_errors=True)
        with contextlib.suppress(OSError):  # another run may be emptying its own replaced run
            os.rmdir(os.path.dirname(replaced))
        log.info("replaced the earlier run of %s, run id %s", staging.as_of.isoformat(), staging.run_id)
    _update_latest(staging.root, staging.as_of, staging.run_id)
    return target


def discard(staging: Staging) -> None:
    """Remove a failed attempt's staging folder (published runs are never touched)."""
    shutil.rmtree(staging.folder, ignore_errors=True)


def _update_latest(root: str, as_of: dt.date, run_id: str) -> None:
    """Point ``latest`` at this run unless it names a run with a later as-of date (a backfill stays behind)."""
    current = _read_latest(root)
    if current is not None and current[0] > as_of:
        log.info("latest stays at %s: it is newer than this run", current[0].isoformat())
        return
    relative = os.path.relpath(run_folder(root, as_of, run_id), root)
    write_file(os.path.join(root, LATEST), relative.replace(os.sep, "/") + "\n")


def write_file(path: str, data: str | bytes) -> None:
    """Write a small file whole (text as UTF-8): to a temporary name, flushed to disk, then renamed into place."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------- reading


_RUN_FOLDER = re.compile(r"as_of_date=(\d{4}-\d{2}-\d{2})/run_id=([^/]+)$")


def _read_latest(root: str) -> tuple[dt.date, str] | None:
    try:
        with open(os.path.join(root, LATEST), encoding="utf-8") as handle:
            relative = handle.read().strip()
    except FileNotFoundError:
        return None
    match = _RUN_FOLDER.search(relative)
    return (dt.date.fromisoformat(match.group(1)), match.group(2)) if match else None


def published_runs(root: str) -> list[tuple[dt.date, str]]:
    """(as-of date, run id) of every published run (with ``_SUCCESS``) under ``root``, oldest first."""
    runs = Path(root, RUNS)
    found = []
    for success in runs.glob(f"as_of_date=*/run_id=*/{SUCCESS}"):
        match = _RUN_FOLDER.search(success.parent.as_posix())
        if match:
            found.append((dt.date.fromisoformat(match.group(1)), match.group(2)))
    return sorted(found)


def resolve_run(path: str, as_of: dt.date | None = None, run_id: str | None = None) -> str:
    """The published run folder that ``path`` names: a run folder itself, or an output root.

    Under a root: the run of ``as_of`` and ``run_id`` when either is given (the last run id in name order
    when only the date is), else the run ``latest`` names. Raises InputError when that run is missing
    or has no ``_SUCCESS``.
    """
    path = root_path(path)
    if os.path.exists(os.path.join(path, MANIFEST)) or _RUN_FOLDER.search(Path(path).as_posix()):
        return _check_published(path)
    if as_of is None and run_id is None:
        latest = _read_latest(path)
        if latest is None:
            raise InputError(f"{path}: no published run here (no '{LATEST}' file naming one)")
        return _check_published(run_folder(path, *latest))
    candidates = [(d, r) for d, r in published_runs(path) if (as_of is None or d == as_of) and run_id in (None, r)]
    if not candidates:
        wanted = ", ".join(
            part for part in (as_of and f"as-of date {as_of.isoformat()}", run_id and f"run id {run_id}") if part
        )
        raise InputError(f"{path}: no published run (with {SUCCESS}) for {wanted}")
    return run_folder(path, *candidates[-1])


def _check_published(folder: str) -> str:
    if not os.path.exists(os.path.join(folder, SUCCESS)):
        raise InputError(
            f"{folder}: no {SUCCESS}, so this run is incomplete or was never published; use a published run"
        )
    return folder


def read_manifest(folder: str) -> dict[str, Any]:
    """The manifest of a published run folder; refuses a run without ``_SUCCESS`` or without a readable manifest."""
    _check_published(folder)
    try:
        with open(os.path.join(folder, MANIFEST), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise InputError(f"{folder}: cannot read {MANIFEST} ({type(exc).__name__}); is it a published run?") from None
