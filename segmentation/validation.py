"""Validation: every input line goes to exactly one place, the clean lines or the quarantine with a reason.

The flow, for a transaction log (``lines_for_copy`` and ``validate``):

1. per-line reasons (``with_line_reason``): the first that applies, in the order of its ``F.when`` chain;
2. line keys (``with_line_keys``); the caller writes these lines once to a work copy (``JobRun.work_copy``);
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
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segmentation import sources
from segmentation.config import EPOCH_FORMATS, InputConfig, JobConfig, NumberOptions
from segmentation.errors import InputError
from segmentation.sources import CORRUPT, RAW_LINE, SOURCE, SOURCE_FILE, TRANSACTION_COLUMNS, raw_line

log = logging.getLogger(__name__)

MALFORMED = "malformed_row"
MISSING_CUSTOMER = "missing_customer_id"
MISSING_INVOICE = "missing_invoice_id"
INVALID_TIMESTAMP = "invalid_timestamp"
INVALID_NUMBER = "invalid_number"
NON_POSITIVE_PRICE = "non_positive_price"
ZERO_AMOUNT = "zero_amount"
AFTER_TODAY = "after_today"
DUPLICATE_LINE = "duplicate_line"
DUPLICATE_CUSTOMER = "duplicate_customer_id"
OUT_OF_WINDOW = "out_of_window"  # not a quarantine reason: the line is valid but dated outside the run's window

REASON = "reason"
TS = "_ts"
QTY = "_quantity"
PRICE = "_unit_price"
AMOUNT = "_amount"
INTEGER_UNITS = {"s": F.timestamp_seconds, "ms": F.timestamp_millis, "us": F.timestamp_micros}
# Above this many rows, the repeated hashes or the duplicate copies are joined by a shuffle, not broadcast.
BROADCAST_ROWS = 1_000_000


@dataclass(frozen=True)
class LineCounts:
    """How many lines came in, are clean, were quarantined for each reason, and are dated outside the window.

    ``lines_in = lines_clean + lines_quarantined + out_of_window``; the quarantined share leaves out of window
    lines out.
    """

    lines_in: int
    lines_clean: int
    quarantined: Mapping[str, int] = field(default_factory=dict)
    out_of_window: int = 0

    @property
    def lines_quarantined(self) -> int:
        return sum(self.quarantined.values())

    @property
    def quarantined_share(self) -> float:
        """Quarantined lines over the lines in the window (clean or quarantined)."""
        in_window = self.lines_in - self.out_of_window
        return self.lines_quarantined / in_window if in_window else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "lines_in": self.lines_in,
            "lines_clean": self.lines_clean,
            "lines_quarantined": self.lines_quarantined,
            "lines_out_of_window": self.out_of_window,
            "quarantined_by_reason": dict(sorted(self.quarantined.items())),
        }


@dataclass(frozen=True)
class Period:
    """The run's window, from ``first`` (None: all history) to the end of ``as_of``, and ``last_valid``: the last
    day a line may be dated (the later of the as-of date and today); later lines are quarantined."""

    first: dt.date | None
    as_of: dt.date
    last_valid: dt.date

    @classmethod
    def of(cls, as_of: dt.date, window_days: int | None, today: dt.date) -> Period:
        first = as_of - dt.timedelta(days=window_days - 1) if window_days is not None else None
        return cls(first, as_of, max(as_of, today))

    def contains(self) -> Column:
        """True for a line dated in the window."""
        inside = F.col(TS) < _start_of(self.as_of + dt.timedelta(days=1))
        return inside if self.first is None else inside & (F.col(TS) >= _start_of(self.first))

    def after_last_valid(self) -> Column:
        """True for a line dated after ``last_valid``."""
        return F.col(TS) >= _start_of(self.last_valid + dt.timedelta(days=1))


@dataclass(frozen=True)
class Validated:
    """Every line of the input with its reason (null for a clean line), and what validation found."""

    lines: DataFrame
    as_of: dt.date
    counts: LineCounts
    text_columns: tuple[str, ...]  # the mapped columns the quarantine shows as text


# ---------------------------------------------------------------- the flow


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
    if cfg.input.kind == "customers":
        labeled, as_of, text_columns = copy_df, cfg.features.as_of or today, ("customer_id",)
    else:
        rebuilt = sources.canonical_from_source(cfg.input)
        lines = copy_df.select(*[expr.alias(name) for name, expr in rebuilt.items()], *copy_df.columns)
        latest = latest_valid_date(lines, today)
        as_of = cfg.features.as_of or latest
        if as_of is None:
            _no_dated_line(lines, cfg, today)
        period = Period.of(as_of, cfg.features.window_days, today)
        labeled, text_columns = label_lines(lines, period, keep=keep), quarantine_columns(cfg.input)
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
        key=_input_key(cfg.input),
    )
    return Validated(labeled, as_of, counts, tuple(text_columns))


def quarantine_columns(cfg: InputConfig) -> tuple[str, ...]:
    """The mapped columns the quarantine shows as text: the canonical ones, with ``amount`` only when mapped
    (so a log with unit prices keeps the quarantine's columns as they were)."""
    return tuple(c for c in TRANSACTION_COLUMNS if c != "amount" or cfg.columns.amount is not None)


def _no_dated_line(lines_df: DataFrame, cfg: JobConfig, today: dt.date) -> None:
    """Fail for a log without one valid line dated up to ``today``: as too invalid, or as dated in the future."""
    source = cfg.input.source
    check_quarantine_share(
        count_lines(lines_df),
        cfg.quality.max_quarantine_share,
        source,
        explain=lambda: failure_hint(lines_df, count_lines(lines_df), cfg),
        key=_input_key(cfg.input),
    )
    raise InputError(
        f"{_input_key(cfg.input)}: every line of {source!r} that passes the other checks is dated after today "
        f"({today.isoformat()} in {cfg.input.time_zone}), so there is no as-of date to measure from; fix the dates "
        "or set features.as_of"
    )


def label_lines(lines_df: DataFrame, period: Period, *, keep: Callable[[DataFrame], DataFrame]) -> DataFrame:
    """The log's lines with their final reasons: after today, out of the window, exact copies of an earlier line.

    Only lines whose hash repeats are compared by their text (``repeated_hashes``, ``duplicate_copies``); the
    (few) copies are kept with ``keep`` and joined back, so the lines themselves are not written again.
    """
    repeated = repeated_hashes(lines_df, period).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        repeated_count, copies, copy_count = repeated.count(), None, 0
        if repeated_count:
            broadcast = repeated_count <= BROADCAST_ROWS
            copies = keep(duplicate_copies(lines_df, repeated, period, broadcast=broadcast))
            copy_count = copies.count()
    finally:
        repeated.unpersist()
    log.info("%d line hashes repeat; %d lines are exact copies of an earlier line", repeated_count, copy_count)
    return with_final_reason(lines_df, period, copies if copy_count else None, broadcast=copy_count <= BROADCAST_ROWS)


# ---------------------------------------------------------------- typed values


def customer_key(col: Column, data_type: T.DataType) -> Column:
    """A customer id as trimmed text, with integer-valued floats (``17850.0``) written as integers."""
    if isinstance(data_type, T.FloatType | T.DoubleType | T.DecimalType):
        as_double = col.cast("double")
        integral = col.isNotNull() & ~F.isnan(as_double) & (F.abs(as_double) < 1e15) & (as_double == F.floor(as_double))
        text = F.when(integral, F.floor(as_double).cast("long").cast("string")).otherwise(col.cast("string"))
    else:
        text = F.regexp_replace(F.trim(col.cast("string")), r"^(\d+)\.0*$", "$1")
    return F.when(text != "", text)


def parsed_timestamp(col: Column, data_type: T.DataType, cfg: InputConfig) -> Column:
    """The local time of a line (a timestamp in the session's UTC that reads as the wall clock in
    ``input.time_zone``), from a timestamp, date, integer (epoch in ``integer_timestamp_unit``) or text column
    (``timestamp_formats``: patterns, or epoch numbers); null if it does not parse.

    A local time (text without a zone, a timestamp without time zone, a date, pandas' nanosecond integers) is
    taken as it is; an instant (an epoch in s, ms or us, a timestamp, text with a zone) is shown in
    ``input.time_zone``. An integer that gives no date after 1970 as an epoch is read as text with the patterns
    (an integer ``20110601`` with ``yyyyMMdd``).
    """
    if isinstance(data_type, T.TimestampNTZType | T.DateType):
        return col.cast("timestamp")
    if isinstance(data_type, T.TimestampType):
        return _local(col, cfg.time_zone)
    if isinstance(data_type, T.IntegralType):
        unit = cfg.epoch_unit or cfg.integer_timestamp_unit
        epoch = _epoch(col, unit)
        instant = epoch if unit == "ns" else _local(epoch, cfg.time_zone)
        patterns = [f for f in cfg.timestamp_formats if f not in EPOCH_FORMATS]
        if not patterns:
            return instant
        return F.coalesce(F.when(F.year(epoch) > 1970, instant), _patterns(col.cast("string"), patterns, cfg))
    text = F.trim(col.cast("string"))
    return _patterns(text, cfg.timestamp_formats, cfg)


def _patterns(text: Column, formats: Sequence[str], cfg: InputConfig) -> Column:
    """The first of ``formats`` (Spark patterns, or epoch formats for digits) that reads ``text``."""
    whole = F.regexp_replace(text, r"\.0+$", "")  # an epoch written by pandas as a float: 1306922400.0
    parsed = []
    for fmt in formats:
        if fmt in EPOCH_FORMATS:
            epoch = F.when(whole.rlike(r"^-?\d{1,18}$"), _epoch(whole.cast("long"), EPOCH_FORMATS[fmt]))
            parsed.append(_local(epoch, cfg.time_zone))
        elif has_zone(fmt):
            parsed.append(_local(F.try_to_timestamp(text, F.lit(fmt)), cfg.time_zone))
        else:
            parsed.append(F.try_to_timestamp(text, F.lit(fmt)))
    return F.coalesce(*parsed)


def has_zone(pattern: str) -> bool:
    """True for a datetime pattern with a zone or offset field (outside quoted text)."""
    unquoted = re.sub(r"'[^']*'", "", pattern)
    return any(letter in unquoted for letter in "VzOXxZ")


# per unit, the largest epoch number read (about the year 5000): a larger one is not a date but would overflow
EPOCH_LIMITS = {"s": 10**11, "ms": 10**14, "us": 10**17}


def _epoch(col: Column, unit: str) -> Column:
    """An epoch number in ``unit`` as a timestamp; null when it is too large to be a date."""
    if unit == "ns":
        return F.timestamp_micros(F.floor(col / F.lit(1000)))
    return F.when(F.abs(col) < F.lit(EPOCH_LIMITS[unit]), INTEGER_UNITS[unit](col))


def _local(instant: Column, zone: str) -> Column:
    """An instant as the wall clock in ``zone`` (the session's zone is UTC while the job runs)."""
    return instant if zone in ("UTC", "Z") else F.from_utc_timestamp(instant, zone)


def parsed_number(col: Column, data_type: T.DataType, numbers: NumberOptions | None = None) -> Column:
    """A double from a numeric or text column (``1,25`` with a decimal comma, ``1.234,5`` with a thousands
    separator too: in groups of three digits); null when it does not parse."""
    if isinstance(data_type, T.NumericType):
        return col.cast("double")
    text = F.trim(col.cast("string"))
    if numbers is None or (numbers.decimal_separator == "." and numbers.thousands_separator is None):
        return text.try_cast("double")
    decimal, thousands = numbers.decimal_separator, numbers.thousands_separator
    if thousands is not None:
        grouped = rf"^[+-]?\d{{1,3}}(\{thousands}\d{{3}})+(\{decimal}\d*)?$"
        ungrouped = F.regexp_replace(text, re.escape(thousands), "")
        text = F.when(text.contains(thousands), F.when(text.rlike(grouped), ungrouped)).otherwise(text)
    if decimal == ",":
        text = F.when(~text.contains("."), F.regexp_replace(text, ",", "."))
    return text.try_cast("double")


def is_finite(col: Column) -> Column:
    """True for a number that is neither null, NaN nor infinite."""
    return col.isNotNull() & ~F.isnan(col) & (F.abs(col) < F.lit(float("inf")))


# ---------------------------------------------------------------- transactions


def with_line_reason(canonical_df: DataFrame, cfg: InputConfig) -> DataFrame:
    """Typed helper columns and the first per-line reason (null for a line that passes them all).

    The canonical columns keep the source's values as text, for the quarantine. A column the mapping leaves
    out (null) is not checked: no invoice id, no quantity with an amount.
    """
    types = {f.name: f.dataType for f in canonical_df.schema.fields}
    columns = cfg.columns
    customer = customer_key(F.col("customer_id"), types["customer_id"])
    invoice = F.trim(F.col("invoice_id").cast("string"))
    ts = parsed_timestamp(F.col("invoice_ts"), types["invoice_ts"], cfg)
    qty = parsed_number(F.col("quantity"), types["quantity"], cfg.numbers)
    price = parsed_number(F.col("unit_price"), types["unit_price"], cfg.numbers)
    amount = parsed_number(F.col("amount"), types["amount"], cfg.numbers)
    typed = canonical_df.select(
        *[F.col(c).cast("string").alias(c) for c in TRANSACTION_COLUMNS],
        customer.alias("_customer_key"),
        ts.alias(TS),
        qty.alias(QTY),
        price.alias(PRICE),
        amount.alias(AMOUNT),
        SOURCE_FILE,
        CORRUPT,
        SOURCE,
        RAW_LINE,
        invoice.alias("_invoice_key"),
    )
    bad_number = F.lit(False)
    for mapped, value in ((columns.quantity, QTY), (columns.unit_price, PRICE), (columns.amount, AMOUNT)):
        if mapped is not None:
            bad_number = bad_number | ~is_finite(F.col(value))
    reason = F.when(F.col(CORRUPT).isNotNull(), F.lit(MALFORMED)).when(
        F.col("_customer_key").isNull(), F.lit(MISSING_CUSTOMER)
    )
    if columns.invoice_id is not None:
        reason = reason.when(F.col("_invoice_key").isNull() | (F.col("_invoice_key") == ""), F.lit(MISSING_INVOICE))
    reason = reason.when(F.col(TS).isNull(), F.lit(INVALID_TIMESTAMP)).when(bad_number, F.lit(INVALID_NUMBER))
    if columns.amount is not None:
        reason = reason.when(F.col(AMOUNT) == 0, F.lit(ZERO_AMOUNT))
    else:
        reason = reason.when(F.col(PRICE) <= 0, F.lit(NON_POSITIVE_PRICE))
    return typed.withColumn(REASON, reason)


def _valid_timestamp(not_after: dt.date | None) -> Column:
    """The timestamp of a line without a reason dated up to ``not_after``; null otherwise.

    The latest of them is the default as-of date. Lines dated after ``not_after`` (the day the job runs)
    are ignored: a log cannot hold tomorrow's sales, and one mistyped year must not move every customer's
    recency. They are then quarantined as after today.
    """
    valid = F.col(REASON).isNull()
    if not_after is not None:
        valid = valid & (F.col(TS) < F.lit(not_after + dt.timedelta(days=1)))
    return F.when(valid, F.col(TS))


def _date_of(latest: dt.datetime | None) -> dt.date | None:
    return latest.date() if latest is not None else None


# Exact duplicate lines are found in two steps, so that only lines that may be copies are shuffled with
# their text: the 64-bit hashes of source lines that repeat, then the exact comparison on the lines with one of
# them. A whole-input window would shuffle and sort every line with its raw text.
LINE_ID = "_line_id"
LINE_HASH = "_line_hash"


def with_line_keys(line_reason_df: DataFrame) -> DataFrame:
    """The lines to write once: with ``_line_id`` (unique per line; fixed once written) and ``_line_hash`` (of the
    source columns), without ``_raw_line`` (``with_final_reason`` adds it back from ``_source``).
    """
    kept = [F.col(c) for c in line_reason_df.columns if c != RAW_LINE]
    keys = [F.monotonically_increasing_id().alias(LINE_ID), F.xxhash64(SOURCE, CORRUPT).alias(LINE_HASH)]
    return line_reason_df.select(*kept, *keys)  # one projection: Spark Connect limits how deep a plan nests


def latest_valid_date(lines_df: DataFrame, not_after: dt.date | None) -> dt.date | None:
    """The date of the latest line without a reason (the default as-of date), from one global aggregation."""
    row = lines_df.agg(F.max(_valid_timestamp(not_after)).alias("latest")).first()
    return _date_of(row["latest"]) if row is not None else None


def repeated_hashes(lines_df: DataFrame, period: Period | None = None) -> DataFrame:
    """The raw-line hashes that more than one line without a reason (dated in ``period``'s window, if given) has:
    the only lines that may be copies.

    The hashes are shuffled before they are counted: nearly all of them are unique, so a partial count on the
    map side would only build a table as large as its input.
    """
    valid = F.col(REASON).isNull() if period is None else F.col(REASON).isNull() & period.contains()
    hashes = lines_df.filter(valid).select(LINE_HASH).repartition(LINE_HASH)
    counts = hashes.groupBy(LINE_HASH).count()
    return counts.filter(F.col("count") > 1).select(LINE_HASH)


def duplicate_copies(lines_df: DataFrame, repeated_df: DataFrame, period: Period, *, broadcast: bool) -> DataFrame:
    """The ``_line_id`` of every exact copy, after the first, of a line that passes every other check and is
    dated in ``period``'s window (a copy has its original's date, so copies of other lines are out of window too).

    Only lines with a hash from ``repeated_df`` (see ``repeated_hashes``) are compared, by their whole raw
    text; copies are ordered by source file, then by position. ``broadcast`` sends the repeated hashes to
    every task instead of shuffling the lines.
    """
    candidates = lines_df.join(F.broadcast(repeated_df) if broadcast else repeated_df, LINE_HASH)
    valid = candidates.filter(F.col(REASON).isNull() & period.contains()).withColumn(RAW_LINE, raw_line())
    window = Window.partitionBy(LINE_HASH, RAW_LINE).orderBy(SOURCE_FILE, LINE_ID)
    return valid.withColumn("_copy", F.row_number().over(window)).filter(F.col("_copy") > 1).select(LINE_ID)


def with_final_reason(
    lines_df: DataFrame, period: Period, copies_df: DataFrame | None, *, broadcast: bool
) -> DataFrame:
    """Add the labels that need the whole data (after today, out of window, then exact duplicate lines) and
    ``_raw_line``.

    ``copies_df`` holds the ids from ``duplicate_copies`` (None when no hash repeats); ``broadcast`` joins
    them without shuffling the lines.
    """
    valid, late = F.col(REASON).isNull(), period.after_last_valid()
    dated = F.col(TS).isNotNull() & (valid | (F.col(REASON) != MALFORMED))  # a line whose date can be read
    reason = F.when(valid & late, F.lit(AFTER_TODAY)).when(dated & ~late & ~period.contains(), F.lit(OUT_OF_WINDOW))
    if copies_df is None:
        return lines_df.withColumns({REASON: reason.otherwise(F.col(REASON)), RAW_LINE: raw_line()})
    flagged = copies_df.withColumn("_copy", F.lit(True))
    joined = lines_df.join(F.broadcast(flagged) if broadcast else flagged, LINE_ID, "left")
    reason = reason.when(F.col(REASON).isNull() & F.col("_copy").isNotNull(), F.lit(DUPLICATE_LINE))
    return joined.withColumns({REASON: reason.otherwise(F.col(REASON)), RAW_LINE: raw_line()}).drop("_copy")


def _start_of(day: dt.date) -> Column:
    """The first instant of ``day``."""
    return F.lit(dt.datetime.combine(day, dt.time())).cast("timestamp")


def _with_duplicate_reason(df: DataFrame, keys: Sequence[str], code: str) -> DataFrame:
    """Among lines still without a reason, every copy after the first of the same key gets ``code``.

    The window is partitioned by a 64-bit hash of the key before the key itself: Spark sorts a window's
    input by its partition columns, and a long sorts by its prefix where a JSON line (all alike in their
    first bytes) needs whole-string comparisons, several times slower.
    """
    hashed = F.xxhash64(*keys)
    window = Window.partitionBy(hashed, *keys, F.col(REASON).isNull()).orderBy(SOURCE_FILE, RAW_LINE)
    rank = F.row_number().over(window)
    return df.withColumn(REASON, F.when(F.col(REASON).isNull() & (rank > 1), F.lit(code)).otherwise(F.col(REASON)))


def clean_lines(labeled_df: DataFrame, cfg: InputConfig) -> DataFrame:
    """The valid lines with canonical typed columns, the return flag, the signed line amount and ``order_id``.

    A return is a line with a negative quantity, a negative amount or a ``C`` invoice. ``order_id`` is what
    makes an order (``input.orders_by``): the invoice, the line's timestamp (per customer) or the line itself.
    Without a quantity column, ``quantity`` is null and items are not counted.
    """
    invoice = F.col("_invoice_key")
    is_return = F.lit(False)
    if cfg.columns.invoice_id is not None:
        is_return = is_return | F.upper(invoice).startswith("C")
    if cfg.columns.quantity is not None:
        is_return = is_return | (F.col(QTY) < 0)
    if cfg.columns.amount is not None:
        is_return = is_return | (F.col(AMOUNT) < 0)
        amount = F.abs(F.col(AMOUNT))
    else:
        amount = F.abs(F.col(QTY) * F.col(PRICE))
    order = {
        "invoice": invoice,
        "timestamp": F.date_format(F.col(TS), "yyyy-MM-dd HH:mm:ss.SSSSSS"),
        "line": F.col(LINE_ID).cast("string"),
    }[cfg.orders_by]
    return labeled_df.filter(F.col(REASON).isNull()).select(
        F.col("_customer_key").alias("customer_id"),
        invoice.alias("invoice_id"),
        order.alias("order_id"),
        F.col(TS).alias("invoice_ts"),
        (F.col(QTY) if cfg.columns.quantity is not None else F.lit(None).cast("double")).alias("quantity"),
        F.col(PRICE).alias("unit_price"),
        F.trim(F.col("product_id")).alias("product_id"),
        F.trim(F.col("country")).alias("country"),
        is_return.alias("is_return"),
        F.when(is_return, -amount).otherwise(amount).alias("amount"),
    )


def quarantined_lines(labeled_df: DataFrame, text_columns: Sequence[str]) -> DataFrame:
    """The quarantined lines (not those out of window): reason, source file, the whole original line and the
    mapped values as text."""
    return labeled_df.filter(F.col(REASON).isNotNull() & (F.col(REASON) != OUT_OF_WINDOW)).select(
        REASON,
        F.col(SOURCE_FILE).alias("source_file"),
        F.col(RAW_LINE).alias("raw_line"),
        *[F.col(c).cast("string").alias(c) for c in text_columns],
    )


def count_lines(labeled_df: DataFrame) -> LineCounts:
    """Lines in, clean, quarantined per reason and out of window, from one aggregation."""
    rows = labeled_df.groupBy(REASON).count().collect()
    by_reason = {r[REASON]: int(r["count"]) for r in rows}
    clean, out = by_reason.pop(None, 0), by_reason.pop(OUT_OF_WINDOW, 0)
    lines_in = clean + out + sum(by_reason.values())
    return LineCounts(lines_in=lines_in, lines_clean=clean, quarantined=by_reason, out_of_window=out)


def _input_key(inp: InputConfig) -> str:
    return "input.table" if inp.table is not None else "input.path"


def check_quarantine_share(
    counts: LineCounts, max_share: float, source: str, *, explain: Callable[[], str] = str, key: str = "input.path"
) -> None:
    """Fail, naming the key at fault, when too many lines in the window are quarantined or none of them is clean;
    ``explain`` gives what is likely wrong when every line failed the same way (``failure_hint``)."""
    if counts.lines_in == 0:
        raise InputError(f"{key}: {source!r} holds no data lines")
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(counts.quarantined.items()))
    in_window = " dated in the run's window" if counts.out_of_window else ""
    lines = counts.lines_in - counts.out_of_window
    if counts.lines_clean == 0 and not counts.out_of_window:
        hint = explain()
        raise InputError(
            f"quality.max_quarantine_share: none of the {lines} lines in {source!r} is valid: all were quarantined "
            f"({reasons}){'; ' + hint if hint else ''}; nothing was published"
        )
    if counts.quarantined_share > max_share:
        hint = explain()
        raise InputError(
            f"quality.max_quarantine_share: {counts.quarantined_share:.1%} of the {lines} lines in {source!r}"
            f"{in_window} were quarantined ({reasons}), above the allowed {max_share:.0%}"
            f"{'; ' + hint if hint else ''}; nothing was published"
        )
    if counts.lines_clean == 0:
        raise InputError(
            f"features.as_of: no valid line of {source!r} is dated in the run's window ({counts.out_of_window} "
            "lines are dated outside it); choose an as-of date and features.window_days that cover the data"
        )


SHAPE_SAMPLE = 1000  # lines whose shapes are looked at to say what a column's values look like


def value_shape(col: Column) -> Column:
    """What a value looks like without what it is: every digit as ``9``, every letter as ``a``, and any other
    character but a space and ``. , : ; / - + ' _`` as ``?``."""
    digits = F.regexp_replace(F.trim(col.cast("string")), r"\p{N}", "9")
    letters = F.regexp_replace(digits, r"[\p{L}&&[^9]]", "a")
    return F.regexp_replace(letters, r"[^9a .,:;/+'_-]", "?")


def common_shape(frame: DataFrame, column: str) -> str | None:
    """The most common shape (``value_shape``) of ``column`` among the first lines of ``frame``."""
    shapes = frame.select(value_shape(F.col(column)).alias("shape")).filter("shape IS NOT NULL AND shape != ''")
    top = shapes.limit(SHAPE_SAMPLE).groupBy("shape").count().orderBy(F.desc("count"), "shape").first()
    return top["shape"] if top is not None else None


def failure_hint(labeled_df: DataFrame, counts: LineCounts, cfg: JobConfig) -> str:
    """Which column and setting are likely wrong, when one reason has most of the quarantined lines; else "".

    The hint names columns, settings and value shapes (``value_shape``), never values.
    """
    if not counts.quarantined or cfg.input.kind != "transactions":
        return ""
    reason, lines = max(counts.quarantined.items(), key=lambda item: (item[1], item[0]))
    if lines * 2 < counts.lines_quarantined:
        return ""
    inp, columns = cfg.input, cfg.input.columns
    failed = labeled_df.filter(F.col(REASON) == reason)
    if reason == INVALID_NUMBER:
        return _number_hint(failed, inp)
    if reason == INVALID_TIMESTAMP:
        shape = common_shape(failed, "invoice_ts")
        return (
            f"column {columns.invoice_ts!r} (input.columns.invoice_ts) reads with none of the patterns in "
            f"input.timestamp_formats ({', '.join(inp.timestamp_formats)})"
            + (f"; its values look like {shape!r} (9: a digit, a: a letter)" if shape else "")
        )
    if reason == MALFORMED and inp.table is None:
        if sources.resolve_format(inp.path or "", inp.format) == "json":
            return "lines that are not JSON objects: is it JSON lines (one object per line), in input.csv.encoding?"
        return (
            "rows without the header's number of fields: check input.csv.delimiter, input.csv.quote, "
            "input.csv.encoding and input.format"
        )
    if reason == MISSING_CUSTOMER:
        return (
            f"column {columns.customer_id!r} (input.columns.customer_id) is empty in those lines; is it the right one?"
        )
    if reason == MISSING_INVOICE:
        return (
            f"column {columns.invoice_id!r} (input.columns.invoice_id) is empty in those lines; if the log has no "
            "invoice ids, set input.columns.invoice_id to null (input.order_key says what an order is then)"
        )
    if reason == NON_POSITIVE_PRICE:
        return f"column {columns.unit_price!r} (input.columns.unit_price) is zero or negative in those lines"
    if reason == ZERO_AMOUNT:
        return f"column {columns.amount!r} (input.columns.amount) is zero in those lines; is it the right one?"
    return ""


def _number_hint(failed_df: DataFrame, inp: InputConfig) -> str:
    """Which mapped number columns fail to read in every failed line, what their values look like, and the
    number setting that would read them."""
    columns = inp.columns
    mapped = {
        name: (key, value)
        for name, key, value in (
            (columns.quantity, "quantity", QTY),
            (columns.unit_price, "unit_price", PRICE),
            (columns.amount, "amount", AMOUNT),
        )
        if name is not None
    }
    failing = failed_df.agg(
        *[F.count(F.when(~is_finite(F.col(value)), 1)).alias(key) for key, value in mapped.values()],
        F.count("*").alias("lines"),
    ).first()
    if failing is None:
        return ""
    hints = []
    for name, (key, _) in mapped.items():
        if failing[key] * 10 < failing["lines"] * 9:  # a column at fault fails in (nearly) all of them
            continue
        shape = common_shape(failed_df, key) or ""
        hint = (
            f"column {name!r} (input.columns.{key}) does not read as a number in {failing[key]} of the "
            f"{failing['lines']} lines quarantined as {INVALID_NUMBER}"
        )
        if shape:
            hint += f"; its values look like {shape!r} (9: a digit)"
        hint += _separator_hint(shape, inp)
        hints.append(hint)
    return "; ".join(hints)


def _separator_hint(shape: str, inp: InputConfig) -> str:
    """The number setting a value of ``shape`` needs, if another than the one set."""
    numbers = inp.numbers
    if re.fullmatch(r"[+-]?9{1,3}(\.999)+,9*", shape):
        return (
            '; with a decimal comma and "." between thousands, set input.numbers.decimal_separator: "," and '
            'input.numbers.thousands_separator: "."'
        )
    if re.fullmatch(r"[+-]?9{1,3},999", shape) and numbers.decimal_separator != ",":
        return (
            '; with a decimal comma, set input.numbers.decimal_separator: ","; with "," between thousands, '
            'input.numbers.thousands_separator: ","'
        )
    if re.fullmatch(r"[+-]?9+,9+", shape) and numbers.decimal_separator != ",":
        return '; with a decimal comma, set input.numbers.decimal_separator: ","'
    if re.fullmatch(r"[+-]?9{1,3}(,999)+(\.9*)?", shape) and numbers.thousands_separator != ",":
        return '; with "," between thousands, set input.numbers.thousands_separator: ","'
    return ""


SAMPLE_LINES = 1000  # the first lines whose timestamps are checked before the whole input is read


def check_timestamp_sample(raw_df: DataFrame, cfg: InputConfig) -> None:
    """Fail before the whole input is read when most timestamps among the first lines give no date from 1971 to
    2200 with the configured formats (1970 is where an epoch read in too small a unit lands): the error names the
    column, the patterns (or unit) tried and the shape of the values, never a value."""
    if cfg.kind != "transactions":
        return
    canonical = sources.canonical_transactions(raw_df, cfg)
    data_type = canonical.schema["invoice_ts"].dataType
    if isinstance(data_type, T.TimestampType | T.TimestampNTZType | T.DateType):
        return
    text = F.trim(F.col("invoice_ts").cast("string"))
    sample = canonical.filter(F.col(CORRUPT).isNull() & text.isNotNull() & (text != "")).limit(SAMPLE_LINES)
    parsed = parsed_timestamp(F.col("invoice_ts"), data_type, cfg)
    plausible = parsed.isNotNull() & F.year(parsed).between(1971, 2200)
    row = sample.agg(F.count("*").alias("lines"), F.count(F.when(plausible, 1)).alias("read")).first()
    if row is None or not row["lines"] or row["read"] * 2 >= row["lines"]:
        return
    name, lines, unread = cfg.columns.invoice_ts, row["lines"], row["lines"] - row["read"]
    shape = common_shape(sample, "invoice_ts")
    looks = f"; its values look like {shape!r} (9: a digit, a: a letter)" if shape else ""
    if isinstance(data_type, T.IntegralType):
        unit = cfg.epoch_unit or cfg.integer_timestamp_unit
        raise InputError(
            f"input.integer_timestamp_unit: {unread} of the first {lines} values of the integer column {name!r} "
            f"(input.columns.invoice_ts) in {cfg.source!r} are no date from 1971 to 2200 when read as epoch "
            f"{unit}{looks}; set the unit they are in (s, ms, us or ns)"
        )
    raise InputError(
        f"input.timestamp_formats: {unread} of the first {lines} values of column {name!r} "
        f"(input.columns.invoice_ts) in {cfg.source!r} give no date from 1971 to 2200 with the patterns tried "
        f"({', '.join(cfg.timestamp_formats)}){looks}; set input.timestamp_formats to their Spark datetime "
        "pattern (such as yyyyMMdd or dd.MM.yyyy HH:mm), or epoch_seconds / epoch_millis"
    )


# ---------------------------------------------------------------- customer tables


def with_customer_reason(canonical_df: DataFrame, cfg: InputConfig) -> DataFrame:
    """Reasons for a customer table: malformed, missing id, bad number, duplicate line, duplicate id."""
    types = {f.name: f.dataType for f in canonical_df.schema.fields}
    opts = cfg.customers
    numbers = {c: parsed_number(F.col(c), types[c], cfg.numbers) for c in opts.numeric_columns}
    typed = canonical_df.select(
        customer_key(F.col("customer_id"), types["customer_id"]).alias("_customer_key"),
        F.col("customer_id").cast("string").alias("customer_id"),
        *[expr.alias(c) for c, expr in numbers.items()],
        *[F.trim(F.col(c).cast("string")).alias(c) for c in opts.categorical_columns],
        SOURCE_FILE,
        CORRUPT,
        RAW_LINE,
    )
    bad_number = F.lit(False)
    for c in opts.numeric_columns:
        bad_number = bad_number | ~is_finite(F.col(c))
    reason = (
        F.when(F.col(CORRUPT).isNotNull(), F.lit(MALFORMED))
        .when(F.col("_customer_key").isNull(), F.lit(MISSING_CUSTOMER))
        .when(bad_number, F.lit(INVALID_NUMBER))
    )
    labeled = _with_duplicate_reason(typed.withColumn(REASON, reason), [RAW_LINE], DUPLICATE_LINE)
    return _with_duplicate_reason(labeled, ["_customer_key"], DUPLICATE_CUSTOMER)


def clean_customers(labeled_df: DataFrame, cfg: InputConfig) -> DataFrame:
    """One row per valid customer: id, numeric features as doubles, categorical ones as text."""
    opts = cfg.customers
    categorical = [F.coalesce(F.col(c), F.lit("(missing)")).alias(c) for c in opts.categorical_columns]
    return labeled_df.filter(F.col(REASON).isNull()).select(
        F.col("_customer_key").alias("customer_id"), *opts.numeric_columns, *categorical
    )
