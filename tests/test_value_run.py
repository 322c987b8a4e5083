"""Customer value in the run: the published CDNOW sample through the command line (``conf/examples/cdnow.yaml``),
planted BG/NBD and Gamma-Gamma customers recovered, and the edge cases of a log that cannot support a fit."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import DataFrame, SparkSession

from segmentation import cli, config
from segmentation.demo import buyers
from segmentation.publish import files, storage
from segmentation.value import models, stage
from segmentation.value.summary import customer_summary

REPO = Path(__file__).resolve().parents[1]
CDNOW_SAMPLE = REPO.parent / "shared" / "data" / "cdnow" / "cdnow_sample.csv"
CDNOW_CONFIG = REPO / "conf" / "examples" / "cdnow.yaml"
PUBLISHED = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259, "p": 6.25, "q": 3.74, "v": 15.44}


def read_table(spark: SparkSession, folder: str | Path, name: str) -> pd.DataFrame:
    return spark.read.parquet(str(Path(folder) / name)).toPandas()


def committed_run(root: Path) -> Path:
    return Path(files.resolve_run(storage.for_root(None, str(root))))


@pytest.mark.slow
@pytest.mark.skipif(not CDNOW_SAMPLE.exists(), reason="the shared CDNOW sample is not here")
def test_the_cdnow_sample_through_the_command_line(spark: SparkSession, tmp_path: Path) -> None:
    argv = ["run", "--config", str(CDNOW_CONFIG), "--input", str(CDNOW_SAMPLE), "--output", str(tmp_path / "out")]
    assert cli.main([*argv, "--set", "model.k=4", "-q"]) == 0
    folder = committed_run(tmp_path / "out")
    manifest = json.loads((folder / "manifest.json").read_text())

    # the published estimates, within 1%: the run quarantines the 8 zero-value lines the published fit kept (so 8
    # customers whose only purchase in the 39 weeks was worth 0 are not in it)
    fitted = read_table(spark, folder, "value_model").set_index("parameter")
    for name, published in PUBLISHED.items():
        assert fitted.loc[name, "estimate"] == pytest.approx(published, rel=0.01), name
    assert set(fitted["model"]) == {"bgnbd", "gamma_gamma"}
    assert (fitted["time_unit"] == "week").all() and (fitted["horizon_days"] == 365).all()
    assert fitted.loc["r", "customers"] == 2357 - 8

    # the holdout: weeks 40 to 78 (1997-10-01 to 1998-06-30), calibration frequencies 0 to 7+
    calibration = read_table(spark, folder, "value_calibration")
    assert calibration["frequency"].tolist() == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert set(calibration["holdout_start"].astype(str)) == {"1997-10-01"}
    assert set(calibration["holdout_end"].astype(str)) == {"1998-06-30"}
    assert calibration["customers"].sum() == 2357 - 8
    assert calibration["mean_predicted"].is_monotonic_increasing
    assert np.corrcoef(calibration["mean_predicted"], calibration["mean_actual"])[0, 1] > 0.95
    numbers = manifest["value"]["calibration"]
    assert numbers["span"] == pytest.approx(273 / 7)
    log = pd.read_csv(CDNOW_SAMPLE, dtype={"customer_id": str, "date": str})
    holdout = log[(log["date"] > "19970930") & (log["dollar_value"] != 0)]
    known = holdout[holdout["customer_id"].isin(log.loc[log["date"] <= "19970930", "customer_id"])]
    assert numbers["actual_total"] == known.groupby("customer_id")["date"].nunique().sum()
    assert numbers["auc_expected_purchases"] > 0.7

    # every customer valued; exact copies in the window counted and kept
    values = read_table(spark, folder, "customer_value")
    assert len(values) == 2357 - 8 and values["customer_id"].is_unique
    assert values["p_alive"].between(0, 1).all() and (values["clv"] >= 0).all()
    assert (values["clv"] <= values["expected_value"] + 1e-6).all()  # discounting only lowers the value
    window = log[(log["date"] <= "19970930") & (log["dollar_value"] != 0)]
    assert manifest["counts"]["exact_copies"] == int(window.duplicated(keep="first").sum())
    assert manifest["input"]["exact_copies"] == "keep"
    assert "duplicate_line" not in manifest["counts"]["quarantined_by_reason"]

    # scoring the log at a later date with the published model: the same fits applied, and the migration from
    # the training run carries the expected value of the customers who moved
    later = ["score", "--config", str(CDNOW_CONFIG), "--input", str(CDNOW_SAMPLE), "--output", str(tmp_path / "out")]
    assert cli.main([*later, "--model", str(folder), "--set", "features.as_of=1997-12-31", "-q"]) == 0
    scored = Path(files.resolve_run(storage.for_root(None, str(tmp_path / "out")), dt.date(1997, 12, 31)))
    applied = json.loads((scored / "manifest.json").read_text())["value"]
    assert applied["status"] == "applied" and applied["purchases"] == manifest["value"]["purchases"]
    assert read_table(spark, scored, "value_model").set_index("parameter")["estimate"].equals(fitted["estimate"])
    migration = read_table(spark, scored, "migration")
    moved = migration.loc[migration["to_segment"].notna(), "expected_value"].sum()
    assert moved == pytest.approx(applied["expected_value"], abs=0.05)
    assert migration.loc[migration["to_segment"].isna(), "expected_value"].isna().all()  # inactive: no value now


# ---------------------------------------------------------------- planted truth


def clean_frame(spark: SparkSession, log: pd.DataFrame) -> DataFrame:
    """A simulated log as the clean lines the value stage reads (every line a purchase)."""
    frame = pd.DataFrame(
        {
            "customer_id": log["customer_id"].astype(str),
            "invoice_ts": pd.to_datetime(log["date"], format="%Y%m%d"),
            "is_return": False,
            "amount": log["dollar_value"].astype(float),
        }
    )
    return spark.createDataFrame(frame, "customer_id string, invoice_ts timestamp, is_return boolean, amount double")


TRUTH = buyers.Truth(r=0.5, alpha=8.0, a=0.9, b=3.0, p=5.0, q=4.0, v=20.0)
AS_OF = dt.date(1997, 9, 30)


@pytest.mark.slow
def test_planted_customers_are_recovered_within_tolerances_that_shrink(spark: SparkSession) -> None:
    """Customers simulated from BG/NBD and Gamma-Gamma (``demo.buyers``) through the Spark summary and the fits:
    every estimate within 4 of its standard errors of the truth, and those errors shrink as 1 / sqrt(customers):
    eight times as many customers give errors about 0.35 times as large (below 0.6 here)."""
    settings = config.JobConfig().value.model_copy(update={"time_unit": "week"})
    errors = {}
    for customers, seed in ((2000, 11), (16000, 12)):
        log, _ = buyers.simulate(customers, TRUTH, seed=seed)
        summary = customer_summary(clean_frame(spark, log), AS_OF, time_unit="week")
        fitted = stage.fit_models(summary, settings)
        for fit in (fitted.purchases, fitted.spend):
            for name, estimate in fit.params.items():
                error = fit.errors[name]
                truth = getattr(TRUTH, name)
                assert abs(estimate - truth) < 4 * error, (customers, fit.model, name, estimate, truth, error)
                errors[customers, name] = error
    for name in ("r", "alpha", "a", "b", "p", "q", "v"):
        assert 0.2 < errors[16000, name] / errors[2000, name] < 0.6, name  # about 1 / sqrt(8)


# ---------------------------------------------------------------- edge cases


LINES = "customer_id string, invoice_ts timestamp, is_return boolean, amount double"


def at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day) + dt.timedelta(hours=10)


def test_a_log_where_nobody_bought_twice_is_not_fitted_and_says_why(spark: SparkSession) -> None:
    rows = [
        ("a", at("2011-01-03"), False, 10.0),
        ("b", at("2011-01-05"), False, 7.0),
        ("c", at("2011-01-09"), True, -2.0),
    ]
    settings = config.JobConfig().value
    outcome = stage.value_of_customers(
        spark, spark.createDataFrame(rows, LINES), as_of=dt.date(2011, 1, 31), settings=settings, keep=lambda f: f
    )
    assert outcome.fitted is None and outcome.values is None
    assert outcome.reason == (
        "value model bgnbd: every customer made one purchase only (x = 0): repeat purchases cannot be modelled"
    )
    assert outcome.spend_left_out == {"no_repeat_purchase": 2, "mean_value_not_positive": 0}


def test_one_purchase_only_returns_and_non_positive_mean_values(spark: SparkSession) -> None:
    """Customers who bought once are valued at the population's mean spend; a customer with only returns has no
    purchase day and no value; a mean repeat value of 0 or less is left out of the spend model and said so."""
    log, _ = buyers.simulate(2000, TRUTH, seed=3)  # enough buyers to identify the dropout
    rows = [
        (str(r.customer_id), at(f"{r.date[:4]}-{r.date[4:6]}-{r.date[6:]}"), False, float(r.dollar_value))
        for r in log.itertuples()
    ]
    rows += [
        ("once", at("1997-03-01"), False, 25.0),
        ("returns", at("1997-03-02"), True, -5.0),
        ("zero", at("1997-02-01"), False, 10.0),
        ("zero", at("1997-03-01"), False, 5.0),
        ("zero", at("1997-03-01"), True, -5.0),  # that day's purchase returned: the repeat day is worth 0
    ]
    settings = config.JobConfig().value.model_copy(update={"time_unit": "week"})
    outcome = stage.value_of_customers(
        spark, spark.createDataFrame(rows, LINES), as_of=AS_OF, settings=settings, keep=lambda f: f
    )
    assert outcome.fitted is not None and outcome.values is not None
    values = {r["customer_id"]: r.asDict() for r in outcome.values.collect()}
    assert "returns" not in values
    mean_spend = models.mean_spend(outcome.fitted.spend)
    once = values["once"]
    assert once["x"] == 0 and once["mean_value"] is None and once["p_alive"] == 1.0
    assert once["expected_value"] == pytest.approx(once["expected_purchases"] * mean_spend, abs=1e-3)
    zero = values["zero"]
    assert zero["x"] == 1 and zero["mean_value"] == 0.0
    assert zero["expected_value"] == pytest.approx(zero["expected_purchases"] * mean_spend, abs=1e-3)
    assert outcome.spend_left_out["mean_value_not_positive"] == 1
