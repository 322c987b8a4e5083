"""The per-customer, per-day state (``features.state``): the features it gives at any as-of date and window equal
those computed from the lines, and a state merged from two deliveries equals the state of all the lines."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segmentation.features import state
from segmentation.features.table import customer_features

from .test_features import CLEAN_SCHEMA

START = dt.datetime(2011, 1, 1)


def random_lines(spark: SparkSession, *, seed: int, lines: int = 3000, customers: int = 80) -> DataFrame:
    """Clean lines over 400 days: orders that span two days, returns, repeated and missing products, cents."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(lines):
        customer = f"c{rng.integers(customers)}"
        when = START + dt.timedelta(days=int(rng.integers(400)), minutes=int(rng.integers(24 * 60)))
        invoice = f"{customer}-{rng.integers(30)}"  # the same invoice on several days: one order, counted once
        returned = bool(rng.random() < 0.1)
        quantity = float(rng.integers(1, 12)) * (-1 if returned else 1)
        price = round(float(rng.uniform(0.1, 40)), 2)
        product = None if rng.random() < 0.05 else f"p{rng.integers(60)}"
        rows.append(("C" + invoice if returned else invoice, customer, when, quantity, price, product, returned))
    frame = spark.createDataFrame([(c, i, t, q, p, pr, "UK", r, q * p) for i, c, t, q, p, pr, r in rows], CLEAN_SCHEMA)
    return frame.withColumn("order_id", F.col("invoice_id"))


def in_window(lines: DataFrame, as_of: dt.date, window_days: int | None) -> DataFrame:
    """The lines dated up to the end of ``as_of`` and within the window: what a run at that date keeps."""
    day = F.to_date("invoice_ts")
    kept = day <= F.lit(as_of)
    if window_days is not None:
        kept = kept & (day >= F.lit(as_of - dt.timedelta(days=window_days - 1)))
    return lines.filter(kept)


def sorted_rows(frame: DataFrame) -> DataFrame:
    return frame.orderBy("customer_id")


@pytest.mark.parametrize(
    ("as_of", "window_days"),
    [(dt.date(2012, 2, 4), None), (dt.date(2011, 9, 30), None), (dt.date(2011, 9, 30), 90), (dt.date(2011, 3, 1), 7)],
)
def test_features_from_the_state_equal_those_from_the_lines(
    spark: SparkSession, as_of: dt.date, window_days: int | None
) -> None:
    lines = random_lines(spark, seed=3)
    expected = customer_features(in_window(lines, as_of, window_days), as_of)
    got = state.features_from_state(state.day_state(lines), as_of, window_days=window_days)
    assert expected.count() > 10
    assert_df_equality(sorted_rows(got), sorted_rows(expected), ignore_nullable=True)


def test_a_merged_state_equals_the_state_of_all_lines(spark: SparkSession) -> None:
    """Two deliveries that share customers and days (a day split across files): merged, the same features."""
    lines = random_lines(spark, seed=5).withColumn("_part", F.rand(11) < 0.5)
    first, second = (lines.filter(F.col("_part") == flag).drop("_part") for flag in (True, False))
    merged = state.merge_states(state.day_state(first), state.day_state(second))
    whole = state.day_state(lines.drop("_part"))
    assert merged.count() == whole.count()
    as_of = dt.date(2012, 2, 4)
    got = state.features_from_state(merged, as_of, window_days=200)
    expected = customer_features(in_window(lines.drop("_part"), as_of, 200), as_of)
    assert_df_equality(sorted_rows(got), sorted_rows(expected), ignore_nullable=True)
    # the sets are the union, whatever the split: the same rows as the state of all lines, money to 1e-9
    pairs = merged.alias("m").join(whole.alias("w"), ["customer_id", state.DAY])
    assert pairs.count() == whole.count()
    assert pairs.filter("m.orders <> w.orders or m.products <> w.products or m.purchased <> w.purchased").count() == 0
    assert pairs.filter("abs(m.net - w.net) > 1e-9 or abs(m.gross - w.gross) > 1e-9").count() == 0


def test_the_state_leaves_out_what_the_input_cannot_give(spark: SparkSession) -> None:
    lines = random_lines(spark, seed=7, lines=200)
    got = state.features_from_state(state.day_state(lines), dt.date(2012, 2, 4), left_out=("avg_items_per_order",))
    assert "avg_items_per_order" not in got.columns and "frequency" in got.columns
