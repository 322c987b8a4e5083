"""The checks before publishing, in pieces: implausible values quarantined with the limit named, extreme values
counted, the drift measures' arithmetic, and the feature measures on planted shifts and on bootstraps."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from segmentation.config import InputConfig, JobConfig, LimitsConfig, QualityConfig
from segmentation.errors import InputError
from segmentation.history import drift
from segmentation.history import drift_measures as dm
from segmentation.history.baseline import Baseline
from segmentation.input import validate as validation
from segmentation.input.plausibility import extreme_values
from segmentation.input.quarantine import quarantined_lines
from segmentation.jobs import incremental
from segmentation.publish import files

from .conftest import raw_frame
from .manifests import manifest
from .test_validation import COLUMNS

TODAY = dt.date(2024, 1, 31)


# ---------------------------------------------------------------- implausible and extreme values


def validated(spark: SparkSession, tmp_path: Path, rows: list[tuple], cfg: JobConfig) -> validation.Validated:
    cfg = cfg.model_copy(update={"quality": QualityConfig(max_quarantine_share=1.0)})
    raw = raw_frame(spark, rows, COLUMNS)
    copy = files.write_work_copy(validation.lines_for_copy(raw, cfg.input), str(tmp_path / "copy"))
    return validation.validate(copy, cfg, today=TODAY, keep=lambda frame: frame)


def line(invoice: str, quantity: str, price: str, customer: str = "10") -> tuple:
    return (invoice, "P", f"line {invoice}", quantity, "12/1/2010 8:26", price, customer, "UK", None)


def test_lines_beyond_a_limit_are_quarantined_naming_it(spark: SparkSession, tmp_path: Path) -> None:
    rows = [
        line("1", "6", "2.5"),
        line("2", "1e20", "2.5"),  # quantity
        line("3", "-2000000", "2.5"),  # a return counts by its size
        line("4", "1", "9" * 40),  # unit price (and value): the first limit in order is named
        line("5", "900000", "900"),  # each within its own limit, but the value is 810 million
        line("6", "999999", "1.0"),  # within every limit
        line("7", "six", "1e40"),  # unreadable first: invalid_number wins
    ]
    result = validated(spark, tmp_path, rows, JobConfig())
    quarantine = quarantined_lines(result.lines, result.text_columns)
    found = {
        (r["invoice_id"], r["reason"], r["detail"])
        for r in quarantine.select("invoice_id", "reason", "detail").collect()
    }
    assert found == {
        ("2", "implausible_value", "input.limits.max_quantity (1e+06)"),
        ("3", "implausible_value", "input.limits.max_quantity (1e+06)"),
        ("4", "implausible_value", "input.limits.max_unit_price (1e+06)"),
        ("5", "implausible_value", "input.limits.max_amount (1e+08)"),
        ("7", "invalid_number", None),
    }
    assert result.counts.quarantined == {"implausible_value": 4, "invalid_number": 1}
    assert result.counts.lines_clean == 2

    unlimited = JobConfig(
        input=InputConfig(limits=LimitsConfig(max_quantity=None, max_unit_price=None, max_amount=None))
    )
    assert validated(spark, tmp_path / "off", rows, unlimited).counts.quarantined == {"invalid_number": 1}
    tight = JobConfig(input=InputConfig(limits=LimitsConfig(max_quantity=7)))
    assert validated(spark, tmp_path / "tight", rows, tight).counts.quarantined == {
        "implausible_value": 5,  # every line but the 6-item one and the unreadable one
        "invalid_number": 1,
    }


def test_a_value_a_million_times_the_median_is_counted_not_quarantined(spark: SparkSession, tmp_path: Path) -> None:
    rows = [line(str(i), "2", f"{1 + i % 5}.0", customer=str(10 + i % 7)) for i in range(60)]
    rows.append(line("big", "2", "3000000.0"))  # within this test's unit price limit of 1e7
    rows.append(line("far", "5000", "900.0"))  # 5000 items of 900: a value 750,000 times the median line
    cfg = JobConfig(input=InputConfig(limits=LimitsConfig(max_unit_price=1e7)))
    result = validated(spark, tmp_path, rows, cfg)
    assert result.counts.quarantined == {}
    found = {e.column: e for e in extreme_values(result.lines, cfg.input)}
    assert set(found) == {"quantity", "unit_price", "value"}
    assert found["value"].lines == 2 and found["value"].median == 6.0
    assert found["value"].largest == 6_000_000.0
    assert found["unit_price"].lines == 1 and found["unit_price"].largest == 3_000_000.0
    assert found["quantity"].lines == 1 and found["quantity"].median == 2.0

    calm = [line(str(i), "2", f"{1 + i % 5}.0") for i in range(30)]
    assert extreme_values(validated(spark, tmp_path / "calm", calm, cfg).lines, cfg.input) == []


# ---------------------------------------------------------------- arithmetic


def test_psi_and_jensen_shannon_distance() -> None:
    assert dm.psi({0: 5, 1: 5}, {0: 50, 1: 50}) == 0.0
    assert dm.psi({0: 6, 1: 4}, {0: 5, 1: 5}) == pytest.approx(0.1 * math.log(1.2) - 0.1 * math.log(0.8))
    assert dm.psi({0: 1, 1: 0}, {0: 0, 1: 1}) == pytest.approx(2 * (1 - dm.EPSILON) * math.log(1 / dm.EPSILON))
    assert dm.js_distance({0: 1, 1: 1}, {0: 2, 1: 2}) == 0.0
    assert dm.js_distance({0: 1}, {1: 1}) == pytest.approx(1.0)
    # scipy.spatial.distance.jensenshannon([0.6, 0.4], [0.5, 0.5], base=2)
    assert dm.js_distance({0: 6, 1: 4}, {0: 5, 1: 5}) == pytest.approx(0.0854351026, abs=1e-9)


def test_adjusted_rand_index() -> None:
    # labels [0,0,0,1,1,1] against [0,0,1,1,2,2]: 0.2424... (scikit-learn's adjusted_rand_score)
    assert dm.adjusted_rand({(0, 0): 2, (0, 1): 1, (1, 1): 1, (1, 2): 2}) == pytest.approx(0.24242424)
    assert dm.adjusted_rand({(1, 5): 10, (2, 6): 20}) == 1.0  # same groups, other ids
    assert dm.adjusted_rand({(1, 1): 10}) == 1.0  # one group on both sides: the same grouping
    assert dm.adjusted_rand({}) is None


def test_thresholds_and_judgement() -> None:
    assert dm.Threshold.of(None, [0.02, -0.05, 0.03], 0.01) == dm.Threshold(0.05, "calibrated")
    assert dm.Threshold.of(None, [0.001], 0.01) == dm.Threshold(0.01, "floor")
    assert dm.Threshold.of(0.2, [5.0], 0.01) == dm.Threshold(0.2, "fixed")
    above = dm.judge("feature_psi", "monetary", -0.3, threshold=dm.Threshold(0.2, "fixed"))
    assert (above.status, above.severity) == ("warn", 1.5)
    below = dm.judge("adjusted_rand", "all", 0.8, threshold=dm.Threshold(0.6, "fixed"), direction="below")
    assert (below.status, below.severity) == ("ok", 0.5)
    assert (
        dm.judge("adjusted_rand", "all", 0.5, threshold=dm.Threshold(0.6, "fixed"), direction="below").status == "warn"
    )
    assert dm.judge("customers", "all", None, threshold=dm.Threshold(0.2, "fixed")).status == "ok"
    order = dm.worst_first([above, below])
    assert [m.measure for m in order] == ["feature_psi", "adjusted_rand"]


def test_the_median_of_binned_customers_is_interpolated_in_its_bin() -> None:
    bounds = [0.0, 10.0, 20.0, 40.0]  # three bins: (.., 10], (10, 20], (20, ..), from the least to the largest value
    assert drift.binned_median({0: 2, 1: 4, 2: 2}, bounds) == 15.0  # 4 of 8 before it: halfway into bin 1
    assert drift.binned_median({0: 4, 1: 4, 2: 2, -1: 9}, bounds) == pytest.approx(12.5)  # nulls (-1) left out
    assert drift.binned_median({2: 3}, bounds) == pytest.approx(30.0)
    assert drift.binned_median({-1: 3}, bounds) is None


def test_day_chunks_compare_the_days_since_the_baseline_with_spans_before() -> None:
    day = dt.date(2024, 1, 1)
    rows: list = [(day + dt.timedelta(days=i), None, 100) for i in range(30)]
    rows += [(day + dt.timedelta(days=i), "duplicate_line", 2) for i in range(30)]
    rows += [(day + dt.timedelta(days=29), "duplicate_line", 100)]  # the last day delivered twice
    rows += [(None, "invalid_timestamp", 7), (day, "out_of_window", 50)]
    chunks = dm.day_chunks(
        rows, as_of=day + dt.timedelta(days=29), baseline_as_of=day + dt.timedelta(days=28), first_day=None, chunks=20
    )
    assert chunks.usable and len(chunks.before) == 20
    assert chunks.new == dm.Period(202, {"duplicate_line": 102})
    assert chunks.before[0] == dm.Period(102, {"duplicate_line": 2})
    assert chunks.history.share("duplicate_line") == pytest.approx(2 / 102)
    few = dm.day_chunks(
        rows, as_of=day + dt.timedelta(days=29), baseline_as_of=day + dt.timedelta(days=19), first_day=None, chunks=20
    )
    assert len(few.before) == 2 and not few.usable  # 10-day spans: only two fit before the baseline


# ---------------------------------------------------------------- feature measures on planted shifts


FEATURES = ("recency_days", "frequency", "monetary", "avg_order_value")


def customers_frame(spark: SparkSession, customers: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frequency = rng.geometric(0.35, customers).astype(float)
    aov = np.round(rng.lognormal(3.0, 0.8, customers), 2)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(customers)],
            "recency_days": rng.integers(0, 365, customers).astype(float),
            "frequency": frequency,
            "monetary": np.round(frequency * aov, 2),
            "avg_order_value": aov,
            "segment": rng.integers(1, 4, customers),
        }
    )


def feature_drift(spark: SparkSession, base: pd.DataFrame, now: pd.DataFrame, cfg: JobConfig) -> dict:
    baseline = Baseline(dt.date(2024, 1, 1), "main", "memory", None, "", spark.createDataFrame(base))  # type: ignore[arg-type]
    run = drift.RunNow(
        spark.createDataFrame(now),
        FEATURES,
        FEATURES[:3],
        [],
        len(now),
        None,
        [],
        dt.date(2024, 2, 1),
        None,  # type: ignore[arg-type]
    )  # type: ignore[arg-type]
    return {(m.measure, m.subject): m for m in drift.feature_measures(cfg, run, baseline)}


@pytest.fixture(scope="module")
def base_customers(spark: SparkSession) -> pd.DataFrame:
    return customers_frame(spark, 3000, seed=5)


def beyond(measures: dict) -> set[tuple[str, str]]:
    return {key for key, m in measures.items() if m.status == "warn"}


def test_the_same_customers_twice_measure_zero(spark: SparkSession, base_customers: pd.DataFrame) -> None:
    measures = feature_drift(spark, base_customers, base_customers, JobConfig())
    assert len(measures) == 4 * len(FEATURES)
    assert all(m.value == pytest.approx(0.0, abs=1e-9) and m.status == "ok" for m in measures.values())
    calibrated = {k[0]: m.threshold_from for k, m in measures.items() if k[1] == "monetary"}
    assert calibrated["feature_psi"] in {"calibrated", "floor"} and calibrated["feature_median_shift"] == "calibrated"


def test_bootstraps_of_the_baseline_stay_within_the_thresholds(
    spark: SparkSession, base_customers: pd.DataFrame
) -> None:
    """The stated rate: fewer than 1 measure in 20 beyond its threshold over bootstraps of the baseline's customers
    (here none of the 10 x 16 was)."""
    cfg = JobConfig()
    warned = total = 0
    for seed in range(10):
        sample = base_customers.sample(frac=1.0, replace=True, random_state=seed).reset_index(drop=True)
        sample["customer_id"] = [f"b{i}" for i in range(len(sample))]
        measures = feature_drift(spark, base_customers, sample, cfg)
        warned += len(beyond(measures))
        total += len(measures)
    assert warned / total < 0.05
    assert warned == 0


def test_new_customers_of_the_same_kind_stay_within_the_thresholds(
    spark: SparkSession, base_customers: pd.DataFrame
) -> None:
    """Independent draws from the baseline's population (other customers, the same behaviour): the stated rate, at
    most 1 measure in 20 beyond its threshold."""
    warned = total = 0
    for seed in range(6, 12):
        measures = feature_drift(spark, base_customers, customers_frame(spark, 3000, seed=seed), JobConfig())
        warned += len(beyond(measures))
        total += len(measures)
    assert warned / total <= 0.05


def test_quantities_tripled_for_30_percent_of_customers_are_caught(
    spark: SparkSession, base_customers: pd.DataFrame
) -> None:
    shifted = base_customers.copy()
    tripled = np.random.default_rng(1).random(len(shifted)) < 0.3
    for column in ("monetary", "avg_order_value"):
        shifted.loc[tripled, column] *= 3
    found = beyond(feature_drift(spark, base_customers, shifted, JobConfig()))
    assert {
        ("feature_psi", "monetary"),
        ("feature_mean_shift", "monetary"),
        ("feature_psi", "avg_order_value"),
    } <= found
    assert not {key for key in found if key[1] in ("recency_days", "frequency")}


def test_a_currency_change_in_unit_prices_is_caught(spark: SparkSession, base_customers: pd.DataFrame) -> None:
    converted = base_customers.copy()
    for column in ("monetary", "avg_order_value"):
        converted[column] *= 1.17  # pounds to euros
    measures = feature_drift(spark, base_customers, converted, JobConfig())
    found = beyond(measures)
    assert {
        ("feature_psi", "monetary"),
        ("feature_psi", "avg_order_value"),
        ("feature_median_shift", "monetary"),
    } <= found
    assert measures[("feature_psi", "frequency")].value == pytest.approx(0.0, abs=1e-9)


def test_a_state_kept_before_input_limits_asks_for_a_rebuild() -> None:
    """Its lines were validated without limits; the report's extreme_factor labels no line, so it may change."""
    cfg = JobConfig()
    settings = cfg.to_dict()
    old = {**settings, "input": {k: v for k, v in settings["input"].items() if k != "limits"}}
    state = incremental.BaseState(manifest(config=old), {})
    with pytest.raises(InputError, match=r"input\.limits: the state of the run of .* --rebuild"):
        incremental.check_same_input(state, cfg)
    state = incremental.BaseState(manifest(config=settings), {})
    incremental.check_same_input(state, cfg)  # the same settings
    wider = JobConfig(input=InputConfig(limits=LimitsConfig(extreme_factor=50)))
    incremental.check_same_input(state, wider)  # extreme_factor only names lines
    off = JobConfig(input=InputConfig(limits=LimitsConfig(max_quantity=None)))
    with pytest.raises(InputError, match=r"input\.limits"):
        incremental.check_same_input(state, off)
