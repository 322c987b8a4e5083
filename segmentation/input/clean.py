"""The clean lines of a transaction log as the features read them: typed canonical columns, the return flag, the
signed line amount and what makes an order."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segmentation.config import InputConfig
from segmentation.input.reasons import AMOUNT, LATER_VALID, LINE_ID, PRICE, QTY, REASON, TS


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


def later_lines(labeled_df: DataFrame, cfg: InputConfig) -> DataFrame:
    """The lines dated after the as-of date that pass the per-line checks, as ``clean_lines`` gives lines (what a
    value holdout compares the forecast with; they were not checked for exact copies)."""
    later = labeled_df.filter(F.col(LATER_VALID)).withColumn(REASON, F.lit(None).cast("string"))
    return clean_lines(later, cfg)
