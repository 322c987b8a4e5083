"""Validation: every input line goes to exactly one place, the clean lines or the quarantine with a reason.

The flow, for a transaction log (``lines_for_copy`` and ``validate``):

1. per-line reasons (``with_line_reason``): the first that applies, in the order of its ``F.when`` chain;
2. line keys (``with_line_keys``); the caller writes these lines once to a work copy (``RunContext.work_copy``);
3. from that copy: the as-of date and the run's window (``Period``), then lines dated after today, lines dated
   outside the window and exact duplicate lines (``label_lines``);
4. counts per reason, and the check that not too much of the input was quarantined.

A line dated outside the window (after the as-of date, or before the ``features.window_days`` days ending with
it) belongs to another period: it gets ``OUT_OF_WINDOW``, is counted apart, and is neither clean nor quarantined,
so the same cumulative log can be run at an earlier as-of date. That holds for a line with a per-line problem too,
as long as its date can be read (not a malformed row): each period's quarantine holds its own bad lines. A valid
line dated after the day the job runs is quarantined (``after_today``).

A customer table gets its reasons (malformed, missing id, bad number, duplicate line, duplicate id) in step 1
and goes straight to step 4. Cancellations and returns are not errors: they stay clean and are netted into the
features.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segmentation.config import InputConfig, JobConfig
from segmentation.errors import InputError
from segmentation.input import sources
from segmentation.input.customers import with_customer_reason
from segmentation.input.diagnostics import failure_hint
from segmentation.input.duplicates import label_lines, with_line_keys
from segmentation.input.quarantine import (
    DayCount,
    LineCounts,
    check_quarantine_share,
    count_lines,
    counts_by_day,
    input_key,
)
from segmentation.input.reasons import DUPLICATE_LINE, LINE_HASH, MALFORMED, OUT_OF_WINDOW, REASON, TS
from segmentation.input.rules import Period, latest_valid_date, with_line_reason
from segmentation.input.sources import TRANSACTION_COLUMNS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Validated:
    """Every line of the input with its reason (null for a clean line), and what validation found."""

    lines: DataFrame
    as_of: dt.date
    counts: LineCounts
    text_columns: tuple[str, ...]  # the mapped columns the quarantine shows as text
    exact_copies: int | None = None  # a log's lines that copy an earlier one (quarantined or kept: input.exact_copies)
    by_day: tuple[DayCount, ...] = ()  # a log's lines per (day, reason): the drift checks' input health


def lines_for_copy(raw_df: DataFrame, cfg: InputConfig) -> DataFrame:
    """The lines as read, with their per-line reasons (and, for a log, their keys), ready for the work copy.

    A log's canonical text columns are left out: they are the text of the ``_source`` fields they map, and
    ``validate`` reads them back from there, so the copy holds every source value once.
    """
    if cfg.kind == "customers":
        return with_customer_reason(sources.canonical_customers(raw_df, cfg), cfg)
    keyed = with_line_keys(with_line_reason(sources.canonical_transactions(raw_df, cfg), cfg))
    return keyed.drop(*sources.canonical_from_source(cfg))


def validate(
    copy_df: DataFrame, cfg: JobConfig, *, today: dt.date, keep: Callable[[DataFrame], DataFrame]
) -> Validated:
    """Label every line of the work copy with its final reason, count, and check the quarantine share.

    ``today`` is the day the job runs (no valid line can be dated after it); ``keep`` persists a frame for as
    long as the caller uses the labeled lines (the duplicate copies they are joined with).
    """
    text_columns: tuple[str, ...]
    copies: int | None = None
    if cfg.input.kind == "customers":
        labeled, as_of, text_columns = copy_df, cfg.features.as_of or today, ("customer_id",)
    else:
        rebuilt = sources.canonical_from_source(cfg.input)
        lines = copy_df.select(*[expr.alias(name) for name, expr in rebuilt.items()], *copy_df.columns)
        latest = latest_valid_date(lines, today)
        found = cfg.features.as_of or latest
        if found is None:
            _no_dated_line(lines, cfg, today)
        as_of = found
        period = Period.of(as_of, cfg.features.window_days, today)
        quarantine_copies = cfg.input.exact_copies == "quarantine"
        labeled, copies = label_lines(lines, period, keep=keep, quarantine_copies=quarantine_copies)
        text_columns = quarantine_columns(cfg.input)
    counts, by_day = counts_by_day(labeled)
    log.info(
        "lines in=%d clean=%d quarantined=%d out of window=%d %s",
        counts.lines_in,
        counts.lines_clean,
        counts.lines_quarantined,
        counts.out_of_window,
        dict(counts.quarantined),
    )
    check_quarantine_share(
        counts,
        cfg.quality.max_quarantine_share,
        cfg.input.source,
        explain=lambda: failure_hint(labeled, counts, cfg),
        key=input_key(cfg.input),
    )
    return Validated(labeled, as_of, counts, tuple(text_columns), exact_copies=copies, by_day=tuple(by_day))


@dataclass(frozen=True)
class NewLines:
    """An incremental run's new lines labeled for the state, and what they hold.

    ``lines``: every new line with its reason: null for a line the state absorbs (every valid line dated up to the
    last valid day, whatever the run's window); ``counts``: the new lines' counts (none out of window);
    ``copies``: new lines that copy a line read before (in this delivery or absorbed by the state).
    """

    lines: DataFrame
    counts: LineCounts
    copies: int


def label_new_lines(
    copy_df: DataFrame,
    cfg: JobConfig,
    *,
    today: dt.date,
    keep: Callable[[DataFrame], DataFrame],
    absorbed_df: DataFrame | None,
) -> NewLines:
    """Label an incremental run's new lines (the work copy) for the state: per-line reasons, dated after the last
    valid day, and exact copies of a line read before: one of this delivery, or one the state absorbed
    (``absorbed_df``: its ``day`` and ``_line_hash`` per absorbed line; a copy has its original's day).

    Every valid line is absorbed, not only those in the run's window: a later run may have another as-of date or
    window, and the state answers for them all. Each copy counts once, as in a full run; with
    ``input.exact_copies: keep`` copies are counted and absorbed.
    """
    rebuilt = sources.canonical_from_source(cfg.input)
    lines = copy_df.select(*[expr.alias(name) for name, expr in rebuilt.items()], *copy_df.columns)
    last_valid = max(today, cfg.features.as_of or today)
    quarantine_copies = cfg.input.exact_copies == "quarantine"
    labeled, copies = label_lines(
        lines, Period.of(last_valid, None, today), keep=keep, quarantine_copies=quarantine_copies
    )
    earlier = 0
    if absorbed_df is not None:
        labeled, earlier = with_absorbed_copies(labeled, absorbed_df, keep=keep, quarantine=quarantine_copies)
        copies += earlier
    counts = count_lines(labeled)
    log.info(
        "new lines=%d absorbed=%d quarantined=%d %s; %d copy a line read before",
        counts.lines_in,
        counts.lines_clean,
        counts.lines_quarantined,
        dict(counts.quarantined),
        copies,
    )
    judged = _without_copies_of_absorbed(counts, earlier if quarantine_copies else 0)
    if judged.lines_in:  # an export that overlaps the last one is not a bad delivery
        check_quarantine_share(
            judged,
            cfg.quality.max_quarantine_share,
            cfg.input.source,
            explain=lambda: failure_hint(labeled, counts, cfg),
            key=input_key(cfg.input),
        )
    return NewLines(labeled, counts, copies)


def _without_copies_of_absorbed(counts: LineCounts, copies: int) -> LineCounts:
    """``counts`` without ``copies`` quarantined copies of absorbed lines: what a delivery's share is judged on."""
    if not copies:
        return counts
    quarantined = {**counts.quarantined, DUPLICATE_LINE: counts.quarantined[DUPLICATE_LINE] - copies}
    return LineCounts(counts.lines_in - copies, counts.lines_clean, {k: v for k, v in quarantined.items() if v})


def with_absorbed_copies(
    labeled_df: DataFrame, absorbed_df: DataFrame, *, keep: Callable[[DataFrame], DataFrame], quarantine: bool
) -> tuple[DataFrame, int]:
    """Valid new lines whose day and hash a line the state absorbed has: ``duplicate_line`` (kept clean without
    ``quarantine``), and how many more copies that makes: one per distinct line (the delivery's own copies of it
    are counted by ``label_lines`` already). The absorbed lines are filtered to the new lines' days."""
    day, valid = F.to_date(TS), F.col(REASON).isNull()
    keys = labeled_df.filter(valid).select(day.alias("day"), LINE_HASH)
    days = [r["day"] for r in keys.select("day").distinct().collect()]  # O(days) rows
    if not days:
        return labeled_df, 0
    earlier = absorbed_df.filter(F.col("day").isin(days)).select("day", LINE_HASH).distinct()
    hits = keep(keys.distinct().join(earlier, ["day", LINE_HASH], "left_semi").withColumn("_absorbed", F.lit(True)))
    count = hits.count()
    if not count:
        return labeled_df, 0
    joined = labeled_df.withColumn("day", day).join(hits, ["day", LINE_HASH], "left")
    copy = valid & F.col("_absorbed").isNotNull()
    if quarantine:
        joined = joined.withColumn(REASON, F.when(copy, F.lit(DUPLICATE_LINE)).otherwise(F.col(REASON)))
    return joined.drop("day", "_absorbed"), count


def in_run_window(new_df: DataFrame, period: Period) -> DataFrame:
    """An incremental run's new lines as its own quarantine shows them: a dated line outside the run's window
    (``period``) is out of window, as in a full run; one dated after the last valid day stays quarantined."""
    dated = F.col(TS).isNotNull() & (F.col(REASON).isNull() | (F.col(REASON) != MALFORMED))
    outside = dated & ~period.contains() & ~period.after_last_valid()
    return new_df.withColumn(REASON, F.when(outside, F.lit(OUT_OF_WINDOW)).otherwise(F.col(REASON)))


def quarantine_columns(cfg: InputConfig) -> tuple[str, ...]:
    """The mapped columns the quarantine shows as text: the canonical ones, with ``amount`` only when mapped
    (so a log with unit prices keeps the quarantine's columns as they were)."""
    return tuple(c for c in TRANSACTION_COLUMNS if c != "amount" or cfg.columns.amount is not None)


def _no_dated_line(lines_df: DataFrame, cfg: JobConfig, today: dt.date) -> NoReturn:
    """Fail for a log without one valid line dated up to ``today``: as too invalid, or as dated in the future."""
    source = cfg.input.source
    check_quarantine_share(
        count_lines(lines_df),
        cfg.quality.max_quarantine_share,
        source,
        explain=lambda: failure_hint(lines_df, count_lines(lines_df), cfg),
        key=input_key(cfg.input),
    )
    raise InputError(
        f"{input_key(cfg.input)}: every line of {source!r} that passes the other checks is dated after today "
        f"({today.isoformat()} in {cfg.input.time_zone}), so there is no as-of date to measure from; fix the dates "
        "or set features.as_of"
    )
