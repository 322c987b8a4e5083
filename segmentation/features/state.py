"""The per-customer, per-day state: what every feature needs, in a form that merges and answers any as-of date.

A run's features depend on its as-of date and window (``features.window_days``), so they cannot be stored and
added to. What can: one row per customer and day of clean lines, holding

- whether the day had a purchase (a line that is not a return),
- the day's sets of purchase orders and purchased products (distinct counts do not add up across days: an
  order or a product seen on two days counts once, so the sets are kept, not their sizes),
- the day's net, gross and returned money, unrounded, and its purchased items.

``features_from_state`` then gives, for any as-of date and window, exactly ``table.customer_features`` of the
clean lines dated in that window: the days come from the day rows, distinct counts from the union of the sets,
money from the sums (rounded to 4 decimals once, for the customer, as ``customer_features`` rounds them).
``merge_states`` merges a state of new lines into an older one, day by day; the state nightly incremental runs
publish (``jobs.incremental``) appends the new rows instead, since every reader here adds up a customer's day
over its rows. Which lines reach it (validation, exact copies across deliveries) is the caller's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segmentation.config import JobConfig, unavailable_features
from segmentation.features.table import FeatureTable, features_of_totals

DAY = "day"
STATE_COLUMNS = ("customer_id", DAY, "purchased", "orders", "products", "net", "gross", "returned", "items")


def _sorted_set(values: Column) -> Column:
    """The distinct non-null values, sorted (the same array whatever order the lines came in)."""
    return F.array_sort(F.collect_set(values))


def _union_of_sets(arrays: Column) -> Column:
    """The sorted union of the groups' sets."""
    return F.array_sort(F.array_distinct(F.flatten(F.collect_list(arrays))))


def day_state(clean_df: DataFrame) -> DataFrame:
    """One row per customer and day of ``clean_df`` (clean lines as ``input.clean.clean_lines`` gives them)."""
    purchase = ~F.col("is_return")
    return clean_df.groupBy("customer_id", F.to_date("invoice_ts").alias(DAY)).agg(
        F.max(purchase).alias("purchased"),
        _sorted_set(F.when(purchase, F.col("order_id"))).alias("orders"),
        _sorted_set(F.when(purchase, F.col("product_id"))).alias("products"),
        F.sum("amount").alias("net"),
        F.sum(F.when(purchase, F.col("amount")).otherwise(0.0)).alias("gross"),
        F.sum(F.when(~purchase, -F.col("amount")).otherwise(0.0)).alias("returned"),
        F.sum(F.when(purchase, F.col("quantity")).otherwise(0.0)).alias("items"),
    )


def merge_states(older_df: DataFrame, newer_df: DataFrame) -> DataFrame:
    """One state from two: a customer's day in both gets the union of its sets and the sum of its money.

    Adding lines twice adds their money twice: keeping a line that was absorbed already out of ``newer_df`` is the
    caller's (the exact-copy rule of validation).
    """
    both = older_df.select(*STATE_COLUMNS).unionByName(newer_df.select(*STATE_COLUMNS))
    return both.groupBy("customer_id", DAY).agg(
        F.max("purchased").alias("purchased"),
        _union_of_sets(F.col("orders")).alias("orders"),
        _union_of_sets(F.col("products")).alias("products"),
        *[F.sum(c).alias(c) for c in ("net", "gross", "returned", "items")],
    )


def days_in_window(state_df: DataFrame, as_of: dt.date, window_days: int | None) -> DataFrame:
    """The state's rows dated up to ``as_of`` and, with a window, within its ``window_days`` days."""
    inside = F.col(DAY) <= F.lit(as_of)
    if window_days is not None:
        inside = inside & (F.col(DAY) >= F.lit(as_of - dt.timedelta(days=window_days - 1)))
    return state_df.filter(inside)


def features_from_state(
    state_df: DataFrame, as_of: dt.date, *, window_days: int | None = None, left_out: Collection[str] = ()
) -> DataFrame:
    """Every customer's features at ``as_of`` over the window, as ``customer_features`` gives them from the lines."""
    purchased = F.col("purchased")
    totals = (
        days_in_window(state_df, as_of, window_days)
        .groupBy("customer_id")
        .agg(
            F.max(F.when(purchased, F.col(DAY))).alias("last_purchase"),
            F.min(F.when(purchased, F.col(DAY))).alias("first_purchase"),
            F.max(DAY).alias("last_seen"),
            F.min(DAY).alias("first_seen"),
            F.size(_union_of_sets(F.col("orders"))).alias("orders"),
            *[F.round(F.sum(c), 4).alias(c) for c in ("net", "gross", "returned")],
            F.sum("items").alias("items"),
            F.size(_union_of_sets(F.col("products"))).alias("products"),
            F.size(F.collect_set(F.when(purchased, F.date_format(DAY, "yyyy-MM")))).alias("months"),
        )
    )
    return features_of_totals(totals, as_of, left_out=left_out)


def value_lines(state_df: DataFrame) -> DataFrame:
    """The state's days as the clean lines ``value.summary`` reads: one per customer and day, a purchase when the
    day had one, holding the day's net (a purchase day's value is its net: ``value.summary``)."""
    return state_df.select(
        "customer_id",
        F.col(DAY).cast("timestamp").alias("invoice_ts"),
        (~F.col("purchased")).alias("is_return"),
        F.col("net").alias("amount"),
    )


def days_after(state_df: DataFrame, as_of: dt.date) -> DataFrame:
    """The state's rows dated after ``as_of`` (a value holdout's days)."""
    return state_df.filter(F.col(DAY) > F.lit(as_of))


def state_feature_table(state_df: DataFrame, as_of: dt.date, cfg: JobConfig) -> FeatureTable:
    """``table.feature_table`` of an incremental run: every customer's features at ``as_of`` from its state."""
    left_out = tuple(unavailable_features(cfg.input))
    features = features_from_state(state_df, as_of, window_days=cfg.features.window_days, left_out=left_out)
    return FeatureTable(features, "monetary")
