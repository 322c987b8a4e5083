"""What is likely wrong when lines fail: hints that name the column, the setting and the values' shape (never a
value), and the check of the first lines' timestamps before the whole input is read."""

from __future__ import annotations

import re

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segmentation.config import InputConfig, JobConfig
from segmentation.errors import InputError
from segmentation.input import sources
from segmentation.input.parsing import is_finite, parsed_timestamp
from segmentation.input.quarantine import LineCounts
from segmentation.input.reasons import (
    AMOUNT,
    INVALID_NUMBER,
    INVALID_TIMESTAMP,
    MALFORMED,
    MISSING_CUSTOMER,
    MISSING_INVOICE,
    NON_POSITIVE_PRICE,
    PRICE,
    QTY,
    REASON,
    ZERO_AMOUNT,
)
from segmentation.input.sources import CORRUPT

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
