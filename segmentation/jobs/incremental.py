"""Incremental runs (``input.incremental``, ``--incremental``): read only what the state has not absorbed, add it
to the state, and answer every customer's features from the state.

The state is four tables a run publishes with its other tables, so it is committed at the run's own commit point
(files under the output root, or catalog tables): a failed or killed run leaves the previous runs and their states
as they were. A run's state is whole (its base's rows and its own): a re-run of a date, or a run published as
another date, never depends on a run that may be replaced.

- ``state_days``: one row per customer and day of absorbed clean lines (``features.state``);
- ``state_lines``: each absorbed valid line's day and 64-bit hash, to find an exact copy of it in a later
  delivery (a copy has its original's day, so a collision needs two lines of one day with one hash);
- ``state_counts``: lines per day and reason (``input.quarantine.day_counts``), which give a full run's counts at
  any as-of date and window;
- ``state_files``: each absorbed file's path, size, modified time and lines (empty for a table; its
  ``input.incremental_column`` value read up to is in the manifest).

The base is the newest committed run of this run id with a state (``--rebuild``: none). Two runs of one date and
run id at once: the first to commit wins and the other fails (the commit protocol). Before publishing, a run also
checks that no other run has published a state since it read its base; that check and the commit are two steps,
so runs of other dates that commit at the same moment can both publish. Each state lists the files it absorbed,
so neither is wrong; the docs ask for one run per output root and run id at a time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segmentation.config import JobConfig
from segmentation.errors import InputError, RunFailed
from segmentation.features.state import day_state, state_feature_table
from segmentation.features.table import FeatureTable, feature_table
from segmentation.input import diagnostics, increments, sources, validate
from segmentation.input.clean import clean_lines
from segmentation.input.quarantine import LineCounts, check_quarantine_share, counts_at, day_counts, input_key
from segmentation.input.reasons import DUPLICATE_LINE, LINE_HASH, REASON, TS
from segmentation.input.rules import Period
from segmentation.input.validate import NewLines, Validated
from segmentation.publish import Manifest, TableOutput, read_run_table
from segmentation.publish.manifest import IncrementalSection, RunRef
from segmentation.runtime.context import RunContext
from segmentation.runtime.timing import today_in

log = logging.getLogger(__name__)

STATE_DAYS, STATE_LINES, STATE_COUNTS, STATE_FILES = "state_days", "state_lines", "state_counts", "state_files"
STATE_TABLES = (STATE_DAYS, STATE_LINES, STATE_COUNTS, STATE_FILES)
LINES_PER_FILE = 4_000_000  # new lines per file of a delivery's state rows
NOT_INPUT_SETTINGS = ("incremental", "rebuild_state")  # input keys a state does not depend on
NO_LIMITS = {"max_quantity": None, "max_unit_price": None, "max_amount": None}  # input.limits before it was


@dataclass(frozen=True)
class BaseState:
    """A committed run's state: its manifest and its four tables."""

    manifest: Manifest
    tables: dict[str, DataFrame]

    @property
    def section(self) -> IncrementalSection:
        assert self.manifest.incremental is not None
        return self.manifest.incremental

    @property
    def name(self) -> str:
        return f"the run of {self.manifest.as_of_date}, run id {self.manifest.run_id}"


@dataclass(frozen=True)
class Increment:
    """An incremental run's input: its ``validated`` view (this run's new lines with its window's labels, the whole
    state's counts at its as-of date), the state after it (``days``, and ``tables`` to publish) and its section."""

    validated: Validated
    days: DataFrame
    tables: dict[str, TableOutput]
    section: IncrementalSection
    seen: str | None  # the attempt id of the newest state when this run read its base (None: there was none)


def read_input(job: RunContext) -> tuple[Validated, Increment | None]:
    """The run's validated input: all of it (``RunContext.read_validate``), or what is new (``read_increment``)."""
    if not job.cfg.input.incremental:
        return job.read_validate(), None
    increment = read_increment(job)
    return increment.validated, increment


def read_increment(job: RunContext) -> Increment:
    """Stage ``read_validate`` of an incremental run: the base state, the new input read and labeled, the state
    after this run, and the counts a full run over the same input would give."""
    cfg = job.cfg
    with job.stage("read_validate"):
        newest = newest_state(job)
        base = None if newest is None or cfg.input.rebuild_state else read_state(job, newest)
        if base is not None:
            check_same_input(base, cfg)
        today = today_in(cfg.input.time_zone)
        read = _read_new(job, base)
        copy = job.work_copy(validate.lines_for_copy(read.raw, cfg.input), "lines")
        if read.kind is not None:  # a table: the highest value of input.incremental_column read so far
            highest = increments.highest_read(copy, cfg.input, kind=read.kind, before=read.read_up_to)
            read = dataclasses.replace(read, read_up_to=highest)
        absorbed = base.tables[STATE_LINES] if base is not None else None
        new = validate.label_new_lines(copy, cfg, today=today, keep=job.keep, absorbed_df=absorbed)
        files = increments.files_frame(job.spark, read.files or [], copy if read.files else None)
        delta = delta_tables(cfg, new, files, keep=job.keep)
        tables = merged(base.tables if base is not None else None, delta)
        count_rows, as_of, counts = view_at(cfg, tables[STATE_COUNTS], today=today)
        check_quarantine_share(counts, cfg.quality.max_quarantine_share, cfg.input.source, key=input_key(cfg.input))
        section = _section(cfg, base, new, read, count_rows)
        copies = counts.quarantined.get(DUPLICATE_LINE, 0) if cfg.input.exact_copies == "quarantine" else None
        period = Period.of(as_of, cfg.features.window_days, today)
        validated = Validated(
            validate.in_run_window(new.lines, period),
            as_of,
            counts,
            validate.quarantine_columns(cfg.input),
            exact_copies=section.copies_in_state if copies is None else copies,
            by_day=tuple(count_rows),
        )
    log.info(
        "state: %d new lines read (%s), %d lines in the state",
        section.lines_read,
        section.mode,
        section.lines_in_state,
    )
    published = {name: TableOutput(frame) for name, frame in tables.items()}
    return Increment(validated, tables[STATE_DAYS], published, section, newest.attempt_id if newest else None)


def feature_table_of(validated: Validated, cfg: JobConfig, increment: Increment | None) -> FeatureTable:
    """Every customer's features: from the lines (``table.feature_table``), or from an incremental run's state."""
    if increment is None:
        return feature_table(validated, cfg)
    return state_feature_table(increment.days, validated.as_of, cfg)


def state_of(increment: Increment | None) -> DataFrame | None:
    """An incremental run's per-day state (None for another run)."""
    return increment.days if increment is not None else None


def state_tables(increment: Increment | None) -> dict[str, TableOutput]:
    """The state tables a run publishes (none for a run without a state)."""
    return dict(increment.tables) if increment is not None else {}


@dataclass(frozen=True)
class _Read:
    """The new input: the lines as read, the files they come from (None for a table), a table's highest value of
    ``input.incremental_column`` read before this run and that column's type."""

    raw: DataFrame
    files: list[increments.InputFile] | None
    files_in_state: list[increments.InputFile]
    read_up_to: str | None
    kind: T.DataType | None = None


def _read_new(job: RunContext, base: BaseState | None) -> _Read:
    """Read what the base state has not absorbed: new files (refusing absorbed files that changed or vanished), or a
    table's rows past the base's ``read_up_to``."""
    spark, inp = job.spark, job.cfg.input
    if inp.table is not None:
        kind = increments.table_type(spark, inp)
        before = base.section.read_up_to if base is not None else None
        raw = sources.read_raw(spark, inp, rows_after=increments.rows_after(inp, before, kind))
        diagnostics.check_timestamp_sample(raw, inp)
        return _Read(raw, None, [], before, kind)
    listed = increments.listed_files(spark, inp)
    if not listed:
        raise InputError(f"input.path: {inp.path!r} holds no files to read")
    absorbed = increments.absorbed_files(base.tables[STATE_FILES]) if base is not None else []
    new = increments.new_files(listed, absorbed, state=base.name if base is not None else "")
    log.info("input: %d files, %d of them new", len(listed), len(new))
    if new:
        raw = sources.read_raw(spark, inp, files=[f.path for f in new])
    else:  # nothing new: the input's columns, no line
        raw = sources.read_raw(spark, inp, files=[listed[0].path]).filter(F.lit(False))
    diagnostics.check_timestamp_sample(raw, inp)
    return _Read(raw, new, [*absorbed, *new], None)


def delta_tables(
    cfg: JobConfig, new: NewLines, files_df: DataFrame, *, keep: Callable[[DataFrame], DataFrame]
) -> dict[str, DataFrame]:
    """A delivery's rows of the four state tables, from its labeled lines and its files' rows."""
    absorbed = new.lines.filter(F.col(REASON).isNull())
    parts = max(1, math.ceil(new.counts.lines_in / LINES_PER_FILE))  # a night's rows in a few files, not hundreds
    return {
        STATE_DAYS: keep(day_state(clean_lines(new.lines, cfg.input)).coalesce(parts)),
        STATE_LINES: absorbed.select(F.to_date(TS).alias("day"), LINE_HASH).coalesce(parts),
        STATE_COUNTS: keep(day_counts(new.lines).coalesce(1)),
        STATE_FILES: files_df.coalesce(1),
    }


def merged(base: Mapping[str, DataFrame] | None, delta: Mapping[str, DataFrame]) -> dict[str, DataFrame]:
    """The state after a delivery: the base state's rows and the delivery's (every reader of the state adds up a
    customer's day over its rows, so a day in both needs no merge here)."""
    if base is None:
        return dict(delta)
    return {name: base[name].unionByName(delta[name]) for name in STATE_TABLES}


def view_at(
    cfg: JobConfig, counts_df: DataFrame, *, today: dt.date
) -> tuple[list[tuple[dt.date | None, str | None, int]], dt.date, LineCounts]:
    """A state's counts rows (days x reasons, collected), the run's as-of date (``features.as_of``, or the latest
    valid line's day) and the counts a full run over the same input gives at that date and window on ``today``."""
    rows = [(r["day"], r[REASON], int(r["lines"])) for r in counts_df.collect()]
    as_of = cfg.features.as_of or _latest_day(rows, cfg)
    return rows, as_of, counts_at(rows, as_of, cfg.features.window_days, last_valid=today)


def _latest_day(rows: list[tuple[dt.date | None, str | None, int]], cfg: JobConfig) -> dt.date:
    """The day of the latest valid line in the state (the default as-of date)."""
    days = [day for day, reason, _ in rows if reason is None and day is not None]
    if not days:
        raise InputError(
            f"{input_key(cfg.input)}: no valid line of {cfg.input.source!r} has been read into the state, so there is "
            "no as-of date to measure from; fix the input or set features.as_of"
        )
    return max(days)


def _section(
    cfg: JobConfig,
    base: BaseState | None,
    new: NewLines,
    read: _Read,
    rows: list[tuple[dt.date | None, str | None, int]],
) -> IncrementalSection:
    """The manifest's record of this run's state."""
    mode = "incremental" if base is not None else "rebuild" if cfg.input.rebuild_state else "first"
    base_as_of = dt.date.fromisoformat(base.manifest.as_of_date) if base is not None else None
    new_days = new.lines.filter(F.col(REASON).isNull()).agg(
        F.min(F.to_date(TS)).alias("first"),
        F.max(F.to_date(TS)).alias("last"),
        F.sum(F.when(F.to_date(TS) <= F.lit(base_as_of), 1).otherwise(0)).alias("late") if base_as_of else F.lit(0),
    )
    first_day, last_day, late = new_days.first() or (None, None, 0)
    files_read = len(read.files) if read.files is not None else None
    return IncrementalSection(
        mode=mode,
        base=RunRef(as_of_date=base.manifest.as_of_date, run_id=base.manifest.run_id) if base else None,
        base_attempt=base.manifest.attempt_id if base else None,
        lines_read=new.counts.lines_in,
        files_read=files_read,
        lines_in_state=sum(lines for _, _, lines in rows),
        files_in_state=len(read.files_in_state) if read.files is not None else None,
        new_clean=new.counts.lines_clean,
        new_quarantined=dict(new.counts.quarantined),
        new_copies=new.copies,
        copies_in_state=(base.section.copies_in_state if base else 0) + new.copies,
        late_lines=int(late or 0),
        first_new_day=first_day.isoformat() if first_day else None,
        last_new_day=last_day.isoformat() if last_day else None,
        incremental_column=cfg.input.incremental_column,
        read_up_to=read.read_up_to,
    )


def newest_state(job: RunContext) -> Manifest | None:
    """The manifest of the newest committed run (latest as-of date) of this run id that has a state, or None."""
    run_id = job.cfg.output.run_id
    for as_of, _ in reversed(job.publisher.committed_runs(run_id)):  # newest first: one manifest read, as a rule
        manifest = job.publisher.manifest(as_of, run_id)
        if manifest.incremental is not None:
            return manifest
    return None


def read_state(job: RunContext, manifest: Manifest) -> BaseState:
    """The four state tables of the committed run ``manifest`` names."""
    as_of = dt.date.fromisoformat(manifest.as_of_date)
    stored = job.publisher.read_run(as_of, manifest.run_id)
    tables = {
        name: read_run_table(job.spark, job.cfg, as_of=as_of, run_folder=stored.where, table=name)
        for name in STATE_TABLES
    }
    log.info("state: adding to the state of the run of %s, run id %s", manifest.as_of_date, manifest.run_id)
    return BaseState(manifest, tables)


def check_same_input(base: BaseState, cfg: JobConfig) -> None:
    """``InputError`` naming the first input setting that differs from the one the base state was read with: its
    lines were validated under those settings."""
    then: dict[str, Any] = dict(base.manifest.config.get("input", {}))
    now = cfg.to_dict()["input"]
    # a state read before input.limits had none; extreme_factor only names lines in the report, it labels none
    then["limits"] = {k: v for k, v in (then.get("limits") or NO_LIMITS).items() if k != "extreme_factor"}
    now["limits"] = {k: v for k, v in now["limits"].items() if k != "extreme_factor"}
    for key in sorted(now):
        if key in NOT_INPUT_SETTINGS or key not in then or then[key] == now[key]:
            continue
        raise InputError(
            f"input.{key}: the state of {base.name} was read with {then[key]!r}, this run has {now[key]!r}; the "
            "state holds lines validated under the earlier settings: run with --rebuild to read the whole input again"
        )


def check_still_newest(job: RunContext, increment: Increment | None) -> None:
    """``RunFailed`` when another run published a state since this one read its base (called before publishing;
    nothing for a run without a state)."""
    if increment is None:
        return
    newest = newest_state(job)
    now = newest.attempt_id if newest is not None else None
    if now != increment.seen:
        assert newest is not None
        raise RunFailed(
            f"another run published a state (as-of date {newest.as_of_date}, run id {newest.run_id}, attempt "
            f"{newest.attempt_id}) while this incremental run was running; this run was not published and the "
            "published runs are unchanged: run it again to add what is new since"
        )
