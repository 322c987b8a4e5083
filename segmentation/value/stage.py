"""The value stage of a run: every customer's summary in Spark, the models fitted on the driver from the distinct
``(x, t_x, T)`` tuples (and ``(x, mean_value)`` pairs), each tuple scored on the driver and the scores joined back
to the customers in Spark: no per-customer collect.

- ``p_alive``: P(alive at the as-of date); ``expected_purchases``: repeat purchases (purchase days) expected over
  ``value.horizon_days`` after the as-of date;
- ``expected_value``: ``expected_purchases`` times the expected value of a purchase (Gamma-Gamma: a mix of the
  customer's own mean repeat value and the population's; the population's for a customer who has not bought again);
- ``clv``: the same value discounted: the horizon in monthly steps (whole months, at least one), each step's
  expected purchases discounted from its end at ``(1 + value.discount_rate) ** (years after the as-of date)``.

A fit the data cannot support (nobody bought twice, a model that does not converge) does not fail the run: the
section says why it was not fitted and the run publishes its segments without value tables.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segmentation.config import ValueConfig
from segmentation.errors import RunFailed
from segmentation.value import models
from segmentation.value.summary import UNIT_DAYS, customer_summary, likelihood_tuples, to_pandas, value_pairs

log = logging.getLogger(__name__)

SEGMENT = "segment"  # the segments' id column (model.pipeline.SEGMENT; value does not import the model)
CUSTOMER_VALUE = "customer_value"
VALUE_MODEL = "value_model"
DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12
ALIVE = 0.5  # a customer whose P(alive) is below this is "probably no longer active"
SCORE_COLUMNS = ("p_alive", "expected_purchases", "discounted_purchases")
VALUE_COLUMNS = ("customer_id", "x", "t_x", "T", "mean_value", "p_alive", "expected_purchases", "expected_value", "clv")


@dataclass(frozen=True)
class Fitted:
    """The two fits of a run and the settings they score with."""

    purchases: models.Fit
    spend: models.Fit
    time_unit: str
    horizon_days: int
    discount_rate: float

    @property
    def horizon(self) -> float:
        """The horizon in the model's time unit."""
        return self.horizon_days / UNIT_DAYS[self.time_unit]


@dataclass(frozen=True)
class ValueOutcome:
    """What the stage found: the fits (None when not fitted, with the reason), the customers' summary and values."""

    fitted: Fitted | None
    reason: str | None
    summary: DataFrame | None
    values: DataFrame | None  # VALUE_COLUMNS, one row per customer with a purchase day
    spend_left_out: dict[str, int]
    tuples: pd.DataFrame | None = None  # the summary's distinct tuples, collected and sorted (``sorted_tuples``)


def sorted_tuples(summary_df: DataFrame) -> pd.DataFrame:
    """The distinct tuples on the driver in one order, whatever order Spark returned them in: the weighted
    likelihood is a sum, and the same terms added in another order can move the optimum in its last digits."""
    return to_pandas(likelihood_tuples(summary_df)).sort_values(["x", "t_x", "T"], ignore_index=True)


def fit_models(summary_df: DataFrame, settings: ValueConfig, *, tuples: pd.DataFrame | None = None) -> Fitted:
    """Both models fitted on the distinct tuples and pairs of ``summary_df`` (collected: bounded by how many
    distinct summaries there are, not by customers; ``tuples``: those already collected); RunFailed naming the
    model when a fit is impossible."""
    tuples = sorted_tuples(summary_df) if tuples is None else tuples
    log.info("value: %d customers in %d distinct (x, t_x, T) tuples", int(tuples["customers"].sum()), len(tuples))
    purchase_tuples = models.Tuples(tuples["x"], tuples["t_x"], tuples["T"], tuples["customers"])
    fit = models.fit_pareto_nbd if settings.model == models.PARETO_NBD else models.fit_bgnbd
    purchases = fit(purchase_tuples, penalty=settings.penalty)
    pairs = to_pandas(value_pairs(summary_df)).sort_values(["x", "mean_value"], ignore_index=True)
    if pairs.empty:
        models.fit_gamma_gamma([], [])  # raises RunFailed naming the spend model
    spend = models.fit_gamma_gamma(pairs["x"], pairs["mean_value"], pairs["customers"], penalty=settings.penalty)
    _, q, _ = spend.estimates
    if q <= 1:
        raise RunFailed(f"value model {models.GAMMA_GAMMA}: q = {q:.3g} <= 1, so the mean spend is not finite")
    return Fitted(purchases, spend, settings.time_unit, settings.horizon_days, settings.discount_rate)


def tuple_scores(fitted: Fitted, tuples: pd.DataFrame) -> pd.DataFrame:
    """``x``, ``t_x``, ``T`` with P(alive), expected purchases over the horizon and their discounted sum."""
    xs = models.Tuples(tuples["x"], tuples["t_x"], tuples["T"])
    unit_years = UNIT_DAYS[fitted.time_unit] / DAYS_PER_YEAR
    steps = max(1, round(fitted.horizon_days / DAYS_PER_MONTH))
    return tuples[["x", "t_x", "T"]].assign(
        p_alive=models.p_alive(fitted.purchases, xs),
        expected_purchases=models.expected_purchases(fitted.purchases, fitted.horizon, xs),
        discounted_purchases=models.discounted_purchases(
            fitted.purchases,
            xs,
            horizon=fitted.horizon,
            discount_rate_per_period=models.per_period_rate(fitted.discount_rate, unit_years),
            steps=steps,
        ),
    )


TUPLE_SCHEMA = T.StructType(
    [
        T.StructField("x", T.LongType()),
        T.StructField("t_x", T.DoubleType()),
        T.StructField("T", T.DoubleType()),
        *[T.StructField(name, T.DoubleType()) for name in SCORE_COLUMNS],
    ]
)


def customer_values(
    spark: SparkSession, summary_df: DataFrame, fitted: Fitted, *, tuples: pd.DataFrame | None = None
) -> DataFrame:
    """``VALUE_COLUMNS`` for every customer of ``summary_df``: its distinct tuples (``tuples``, if collected
    already) are scored on the driver and joined back."""
    tuples = sorted_tuples(summary_df) if tuples is None else tuples
    scores = tuple_scores(fitted, tuples)
    scored = spark.createDataFrame(scores.astype({"x": "int64"}), TUPLE_SCHEMA)
    p, q, v = fitted.spend.estimates
    seen = (F.col("x") > 0) & (F.col("mean_value") > 0)
    own = (F.lit(p * v) + F.lit(p) * F.col("x") * F.col("mean_value")) / (F.lit(p) * F.col("x") + F.lit(q - 1))
    spend = F.when(seen, own).otherwise(F.lit(models.mean_spend(fitted.spend)))
    joined = summary_df.join(F.broadcast(scored) if len(scores) <= 1_000_000 else scored, ["x", "t_x", "T"])
    return joined.select(
        "customer_id",
        "x",
        "t_x",
        "T",
        "mean_value",
        F.round("p_alive", 6).alias("p_alive"),
        F.round("expected_purchases", 6).alias("expected_purchases"),
        F.round(F.col("expected_purchases") * spend, 4).alias("expected_value"),
        F.round(F.col("discounted_purchases") * spend, 4).alias("clv"),
    )


def spend_left_out(tuples: pd.DataFrame) -> dict[str, int]:
    """Customers the spend model leaves out, by why: no repeat purchase, or a mean repeat value of 0 or less
    (from the collected ``likelihood_tuples``)."""
    return {
        "no_repeat_purchase": int(tuples.loc[tuples["x"] == 0, "customers"].sum()),
        "mean_value_not_positive": int(tuples["non_positive_mean_value"].sum()),
    }


def value_of_customers(
    spark: SparkSession,
    clean_df: DataFrame,
    *,
    as_of: dt.date,
    settings: ValueConfig,
    keep: Callable[[DataFrame], DataFrame],
    trained: Fitted | None = None,
) -> ValueOutcome:
    """The stage: summary, fits (or the ``trained`` ones, as a scoring run applies them), values; a fit the data
    cannot support gives the reason instead of values."""
    time_unit = trained.time_unit if trained else settings.time_unit
    summary_df = keep(customer_summary(clean_df, as_of, time_unit=time_unit))
    tuples = sorted_tuples(summary_df)
    left_out = spend_left_out(tuples)
    try:
        fitted = trained or fit_models(summary_df, settings, tuples=tuples)
    except RunFailed as exc:
        log.warning("value: not fitted: %s", exc)
        return ValueOutcome(None, str(exc), summary_df, None, left_out, tuples)
    for fit in (fitted.purchases, fitted.spend):
        log.info("value: %s %s log-likelihood %.2f", fit.model, fit.params, fit.log_likelihood)
    values = customer_values(spark, summary_df, fitted, tuples=tuples)
    return ValueOutcome(fitted, None, summary_df, values, left_out, tuples)


def model_rows(fitted: Fitted) -> list[dict[str, Any]]:
    """The ``value_model`` table: one row per parameter of both fits, with each fit's numbers and the settings."""
    rows = []
    for fit in (fitted.purchases, fitted.spend):
        for name, estimate, error in zip(fit.names, fit.estimates, fit.standard_errors, strict=True):
            rows.append(
                {
                    "model": fit.model,
                    "parameter": name,
                    "estimate": estimate,
                    "std_error": error if np.isfinite(error) else None,
                    "log_likelihood": fit.log_likelihood,
                    "customers": round(fit.customers),
                    "tuples": fit.tuples,
                    "time_unit": fitted.time_unit,
                    "horizon_days": fitted.horizon_days,
                    "discount_rate": fitted.discount_rate,
                    "penalty": fit.penalty,
                }
            )
    return rows


MODEL_SCHEMA = T.StructType(
    [
        T.StructField("model", T.StringType(), False),
        T.StructField("parameter", T.StringType(), False),
        T.StructField("estimate", T.DoubleType(), False),
        T.StructField("std_error", T.DoubleType(), True),
        T.StructField("log_likelihood", T.DoubleType(), False),
        T.StructField("customers", T.LongType(), False),
        T.StructField("tuples", T.LongType(), False),
        T.StructField("time_unit", T.StringType(), False),
        T.StructField("horizon_days", T.LongType(), False),
        T.StructField("discount_rate", T.DoubleType(), False),
        T.StructField("penalty", T.DoubleType(), False),
    ]
)


def model_frame(spark: SparkSession, fitted: Fitted) -> DataFrame:
    """``model_rows`` as a DataFrame."""
    rows = model_rows(fitted)
    return spark.createDataFrame([tuple(r[f.name] for f in MODEL_SCHEMA.fields) for r in rows], MODEL_SCHEMA)


PROFILE_SCHEMA = T.StructType(
    [
        T.StructField(SEGMENT, T.IntegerType(), False),
        T.StructField("valued_customers", T.LongType(), True),
        T.StructField("expected_value", T.DoubleType(), True),
        T.StructField("expected_value_share", T.DoubleType(), True),
        T.StructField("mean_clv", T.DoubleType(), True),
        T.StructField("median_clv", T.DoubleType(), True),
        T.StructField("mean_p_alive", T.DoubleType(), True),
        T.StructField("probably_inactive_share", T.DoubleType(), True),
    ]
)


VALUE_PROFILE_COLUMNS = tuple(f.name for f in PROFILE_SCHEMA.fields if f.name != SEGMENT)


def with_segment_values(spark: SparkSession, profiles_df: DataFrame, rows: list[dict[str, Any]]) -> DataFrame:
    """The profiles table with each segment's value columns (``segment_values``; null where there are none)."""
    names = [f.name for f in PROFILE_SCHEMA.fields]
    frame = spark.createDataFrame([tuple(r.get(n) for n in names) for r in rows], PROFILE_SCHEMA)
    return profiles_df.join(frame, SEGMENT, "left").orderBy(SEGMENT)


def segment_values(values_df: DataFrame) -> list[dict[str, Any]]:
    """Per segment of ``values_df`` (``VALUE_COLUMNS`` and ``segment``; k rows, one aggregation): customers with a
    value, their expected value and its share, mean and median ``clv``, mean ``p_alive``, the share of them probably
    no longer active (P(alive) below ``ALIVE``), and the sums the run's totals add up (``_purchases``, ``_clv``,
    ``_longest_T``). Customers without a segment are left out."""
    rows = (
        values_df.where(F.col(SEGMENT).isNotNull())
        .groupBy(SEGMENT)
        .agg(
            F.count(F.lit(1)).alias("valued_customers"),
            F.sum("expected_value").alias("expected_value"),
            F.avg("clv").alias("mean_clv"),
            F.percentile_approx("clv", 0.5, 10000).cast("double").alias("median_clv"),
            F.avg("p_alive").alias("mean_p_alive"),
            F.avg(F.when(F.col("p_alive") < ALIVE, 1.0).otherwise(0.0)).alias("probably_inactive_share"),
            F.sum("expected_purchases").alias("_purchases"),
            F.sum("clv").alias("_clv"),
            F.max("T").alias("_longest_T"),
        )
        .orderBy(SEGMENT)
        .collect()
    )
    out = []
    all_value = sum(float(r["expected_value"] or 0.0) for r in rows)
    for r in rows:
        row = r.asDict()
        row["expected_value"] = round(float(row["expected_value"] or 0.0), 2)
        row["expected_value_share"] = row["expected_value"] / all_value if all_value else None
        out.append(row)
    return out
