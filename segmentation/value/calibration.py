"""Holdout calibration: the value model's forecast checked against what the customers did after the as-of date.

The holdout is the lines dated after the as-of date that pass the per-line checks (up to ``value.holdout_days``, or
to the latest such line); a customer's actual repeat purchases there are its purchase days (``value.summary``'s
rule), and its prediction is E[X(span) | x, t_x, T] for the holdout's span. Customers whose first purchase is in
the holdout are not in the calibration. The table has one row per calibration frequency x = 0, 1, ..., 6 and 7+:
customers, mean predicted and mean actual repeat purchases; the numbers are the totals, the mean absolute error
per customer, and two AUCs for "bought again in the holdout" (ties count one half): of P(alive), and of the
expected purchases. The first is often below one half: both models hold a customer who never bought again (x = 0)
to be alive (P(alive) = 1 under BG/NBD), and most of those do not buy in the holdout; the expected purchases rank
customers by what the model expects of them, P(alive) and rate together.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segmentation.value import models
from segmentation.value.stage import Fitted
from segmentation.value.summary import UNIT_DAYS, likelihood_tuples, purchase_days, to_pandas

TOP_BIN = 7  # frequencies from this on share the last row ("7+")
CALIBRATION = "value_calibration"
CALIBRATION_SCHEMA = T.StructType(
    [
        T.StructField("frequency", T.StringType(), False),
        T.StructField("customers", T.LongType(), False),
        T.StructField("mean_predicted", T.DoubleType(), False),
        T.StructField("mean_actual", T.DoubleType(), False),
        T.StructField("holdout_start", T.DateType(), False),
        T.StructField("holdout_end", T.DateType(), False),
    ]
)


@dataclass(frozen=True)
class Calibration:
    """The calibration table (pandas, ``CALIBRATION_SCHEMA`` without the dates) and its numbers."""

    table: pd.DataFrame
    start: dt.date
    end: dt.date
    span: float  # in the model's time unit
    customers: int
    predicted_total: float
    actual_total: float
    mean_absolute_error: float
    auc: float | None  # of P(alive)
    auc_expected_purchases: float | None

    def as_dict(self) -> dict[str, object]:
        """The manifest's numbers."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "span": self.span,
            "customers": self.customers,
            "predicted_total": round(self.predicted_total, 4),
            "actual_total": round(self.actual_total, 4),
            "mean_absolute_error": round(self.mean_absolute_error, 6),
            "auc": None if self.auc is None else round(self.auc, 6),
            "auc_expected_purchases": None
            if self.auc_expected_purchases is None
            else round(self.auc_expected_purchases, 6),
            "table": self.table.to_dict(orient="records"),
        }

    def frame(self, spark: SparkSession) -> DataFrame:
        """The table with the holdout's dates, as a DataFrame."""
        rows = [(*r, self.start, self.end) for r in self.table.itertuples(index=False, name=None)]
        return spark.createDataFrame(rows, CALIBRATION_SCHEMA)


def holdout_end(holdout_df: DataFrame, as_of: dt.date, days: int | None) -> dt.date | None:
    """The holdout's last day: ``days`` after the as-of date, or the latest holdout line's date (None: no line)."""
    if days is not None:
        return as_of + dt.timedelta(days=days)
    row = holdout_df.agg(F.max(F.to_date("invoice_ts")).alias("last")).first()
    return row["last"] if row else None


def actual_purchases(holdout_df: DataFrame, as_of: dt.date, end: dt.date) -> DataFrame:
    """``customer_id``, ``actual``: each customer's purchase days after ``as_of`` up to ``end``."""
    days = purchase_days(holdout_df).where((F.col("day") > F.lit(as_of)) & (F.col("day") <= F.lit(end)))
    return days.groupBy("customer_id").agg(F.count(F.lit(1)).cast("double").alias("actual"))


def auc(counts: pd.DataFrame) -> float | None:
    """The AUC from ``score``, ``positives``, ``negatives`` per distinct score (ties count one half)."""
    ordered = counts.sort_values("score")
    pos, neg = ordered["positives"].to_numpy(float), ordered["negatives"].to_numpy(float)
    if pos.sum() == 0 or neg.sum() == 0:
        return None
    below = neg.cumsum() - neg  # negatives with a lower score
    return float((pos * (below + neg / 2)).sum() / (pos.sum() * neg.sum()))


def calibrate(
    spark: SparkSession,
    summary_df: DataFrame,
    holdout_df: DataFrame,
    *,
    fitted: Fitted,
    as_of: dt.date,
    days: int | None,
    tuples: pd.DataFrame | None = None,
) -> Calibration | None:
    """The calibration of ``fitted`` against the holdout lines (None when there is no holdout line); ``tuples``:
    the summary's distinct tuples if already collected (``stage.sorted_tuples``)."""
    end = holdout_end(holdout_df, as_of, days)
    if end is None or end <= as_of:
        return None
    span = (end - as_of).days / UNIT_DAYS[fitted.time_unit]
    if tuples is None:
        tuples = to_pandas(likelihood_tuples(summary_df)).sort_values(["x", "t_x", "T"], ignore_index=True)
    tuples = tuples[["x", "t_x", "T"]]
    xs = models.Tuples(tuples["x"], tuples["t_x"], tuples["T"])
    predicted = models.expected_purchases(fitted.purchases, span, xs)
    scored = tuples.assign(predicted=predicted, p=models.p_alive(fitted.purchases, xs))
    schema = "x long, t_x double, T double, predicted double, p double"
    predictions = spark.createDataFrame(scored.astype({"x": "int64"}), schema)
    actual = actual_purchases(holdout_df, as_of, end)
    rows = summary_df.join(F.broadcast(predictions), ["x", "t_x", "T"]).join(actual, "customer_id", "left")
    rows = rows.select(
        F.least(F.col("x"), F.lit(TOP_BIN)).alias("bin"),
        "predicted",
        F.coalesce("actual", F.lit(0.0)).alias("actual"),
        F.round("p", 9).alias("p"),
    )
    bins = to_pandas(
        rows.groupBy("bin")
        .agg(
            F.count(F.lit(1)).alias("customers"),
            F.avg("predicted").alias("mean_predicted"),
            F.avg("actual").alias("mean_actual"),
            F.sum("predicted").alias("_predicted"),
            F.sum("actual").alias("_actual"),
            F.sum(F.abs(F.col("predicted") - F.col("actual"))).alias("_error"),
        )
        .orderBy("bin")
    )
    bought = F.col("actual") > 0
    counts = [
        F.sum(F.when(bought, 1).otherwise(0)).alias("positives"),
        F.sum(F.when(bought, 0).otherwise(1)).alias("negatives"),
    ]
    by_alive = to_pandas(rows.groupBy(F.col("p").alias("score")).agg(*counts))
    by_expected = to_pandas(rows.groupBy(F.round("predicted", 9).alias("score")).agg(*counts))
    customers = int(bins["customers"].sum())
    table = pd.DataFrame(
        {
            "frequency": [f"{b}+" if b == TOP_BIN else str(b) for b in bins["bin"]],
            "customers": bins["customers"].astype("int64"),
            "mean_predicted": bins["mean_predicted"].round(6),
            "mean_actual": bins["mean_actual"].round(6),
        }
    )
    return Calibration(
        table=table,
        start=as_of + dt.timedelta(days=1),
        end=end,
        span=span,
        customers=customers,
        predicted_total=float(bins["_predicted"].sum()),
        actual_total=float(bins["_actual"].sum()),
        mean_absolute_error=float(bins["_error"].sum()) / customers if customers else 0.0,
        auc=auc(by_alive),
        auc_expected_purchases=auc(by_expected),
    )
