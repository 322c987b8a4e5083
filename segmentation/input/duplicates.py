"""Exact duplicate lines: a line that is a byte-for-byte copy of an earlier valid line in the window is a
``duplicate_line``; the final labels that need the whole input (after today, out of window, copies).

Exact duplicate lines are found in two steps, so that only lines that may be copies are shuffled with
their text: the 64-bit hashes of source lines that repeat, then the exact comparison on the lines with one of
them. A whole-input window would shuffle and sort every line with its raw text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from segmentation.input.reasons import (
    AFTER_TODAY,
    DUPLICATE_LINE,
    LATER_VALID,
    LINE_HASH,
    LINE_ID,
    MALFORMED,
    OUT_OF_WINDOW,
    REASON,
    TS,
)
from segmentation.input.rules import Period
from segmentation.input.sources import CORRUPT, RAW_LINE, SOURCE, SOURCE_FILE, raw_line

log = logging.getLogger(__name__)

# Above this many rows, the repeated hashes or the duplicate copies are joined by a shuffle, not broadcast.
BROADCAST_ROWS = 1_000_000


def with_line_keys(line_reason_df: DataFrame) -> DataFrame:
    """The lines to write once: with ``_line_id`` (unique per line; fixed once written) and ``_line_hash`` (of the
    source columns), without ``_raw_line`` (``with_final_reason`` adds it back from ``_source``).
    """
    kept = [F.col(c) for c in line_reason_df.columns if c != RAW_LINE]
    keys = [F.monotonically_increasing_id().alias(LINE_ID), F.xxhash64(SOURCE, CORRUPT).alias(LINE_HASH)]
    return line_reason_df.select(*kept, *keys)  # one projection: Spark Connect limits how deep a plan nests


def label_lines(
    lines_df: DataFrame, period: Period, *, keep: Callable[[DataFrame], DataFrame], quarantine_copies: bool = True
) -> tuple[DataFrame, int]:
    """The log's lines with their final reasons (after today, out of the window, exact copies of an earlier line),
    and how many lines are exact copies of an earlier one; ``quarantine_copies`` false counts them but keeps them
    clean (``input.exact_copies: keep``).

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
    log.info(
        "%d line hashes repeat; %d lines are exact copies of an earlier line (%s)",
        repeated_count,
        copy_count,
        "quarantined" if quarantine_copies else "kept",
    )
    flagged = copies if copy_count and quarantine_copies else None
    return with_final_reason(lines_df, period, flagged, broadcast=copy_count <= BROADCAST_ROWS), copy_count


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
    """Add the labels that need the whole data (after today, out of window, then exact duplicate lines),
    ``_raw_line``, and ``_later_valid``: true for a line dated after the as-of date (up to ``last_valid``) that
    passes the per-line checks (the lines a value holdout compares with; they are not checked for copies).

    ``copies_df`` holds the ids from ``duplicate_copies`` (None when no hash repeats); ``broadcast`` joins
    them without shuffling the lines.
    """
    valid, late = F.col(REASON).isNull(), period.after_last_valid()
    dated = F.col(TS).isNotNull() & (valid | (F.col(REASON) != MALFORMED))  # a line whose date can be read
    reason = F.when(valid & late, F.lit(AFTER_TODAY)).when(dated & ~late & ~period.contains(), F.lit(OUT_OF_WINDOW))
    later = (valid & ~late & period.after_as_of()).alias(LATER_VALID)
    if copies_df is None:
        return lines_df.withColumns({REASON: reason.otherwise(F.col(REASON)), RAW_LINE: raw_line(), LATER_VALID: later})
    flagged = copies_df.withColumn("_copy", F.lit(True))
    joined = lines_df.join(F.broadcast(flagged) if broadcast else flagged, LINE_ID, "left")
    reason = reason.when(F.col(REASON).isNull() & F.col("_copy").isNotNull(), F.lit(DUPLICATE_LINE))
    final = {REASON: reason.otherwise(F.col(REASON)), RAW_LINE: raw_line(), LATER_VALID: later}
    return joined.withColumns(final).drop("_copy")


def with_duplicate_reason(df: DataFrame, keys: Sequence[str], code: str) -> DataFrame:
    """Among lines still without a reason, every copy after the first of the same key gets ``code``.

    The window is partitioned by a 64-bit hash of the key before the key itself: Spark sorts a window's
    input by its partition columns, and a long sorts by its prefix where a JSON line (all alike in their
    first bytes) needs whole-string comparisons, several times slower.
    """
    hashed = F.xxhash64(*keys)
    window = Window.partitionBy(hashed, *keys, F.col(REASON).isNull()).orderBy(SOURCE_FILE, RAW_LINE)
    rank = F.row_number().over(window)
    return df.withColumn(REASON, F.when(F.col(REASON).isNull() & (rank > 1), F.lit(code)).otherwise(F.col(REASON)))
