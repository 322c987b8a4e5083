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

from segmentation.config import InputConfig, JobConfig
from segmentation.errors import InputError
from segmentation.input import sources
from segmentation.input.customers import with_customer_reason
from segmentation.input.diagnostics import failure_hint
from segmentation.input.duplicates import label_lines, with_line_keys
from segmentation.input.quarantine import LineCounts, check_quarantine_share, count_lines, input_key
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
    counts = count_lines(labeled)
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
    return Validated(labeled, as_of, counts, tuple(text_columns), exact_copies=copies)


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
