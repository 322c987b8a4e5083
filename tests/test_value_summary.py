"""Each customer's buy-till-you-die summary in Spark (``value.summary``): on hand-made lines, and on the CDNOW
purchase log against Hardie's published summary of the same customers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segmentation.value import models
from segmentation.value.summary import SPEND_BIN_WIDTH, customer_summary, likelihood_tuples, value_pairs

from .conftest import REPO

CDNOW = REPO.parent / "shared" / "data" / "cdnow"
LINES = "customer_id string, invoice_ts timestamp, is_return boolean, amount double"


def lines(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, LINES)


def at(day: str, hour: int = 10) -> dt.datetime:
    return dt.datetime.fromisoformat(day) + dt.timedelta(hours=hour)


def test_purchase_days_count_once_and_net_the_day_s_returns(spark: SparkSession) -> None:
    rows = [
        ("a", at("2011-01-01"), False, 10.0),
        ("a", at("2011-01-01", 15), False, 5.0),  # the same day: one purchase day worth 15
        ("a", at("2011-01-08"), False, 30.0),
        ("a", at("2011-01-08", 12), True, -10.0),  # a return that day: the day is worth 20
        ("a", at("2011-01-22"), False, 40.0),
        ("a", at("2011-01-25"), True, -5.0),  # a return on a day without a purchase: no purchase day
        ("b", at("2011-01-15"), False, 7.0),  # one purchase: x = 0, no mean value
        ("c", at("2011-01-20"), True, -3.0),  # only a return: no purchase day, not a customer of the model
        ("d", at("2011-02-10"), False, 9.0),  # after the as-of date: not in the summary
        (None, at("2011-01-03"), False, 1.0),  # a null id groups apart (validation never lets one through)
    ]
    summary = customer_summary(lines(spark, rows), dt.date(2011, 1, 29), time_unit="week")
    got = {r["customer_id"]: r.asDict() for r in summary.collect() if r["customer_id"] is not None}
    assert set(got) == {"a", "b"}
    assert got["a"] == {"customer_id": "a", "x": 2, "t_x": 3.0, "T": 4.0, "mean_value": 30.0}  # (20 + 40) / 2
    assert got["b"] == {"customer_id": "b", "x": 0, "t_x": 0.0, "T": 2.0, "mean_value": None}
    days = customer_summary(lines(spark, rows), dt.date(2011, 1, 29), time_unit="day")
    assert {r["customer_id"]: (r["t_x"], r["T"]) for r in days.collect()}["a"] == (21.0, 28.0)


def test_tuples_and_value_pairs_carry_the_counts(spark: SparkSession) -> None:
    summary = spark.createDataFrame(
        [("a", 2, 3.0, 4.0, 30.0), ("b", 2, 3.0, 4.0, 30.0), ("c", 0, 0.0, 4.0, None), ("d", 1, 1.0, 4.0, -2.0)],
        "customer_id string, x long, t_x double, T double, mean_value double",
    )
    tuples = {(r["x"], r["t_x"], r["T"]): r["customers"] for r in likelihood_tuples(summary).collect()}
    assert tuples == {(2, 3.0, 4.0): 2, (0, 0.0, 4.0): 1, (1, 1.0, 4.0): 1}
    pairs = {(r["x"], r["mean_value"]): r["customers"] for r in value_pairs(summary).collect()}
    assert pairs == {(2, 30.0): 2}  # no repeat purchase, or a mean value of at most 0: left out


def test_the_cdnow_log_gives_hardie_s_published_summary(spark: SparkSession) -> None:
    if not (CDNOW / "cdnow_sample.csv").exists():
        pytest.skip("../shared/data/cdnow is not here")
    raw = spark.read.csv(str(CDNOW / "cdnow_sample.csv"), header=True, inferSchema=False)
    clean = raw.select(
        F.col("customer_id"),
        F.to_timestamp("date", "yyyyMMdd").alias("invoice_ts"),
        F.lit(False).alias("is_return"),
        F.col("dollar_value").cast("double").alias("amount"),
    )
    summary = customer_summary(clean, dt.date(1997, 9, 30), time_unit="week").toPandas()
    published = pd.read_csv(CDNOW / "cdnow_summary.csv")  # its IDs are not the log's: compared as multisets
    assert len(summary) == len(published) == 2357

    def rows(frame: pd.DataFrame, value: str) -> list[tuple]:
        rounded = frame.assign(v=frame[value].fillna(0.0)).round({"t_x": 2, "T": 2, "v": 2})
        return sorted(zip(rounded["x"], rounded["t_x"], rounded["T"], rounded["v"], strict=True))

    ours, theirs = rows(summary, "mean_value"), rows(published, "zbar")
    assert [r[0] for r in ours] == [r[0] for r in theirs]  # every x
    assert sum(r[0] > 0 for r in ours) == 946
    close = sum(
        abs(a[1] - b[1]) <= 0.011 and abs(a[2] - b[2]) <= 0.011 and abs(a[3] - b[3]) <= 0.011
        for a, b in zip(ours, theirs, strict=True)
    )
    assert close == 2357
    assert likelihood_tuples(spark.createDataFrame(summary)).agg(F.sum("customers")).first()[0] == 2357


def test_spend_bins_bound_what_is_collected_and_fit_as_the_customers_do(spark: SparkSession) -> None:
    rng = np.random.default_rng(11)
    n = 40_000
    x = rng.integers(1, 4, n)
    mean_value = np.round(np.exp(rng.normal(3.0, 0.6, n)), 6)  # more customers than bins of x and ln(value)
    summary = pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(n)], "x": x, "t_x": 1.0, "T": 2.0, "mean_value": mean_value}
    )
    frame = spark.createDataFrame(summary, "customer_id string, x long, t_x double, T double, mean_value double")
    pairs = value_pairs(frame).toPandas().sort_values(["x", "mean_value"], ignore_index=True)
    spread = np.log(mean_value.max() / mean_value.min())
    assert int(pairs["customers"].sum()) == n
    assert len(pairs) < n / 2
    assert len(pairs) <= 3 * (spread / SPEND_BIN_WIDTH + 1)
    again = value_pairs(frame.repartition(7)).toPandas().sort_values(["x", "mean_value"], ignore_index=True)
    pd.testing.assert_frame_equal(pairs, again, check_exact=True)  # the same doubles in any order of addition
    binned = models.fit_gamma_gamma(pairs["x"], pairs["mean_value"], pairs["customers"])
    each = models.fit_gamma_gamma(x, mean_value)
    np.testing.assert_allclose(binned.estimates, each.estimates, rtol=1e-5)
    assert binned.log_likelihood == pytest.approx(each.log_likelihood, rel=1e-7)
    assert (binned.customers, binned.tuples) == (n, len(pairs))
