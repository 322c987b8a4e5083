"""Typed values from what the input holds: customer ids as text, timestamps from text, dates, integers or
instants (in ``input.time_zone``), and numbers with a decimal comma or thousands separators; null where a value does
not read."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segmentation.config import EPOCH_FORMATS, InputConfig, NumberOptions

INTEGER_UNITS = {"s": F.timestamp_seconds, "ms": F.timestamp_millis, "us": F.timestamp_micros}


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
