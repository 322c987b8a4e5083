"""Publishing a run as files under an output root, on any file system (through ``storage``), at one commit point.

Layout under the output root::

    latest                                        one line: runs/as_of_date=<D>/run_id=<R> of the newest run
    runs/as_of_date=<D>/run_id=<R>/attempt=<A>/   one attempt's files: one folder per table, model/, the report,
                                                  manifest.json and _SUCCESS; written in place, never moved
    runs/as_of_date=<D>/run_id=<R>/_commits/<N>.json
                                                  the commit point: names the attempt that is the published run
    _work/<id>/                                   a running job's intermediate files (removed when it ends)

An attempt writes every table, the model, the report, ``manifest.json`` and ``_SUCCESS`` into its own folder.
Then it *commits*: it creates the next numbered commit file of its date and run id, ``_commits/<N>.json``,
only if no other file has that name (``storage.create_new``). That single file is the moment the run becomes
visible. Readers resolve a date and run id only through its highest commit, so they never see a half-written
attempt, whatever the file system: no folder is renamed (object stores have no atomic rename), a failed or
killed attempt is never committed, and the runs already published stay as they are. A re-run of the same date
and run id commits the next number and so replaces that run whole; the attempts it replaced are removed after.

Two jobs publishing the same date and run id at the same moment: each takes as its number one more than the
highest commit it saw when it began, so the first to commit wins whole and the other finds its number taken,
removes its own files and fails saying which run won. ``latest`` is rewritten after the commit; it is a
pointer for people and tools (readers fall back to the newest published run that is not held when it is missing).
A run held by the drift checks (``drift.action: hold``) is committed like any other but leaves ``latest`` where it
was; ``promote`` records its promotion in ``_promoted.json`` and then moves ``latest``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from segmentation.errors import InputError, RunFailed
from segmentation.publish.checks import HELD
from segmentation.publish.manifest import Manifest, parse
from segmentation.publish.publisher import MODEL, STALE_SECONDS, WRITE_PARALLELISM, ReportFiles, TableOutput
from segmentation.publish.storage import Storage
from segmentation.runtime.threads import run_all
from segmentation.runtime.timing import utc_timestamp

log = logging.getLogger(__name__)

SUCCESS = "_SUCCESS"
MANIFEST = "manifest.json"
LATEST = "latest"
RUNS = "runs"
COMMITS = "_commits"
WORK = "_work"
OWNER = "_owner.json"
PROMOTED = "_promoted.json"  # in a held run's attempt folder: when it was promoted (segmentation promote)
CHARTS_FOLDER = "report"  # the report's charts as PNG files, beside report.html and report.md
COMMIT_NAME = re.compile(r"^(\d{8})\.json$")


@dataclass(frozen=True)
class Staging:
    """An attempt at publishing a run: where its files go, and the commit it must follow."""

    storage: Storage
    as_of: dt.date
    run_id: str
    attempt_id: str
    seen_commit: int  # the highest commit number of this date and run id when the attempt began (0: none)

    @property
    def root(self) -> str:
        return self.storage.root

    @property
    def run(self) -> str:
        return run_folder(self.root, self.as_of, self.run_id)

    @property
    def folder(self) -> str:
        return attempt_folder(self.root, self.as_of, self.run_id, attempt_id=self.attempt_id)


def run_folder(root: str, as_of: dt.date, run_id: str) -> str:
    """``<root>/runs/as_of_date=<YYYY-MM-DD>/run_id=<run_id>``: the folder of a run's attempts and commits."""
    return f"{root.rstrip('/')}/{RUNS}/as_of_date={as_of.isoformat()}/run_id={run_id}"


def attempt_folder(root: str, as_of: dt.date, run_id: str, *, attempt_id: str) -> str:
    """The folder one attempt writes its files into."""
    return f"{run_folder(root, as_of, run_id)}/attempt={attempt_id}"


def table_path(folder: str, table: str) -> str:
    """The folder of one table (or ``model``) inside an attempt folder."""
    return f"{folder.rstrip('/')}/{table}"


# ---------------------------------------------------------------- writing


def begin_work(store: Storage) -> str:
    """A fresh folder for one job's intermediate files, ``<root>/_work/<id>``, after removing any left by
    killed jobs (see ``_abandoned``). Spark writes and reads it, so it lives under the (shared) output root."""
    work_root = store.join(store.root, WORK)
    for entry in store.list(work_root):
        path = store.join(work_root, entry.name)
        if _abandoned(store, path, entry.modified):
            log.warning("removing work folder %s left by a killed job", path)
            store.delete(path)
    folder = store.join(work_root, uuid.uuid4().hex[:12])
    store.mkdirs(folder)
    store.write_json(store.join(folder, OWNER), _owner())
    return folder


def end_work(store: Storage, folder: str) -> None:
    """Remove a job's work folder (and ``_work`` itself once no other job is using it)."""
    store.delete(folder)
    store.remove_if_empty(store.join(store.root, WORK))


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
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "started_utc": utc_timestamp()}


def _abandoned(store: Storage, folder: str, modified: float) -> bool:
    """True for a folder of a job that is gone: its owner, a process of this host, is not running, or it
    started over a day ago (without an owner file: the folder is over a day old, where its age is known)."""
    try:
        owner = store.read_json(store.join(folder, OWNER))
    except (OSError, ValueError):
        return 0 < modified < time.time() - STALE_SECONDS
    if not isinstance(owner, dict):
        return False
    if float(owner.get("started", time.time())) < time.time() - STALE_SECONDS:
        return True
    if owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
        return False
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, run by another user
    return False


def begin(store: Storage, as_of: dt.date, run_id: str) -> Staging:
    """A new attempt at publishing ``as_of`` / ``run_id``: its folder, and the commit it must follow.

    Attempts of this date and run id left by killed jobs are removed first; a live job's attempt is left alone.
    """
    seen = _commits(store, run_folder(store.root, as_of, run_id))
    staging = Staging(store, as_of, run_id, uuid.uuid4().hex[:12], seen[0][0] if seen else 0)
    _remove_attempts(store, staging.run, keep=_committed_attempt(store, staging.run), only_abandoned=True)
    store.mkdirs(staging.folder)
    store.write_json(store.join(staging.folder, OWNER), _owner())
    return staging


def write_tables(staging: Staging, tables: Mapping[str, TableOutput], model: PipelineModel | None = None) -> None:
    """Write every table (and the model, if given) into the attempt's folder, several at once.

    Each write is a few small Spark jobs whose fixed costs dominate on small data; threads let Spark run them
    concurrently. Every write finishes (or fails) before this returns, so a failed attempt's folder is never
    removed while another write is still filling it; the first failure is then raised.
    """
    writes: dict[str, Callable[[], None]] = {
        name: functools.partial(_write_table, staging, name, table) for name, table in tables.items()
    }
    if model is not None:
        writes[MODEL] = functools.partial(model.write().save, table_path(staging.folder, MODEL))
    anchor = next(iter(tables.values())).frame if tables else None
    run_all(anchor, writes, workers=WRITE_PARALLELISM)


def _write_table(staging: Staging, name: str, table: TableOutput) -> None:
    target = table_path(staging.folder, name)
    writer = table.frame.write.mode("error")  # "errorifexists" is not accepted by Spark Connect
    if table.partition_by:
        writer = writer.partitionBy(*table.partition_by)
    writer.parquet(target)
    log.info("wrote table %s", name)


def write_report(store: Storage, folder: str, report: ReportFiles) -> dict[str, str]:
    """Write ``report.html``, ``report.md`` and ``report/<chart>.png`` into ``folder``; their paths by name."""
    written = {}
    store.mkdirs(store.join(folder, CHARTS_FOLDER))
    for name, png in report.charts.items():
        written[name] = store.join(folder, CHARTS_FOLDER, f"{name}.png")
        store.write_bytes(written[name], png)
    written["html"] = store.join(folder, "report.html")
    store.write_text(written["html"], report.html)
    written["markdown"] = store.join(folder, "report.md")
    store.write_text(written["markdown"], report.markdown)
    return written


def publish(staging: Staging, manifest: Manifest) -> str:
    """Write the manifest and ``_SUCCESS``, commit the attempt, then point ``latest`` at it; its folder.

    Raises ``RunFailed`` (after removing this attempt's files) when another job committed this date and run id
    since this attempt began.
    """
    store = staging.storage
    store.write_json(store.join(staging.folder, MANIFEST), manifest.to_json())
    store.write_bytes(store.join(staging.folder, SUCCESS), b"")
    store.delete(store.join(staging.folder, OWNER))
    number = staging.seen_commit + 1
    record = {"attempt_id": staging.attempt_id, "committed_utc": utc_timestamp(), "number": number}
    if not store.create_new(_commit_path(store, staging.run, number), _json_bytes(record)):
        discard(staging)
        winner = _read_commit(store, staging.run, number) or {}
        raise RunFailed(
            f"another job published as-of date {staging.as_of.isoformat()}, run id {staging.run_id} while this run "
            f"was running (attempt {winner.get('attempt_id', '?')}, committed at {winner.get('committed_utc', '?')}); "
            f"that run is published whole under {staging.run}, and this run was not published (its files are removed)"
        )
    if staging.seen_commit:
        log.info("replaced the earlier run of %s, run id %s", staging.as_of.isoformat(), staging.run_id)
    if manifest.held:
        log.warning("the run is held by the drift checks: latest stays where it was (segmentation promote moves it)")
        if _read_latest(store) == (staging.as_of, staging.run_id):  # a held re-run of the current run
            _latest_without(store, (staging.as_of, staging.run_id))
    else:
        _update_latest(store, staging.as_of, staging.run_id)
    _remove_attempts(store, staging.run, keep=staging.attempt_id, only_abandoned=False)
    return staging.folder


def discard(staging: Staging) -> None:
    """Remove an attempt that will not be committed (published runs are never touched), and the folders above
    it that it leaves empty."""
    store = staging.storage
    store.delete(staging.folder)
    for folder in (staging.run, staging.run.rsplit("/", 1)[0], store.join(store.root, RUNS)):
        store.remove_if_empty(folder)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, indent=2, default=str).encode("utf-8")


def _commit_path(store: Storage, run: str, number: int) -> str:
    return store.join(run, COMMITS, f"{number:08d}.json")


def _commits(store: Storage, run: str) -> list[tuple[int, str]]:
    """The commit numbers of a run folder and their file names, highest first."""
    found = [
        (int(m.group(1)), e.name) for e in store.list(store.join(run, COMMITS)) if (m := COMMIT_NAME.match(e.name))
    ]
    return sorted(found, reverse=True)


def _read_commit(store: Storage, run: str, number: int) -> dict[str, Any] | None:
    """A commit's record; None while it cannot be read (tried a few times: it may be being written this moment)."""
    for attempt in range(3):
        try:
            record = store.read_json(_commit_path(store, run, number))
            if isinstance(record, dict) and isinstance(record.get("attempt_id"), str):
                return record
        except (OSError, ValueError):
            pass
        if attempt < 2:
            time.sleep(0.2)
    return None


def _committed_attempt(store: Storage, run: str) -> str | None:
    """The attempt id the highest readable commit of a run folder names; None if it was never committed."""
    for number, _ in _commits(store, run):
        record = _read_commit(store, run, number)
        if record is not None:
            return str(record["attempt_id"])
        log.warning("commit %d of %s cannot be read; using the one before it", number, run)
    return None


def _remove_attempts(store: Storage, run: str, *, keep: str | None, only_abandoned: bool) -> None:
    """Remove the attempt folders of a run other than ``keep``: those replaced by a later commit (which have no
    owner file) and those of killed jobs; with ``only_abandoned``, only the latter. A live job's stays."""
    for entry in store.list(run):
        if not entry.name.startswith("attempt=") or entry.name == f"attempt={keep}":
            continue
        path = store.join(run, entry.name)
        if store.exists(store.join(path, OWNER)) or only_abandoned:  # being written, or killed while it was
            if _abandoned(store, path, entry.modified):
                log.warning("removing attempt folder %s left by a killed job", path)
                store.delete(path)
        else:  # committed once, and replaced by the commit just made
            log.info("removing the replaced attempt %s", path)
            store.delete(path)


def _update_latest(store: Storage, as_of: dt.date, run_id: str) -> None:
    """Point ``latest`` at this run unless it names a run with a later as-of date (a backfill stays behind)."""
    current = _read_latest(store)
    if current is not None and current[0] > as_of:
        log.info("latest stays at %s: it is newer than this run", current[0].isoformat())
        return
    store.write_text(store.join(store.root, LATEST), f"{RUNS}/as_of_date={as_of.isoformat()}/run_id={run_id}\n")


def _latest_without(store: Storage, held: tuple[dt.date, str]) -> None:
    """Point ``latest`` at the newest committed run that is neither ``held`` nor held by the drift checks (remove
    it when there is none): a held re-run replaced the run ``latest`` named."""
    for run in sorted(committed_runs(store), reverse=True):
        if run != held and not read_manifest(store, _committed(store, run_folder(store.root, *run))).held:
            store.write_text(
                store.join(store.root, LATEST), f"{RUNS}/as_of_date={run[0].isoformat()}/run_id={run[1]}\n"
            )
            return
    store.delete(store.join(store.root, LATEST))


# ---------------------------------------------------------------- reading


_RUN_FOLDER = re.compile(r"as_of_date=(\d{4}-\d{2}-\d{2})/run_id=([^/]+)$")
_ATTEMPT_FOLDER = re.compile(r"as_of_date=(\d{4}-\d{2}-\d{2})/run_id=([^/]+)/attempt=([0-9a-f]+)$")


def _read_latest(store: Storage) -> tuple[dt.date, str] | None:
    try:
        relative = store.read_text(store.join(store.root, LATEST)).strip()
    except (OSError, UnicodeDecodeError):
        return None
    match = _RUN_FOLDER.search(relative)
    return (dt.date.fromisoformat(match.group(1)), match.group(2)) if match else None


def committed_runs(store: Storage) -> list[tuple[dt.date, str]]:
    """(as-of date, run id) of every committed run under the root, oldest first."""
    found = []
    runs = store.join(store.root, RUNS)
    for day in store.list(runs):
        if not (day.is_dir and day.name.startswith("as_of_date=")):
            continue
        for run in store.list(store.join(runs, day.name)):
            match = _RUN_FOLDER.search(f"{day.name}/{run.name}")
            if match and run.is_dir and _commits(store, store.join(runs, day.name, run.name)):
                found.append((dt.date.fromisoformat(match.group(1)), match.group(2)))
    return sorted(found)


def resolve_run(store: Storage, as_of: dt.date | None = None, run_id: str | None = None) -> str:
    """The committed attempt folder that ``store.root`` names: an attempt folder, a run folder, or an output root.

    Under a root: the run of ``as_of`` and ``run_id`` when either is given (the last run id in name order
    when only the date is), else the run ``latest`` names (the newest published run without it). Raises
    InputError when there is no such committed run.
    """
    path = store.root.rstrip("/")
    if match := _ATTEMPT_FOLDER.search(path):
        run = path.rsplit("/", 1)[0]
        if _committed_attempt(store, run) != match.group(3):
            raise InputError(f"{path}: this attempt is not the committed run of its date and run id; use {run}")
        return path
    if _RUN_FOLDER.search(path):
        return _committed(store, path)
    if as_of is None and run_id is None:
        latest = _read_latest(store)
        if latest is None:
            runs = committed_runs(store)
            if not runs:
                raise InputError(f"{path}: no published run here")
            current = [run for run in runs if not read_manifest(store, _committed(store, run_folder(path, *run))).held]
            latest = max(current or runs)
        return _committed(store, run_folder(path, *latest))
    candidates = [(d, r) for d, r in committed_runs(store) if (as_of is None or d == as_of) and run_id in (None, r)]
    if not candidates:
        wanted = ", ".join(
            part for part in (as_of and f"as-of date {as_of.isoformat()}", run_id and f"run id {run_id}") if part
        )
        raise InputError(f"{path}: no published run for {wanted}")
    return _committed(store, run_folder(path, *candidates[-1]))


def _committed(store: Storage, run: str) -> str:
    attempt = _committed_attempt(store, run)
    if attempt is None:
        raise InputError(f"{run}: no committed attempt, so this run is incomplete or was never published")
    return f"{run}/attempt={attempt}"


def read_manifest(store: Storage, folder: str) -> Manifest:
    """The manifest of a committed attempt folder (from ``resolve_run``), upgraded from an earlier version; a held
    run that was promoted since says when (``drift.promoted_utc``, from its ``_promoted.json``)."""
    try:
        raw = store.read_json(store.join(folder, MANIFEST))
    except (OSError, ValueError) as exc:
        raise InputError(f"{folder}: cannot read {MANIFEST} ({type(exc).__name__}); is it a published run?") from None
    manifest = parse(raw, folder)
    if manifest.drift is not None and manifest.drift.status == HELD and store.exists(store.join(folder, PROMOTED)):
        record = store.read_json(store.join(folder, PROMOTED))
        drift = manifest.drift.model_copy(update={"promoted_utc": str(record.get("promoted_utc", "?"))})
        manifest = manifest.model_copy(update={"drift": drift})
    return manifest


def promote(store: Storage, as_of: dt.date, run_id: str) -> str:
    """Make the held run of ``as_of`` and ``run_id`` current: record its promotion (``_promoted.json``, created
    once) and point ``latest`` at it unless a later run is there; its folder. InputError if it is not held."""
    folder = resolve_run(store, as_of, run_id)
    manifest = read_manifest(store, folder)
    if not manifest.held:
        state = "was promoted already" if manifest.drift and manifest.drift.promoted_utc else "is not held"
        raise InputError(f"{folder}: the run of {as_of.isoformat()}, run id {run_id} {state}; nothing to promote")
    store.create_new(store.join(folder, PROMOTED), _json_bytes({"promoted_utc": utc_timestamp()}))
    _update_latest(store, as_of, run_id)
    log.info("promoted %s", folder)
    return folder
