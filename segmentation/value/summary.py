"""Each customer's buy-till-you-die summary from a log's clean lines, in Spark: ``x`` (repeat purchase days),
``t_x`` and ``T`` in the model's time unit, and the mean value of the repeat purchase days; and the distinct
``(x, t_x, T)`` tuples with their counts, which are all a model's likelihood needs.

The rules, stated once:

- a *purchase day* is a day on which the customer has at least one purchase line (a line that is not a return);
  its value is the net of all that customer's lines of that day (purchases minus the returns of that day);
  returns on a day without a purchase start no purchase day and are left out of the values (the features net
  every return into ``monetary``);
- ``x`` is the number of purchase days after the first; ``t_x`` is from the first to the last purchase day and
  ``T`` from the first purchase day to the as-of date, both in days divided by the time unit's days (1 or 7);
- ``mean_value`` is the mean value of the purchase days after the first (null when ``x`` is 0).
"""

from __future__ import annotations

import datetime as dt
from typing import cast

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

UNIT_DAYS = {"day": 1, "week": 7}
SUMMARY_COLUMNS = ("customer_id", "x", "t_x", "T", "mean_value")
SPEND_BIN_WIDTH = 1e-3  # the width of a spend bin in ln(mean_value): 0.1% apart (``value_pairs``)


def purchase_days(clean_df: DataFrame) -> DataFrame:
    """``customer_id``, ``day``, ``value``: one row per customer and purchase day (see the module)."""
    day = F.to_date("invoice_ts").alias("day")
    daily = clean_df.groupBy("customer_id", day).agg(
        F.max(F.when(~F.col("is_return"), F.lit(1)).otherwise(F.lit(0))).alias("_bought"),
        F.round(F.sum("amount"), 4).alias("value"),  # rounded: the same double in any order of addition
    )
    return daily.where(F.col("_bought") == 1).drop("_bought")


def customer_summary(clean_df: DataFrame, as_of: dt.date, *, time_unit: str) -> DataFrame:
    """One row per customer with a purchase day up to ``as_of``: ``SUMMARY_COLUMNS`` (``x`` a long, the rest
    doubles). ``clean_df`` holds the clean lines of the run's window (``input.clean.clean_lines``)."""
    unit = float(UNIT_DAYS[time_unit])
    days = purchase_days(clean_df).where(F.col("day") <= F.lit(as_of))
    per_customer = days.groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("_days"),
        F.min("day").alias("_first"),
        F.max("day").alias("_last"),
        F.sum("value").alias("_total"),
        F.min_by("value", "day").alias("_first_value"),
    )
    x = F.col("_days") - 1
    repeat_total = F.col("_total") - F.col("_first_value")
    return per_customer.select(
        "customer_id",
        x.cast("long").alias("x"),
        (F.datediff("_last", "_first") / F.lit(unit)).alias("t_x"),
        (F.datediff(F.lit(as_of), "_first") / F.lit(unit)).alias("T"),
        F.when(x > 0, F.round(repeat_total / x, 6)).alias("mean_value"),
    )


def likelihood_tuples(summary_df: DataFrame) -> DataFrame:
    """The distinct ``(x, t_x, T)`` of the customers with their ``customers`` count: the likelihood of a
    buy-till-you-die model depends on nothing else, so a fit on these, weighted, equals a fit on every customer.
    ``non_positive_mean_value`` counts the tuple's repeat buyers whose mean repeat value is 0 or less."""
    non_positive = F.when((F.col("x") > 0) & (F.col("mean_value") <= 0), 1).otherwise(0)
    return summary_df.groupBy("x", "t_x", "T").agg(
        F.count(F.lit(1)).alias("customers"), F.sum(non_positive).alias("non_positive_mean_value")
    )


def value_pairs(summary_df: DataFrame, *, width: float = SPEND_BIN_WIDTH) -> DataFrame:
    """The customers who bought again at a positive mean value, in bins of ``x`` and ``ln(mean_value)`` (``width``
    wide), each with its ``customers`` count and their arithmetic ``mean_value``: what the Gamma-Gamma spend model
    is fitted on.

    The bins bound what is collected by the spread of ``x`` and of the values, whatever the number of customers
    (at most ``ln(largest / smallest) / width + 1`` bins per ``x``). The likelihood's terms in ``m``,
    ``(p x - 1) ln m`` and ``-(p x + q) ln(x m + v)``, are smooth and concave in ``ln m``, so a bin's customers
    scored at their mean move each term by at most its factor times ``width ** 2 / 8`` (1.3e-7 at the default):
    far below any estimate's standard error (the tests compare with the per-customer fit). The mean is summed as
    a decimal, so it is the same double in any order of addition (as a double only beyond a decimal's 10 ** 32).
    """
    qualified = summary_df.where((F.col("x") > 0) & (F.col("mean_value") > 0))
    bin_of = F.floor(F.log(F.col("mean_value")) / F.lit(width)).alias("_bin")
    exact = F.avg(F.col("mean_value").try_cast(T.DecimalType(38, 6))).cast("double")
    mean = F.coalesce(exact, F.avg("mean_value")).alias("mean_value")
    return qualified.groupBy("x", bin_of).agg(F.count(F.lit(1)).alias("customers"), mean).drop("_bin")


def to_pandas(frame: DataFrame) -> pd.DataFrame:
    """A small frame (tuples, k rows, bins) on the driver as pandas."""
    return cast(pd.DataFrame, frame.toPandas())
