"""The per-line rules of a transaction log: each line's first reason (malformed, missing customer or invoice,
unreadable time or number, non-positive price, zero amount), the run's window (``Period``) and the default as-of
date."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segmentation.config import InputConfig
from segmentation.input.parsing import customer_key, is_finite, parsed_number, parsed_timestamp
from segmentation.input.reasons import (
    AMOUNT,
    IMPLAUSIBLE_VALUE,
    INVALID_NUMBER,
    INVALID_TIMESTAMP,
    LIMIT,
    MALFORMED,
    MISSING_CUSTOMER,
    MISSING_INVOICE,
    NON_POSITIVE_PRICE,
    PRICE,
    QTY,
    REASON,
    TS,
    ZERO_AMOUNT,
)
from segmentation.input.sources import CORRUPT, RAW_LINE, SOURCE, SOURCE_FILE, TRANSACTION_COLUMNS


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
        inside = F.col(TS) < start_of(self.as_of + dt.timedelta(days=1))
        return inside if self.first is None else inside & (F.col(TS) >= start_of(self.first))

    def after_as_of(self) -> Column:
        """True for a line dated after the as-of date."""
        return F.col(TS) >= start_of(self.as_of + dt.timedelta(days=1))

    def after_last_valid(self) -> Column:
        """True for a line dated after ``last_valid``."""
        return F.col(TS) >= start_of(self.last_valid + dt.timedelta(days=1))


def start_of(day: dt.date) -> Column:
    """The first instant of ``day``."""
    return F.lit(dt.datetime.combine(day, dt.time())).cast("timestamp")


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
    beyond = beyond_limit(cfg)
    reason = reason.when(beyond.isNotNull(), F.lit(IMPLAUSIBLE_VALUE))
    if columns.amount is not None:
        reason = reason.when(F.col(AMOUNT) == 0, F.lit(ZERO_AMOUNT))
    else:
        reason = reason.when(F.col(PRICE) <= 0, F.lit(NON_POSITIVE_PRICE))
    return typed.withColumn(REASON, reason).withColumn(
        LIMIT, F.when(F.col(REASON) == IMPLAUSIBLE_VALUE, beyond).cast("string")
    )


def line_value() -> Column:
    """A typed line's money value: its ``amount``, else quantity times unit price."""
    return F.coalesce(F.col(AMOUNT), F.col(QTY) * F.col(PRICE))


def beyond_limit(cfg: InputConfig) -> Column:
    """The first ``input.limits`` key a typed line's value is beyond, as ``input.limits.max_quantity (1000000)``;
    null for a line within them all. Quantities and values count either sign (returns are negative)."""
    limits, columns = cfg.limits, cfg.columns
    checks = [
        ("max_quantity", limits.max_quantity, F.abs(F.col(QTY)), columns.quantity),
        ("max_unit_price", limits.max_unit_price, F.abs(F.col(PRICE)), columns.unit_price),
        ("max_amount", limits.max_amount, F.abs(line_value()), "value"),
    ]
    found: Column | None = None
    for key, most, value, mapped in checks:
        if most is None or mapped is None:
            continue
        named = F.lit(f"input.limits.{key} ({most:g})")
        found = F.when(value > F.lit(float(most)), named) if found is None else found.when(value > most, named)
    return found if found is not None else F.lit(None).cast("string")


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


def latest_valid_date(lines_df: DataFrame, not_after: dt.date | None) -> dt.date | None:
    """The date of the latest line without a reason (the default as-of date), from one global aggregation."""
    row = lines_df.agg(F.max(_valid_timestamp(not_after)).alias("latest")).first()
    return _date_of(row["latest"]) if row is not None else None
