"""Per-customer features: from a log's clean lines (built-in Spark functions only), or a customer table's own.

Every day count is measured against an explicit as-of date, never today's date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segmentation.config import TRANSACTION_FEATURES, JobConfig, unavailable_features
from segmentation.input.clean import clean_lines
from segmentation.input.customers import clean_customers
from segmentation.input.validate import Validated


@dataclass(frozen=True)
class FeatureTable:
    """One row per customer, and the column that holds each customer's revenue (none for a customer table)."""

    frame: DataFrame
    revenue_column: str | None


def feature_table(validated: Validated, cfg: JobConfig) -> FeatureTable:
    """The features of every customer with a clean line: computed for a log, as given for a customer table."""
    if cfg.input.kind == "customers":
        return FeatureTable(clean_customers(validated.lines, cfg.input), None)
    clean = clean_lines(validated.lines, cfg.input)
    left_out = tuple(unavailable_features(cfg.input))
    return FeatureTable(customer_features(clean, validated.as_of, left_out=left_out), "monetary")


def _safe_ratio(numerator: Column, denominator: Column) -> Column:
    return F.when(denominator > 0, numerator / denominator).otherwise(F.lit(0.0))


def _money_sum(amounts: Column) -> Column:
    """The sum of money amounts, rounded to 4 decimals: the same double in any order of addition.

    Doubles added in another order (other partitions, another shuffle) differ in their last bits, and a ratio
    of such a sum can then round to another 6th decimal. Retail prices have at most 3 decimals (Online
    Retail's smallest is 0.001), so the exact total has no more and the rounding only removes the noise.
    """
    return F.round(F.sum(amounts), 4)


def _distinct(values: Column) -> Column:
    """How many distinct non-null values: the size of their set.

    Not ``count_distinct``: three of those in one aggregation make Spark expand every line three times
    and shuffle the copies; a set per customer is one hash aggregation over the lines as they are.
    """
    return F.size(F.collect_set(values))


def customer_features(clean_df: DataFrame, as_of: dt.date, *, left_out: Collection[str] = ()) -> DataFrame:
    """One row per customer: the features in ``TRANSACTION_FEATURES`` (all doubles) but those ``left_out`` (the
    input cannot give them: ``config.unavailable_features``), and the customer id.

    An order is a distinct ``order_id`` among the purchases. Purchases are lines that are not returns; returns
    (negative quantity or amount, or a ``C`` invoice) are netted into ``monetary`` and measured by
    ``return_rate`` (returned value / purchased value, at most 1). Values are rounded to 6 decimals.
    """
    purchase = ~F.col("is_return")
    day = F.to_date("invoice_ts")
    aggregated = clean_df.groupBy("customer_id").agg(
        F.max(F.when(purchase, day)).alias("last_purchase"),
        F.min(F.when(purchase, day)).alias("first_purchase"),
        F.max(day).alias("last_seen"),
        F.min(day).alias("first_seen"),
        _distinct(F.when(purchase, F.col("order_id"))).alias("orders"),
        _money_sum(F.col("amount")).alias("net"),
        _money_sum(F.when(purchase, F.col("amount")).otherwise(0.0)).alias("gross"),
        _money_sum(F.when(~purchase, -F.col("amount")).otherwise(0.0)).alias("returned"),
        F.sum(F.when(purchase, F.col("quantity")).otherwise(0.0)).alias("items"),
        _distinct(F.when(purchase, F.col("product_id"))).alias("products"),
        _distinct(F.when(purchase, F.date_format("invoice_ts", "yyyy-MM"))).alias("months"),
    )
    return features_of_totals(aggregated, as_of, left_out=left_out)


def features_of_totals(totals_df: DataFrame, as_of: dt.date, *, left_out: Collection[str] = ()) -> DataFrame:
    """The features from one row of totals per customer (``customer_features``' aggregation, or the same totals
    from the per-day state: ``features.state``): days, orders, money sums, items, products and months."""
    as_of_col = F.lit(as_of)
    orders = F.col("orders").cast("double")
    tenure = F.datediff(as_of_col, F.col("first_seen")).cast("double")
    span = F.datediff(F.col("last_purchase"), F.col("first_purchase")).cast("double")
    features = {
        "recency_days": F.datediff(as_of_col, F.coalesce("last_purchase", "last_seen")).cast("double"),
        "frequency": orders,
        "monetary": F.col("net").cast("double"),
        "tenure_days": tenure,
        "avg_order_value": _safe_ratio(F.col("gross"), orders),
        "avg_items_per_order": _safe_ratio(F.col("items"), orders),
        "distinct_products": F.col("products").cast("double"),
        "return_rate": F.when(F.col("gross") > 0, F.least(F.col("returned") / F.col("gross"), F.lit(1.0)))
        .when(F.col("returned") > 0, F.lit(1.0))
        .otherwise(F.lit(0.0)),
        "mean_days_between_orders": F.when(orders > 1, span / (orders - 1)).otherwise(tenure),
        "active_months": F.col("months").cast("double"),
    }
    assert tuple(features) == TRANSACTION_FEATURES
    # Money sums are rounded before any ratio, and every feature after: lines added up in another order
    # give the very same features.
    kept = {name: expr for name, expr in features.items() if name not in left_out}
    return totals_df.select("customer_id", *[F.round(expr, 6).alias(name) for name, expr in kept.items()])
