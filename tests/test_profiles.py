"""Segment profiles and the report's sample on tiny hand-made tables: every number checked against a hand
computation (nulls included), and the sample's coordinates against the features and the model's centroids."""

from __future__ import annotations

import pytest
from chispa import assert_approx_df_equality
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segmentation.config import ModelConfig
from segmentation.model import pipeline, profiles
from segmentation.model.sweep import fit_best
from segmentation.report import sample

FEATURES = ["recency_days", "frequency", "monetary", "balance"]
NAMES = {1: "Champions", 2: "Lost"}
SEGMENTED_SCHEMA = (
    "customer_id string, recency_days double, frequency double, monetary double, balance double, "
    "cluster int, segment int, segment_name string"
)
PROFILE_SCHEMA = (
    "segment int, segment_name string, cluster_label int, customers long, customer_share double, "
    "revenue double, revenue_share double, "
    "mean_recency_days double, median_recency_days double, lift_recency_days double, "
    "mean_frequency double, median_frequency double, lift_frequency double, "
    "mean_monetary double, median_monetary double, lift_monetary double, "
    "mean_balance double, median_balance double, lift_balance double"
)


def segmented(spark: SparkSession) -> DataFrame:
    """Six customers: four in segment 1 (cluster 1, one without a recency), two in segment 2 (cluster 0).

    ``balance`` sums to 0 over everyone: its population mean is 0, so its lift is null.
    """
    rows = [
        ("c1", 5.0, 10.0, 100.25, 3.0, 1, 1, "Champions"),
        ("c2", 7.0, 12.0, 200.50, 1.0, 1, 1, "Champions"),
        ("c3", None, 8.0, 150.00, 2.0, 1, 1, "Champions"),
        ("c4", 9.0, 6.0, 49.25, 2.0, 1, 1, "Champions"),
        ("c5", 100.0, 1.0, 20.00, -4.0, 0, 2, "Lost"),
        ("c6", 120.0, 2.0, 30.00, -4.0, 0, 2, "Lost"),
    ]
    return spark.createDataFrame(rows, SEGMENTED_SCHEMA)


def test_profile_table_against_hand_computed_values(spark: SparkSession) -> None:
    got = profiles.profile_table(segmented(spark), FEATURES, "monetary", names=NAMES)
    # population means: recency over the 5 known values 241 / 5 = 48.2; frequency 39 / 6 = 6.5;
    # monetary 550 / 6; balance 0 (so no lift). Revenue: 500.00 and 50.00 of 550.
    # Medians are percentile_approx(0.5): the smallest value with at least half the values at or below it, so
    # the lower middle one of an even count (frequency 6, 8, 10, 12 -> 8; recency 100, 120 -> 100) and the
    # middle one of the three known recencies (5, 7, 9 -> 7; the null is ignored as avg ignores it).
    population_monetary = 550.0 / 6
    expected = spark.createDataFrame(
        [
            (
                1,
                "Champions",
                1,
                4,
                4 / 6,
                500.0,
                500.0 / 550.0,
                7.0,  # (5 + 7 + 9) / 3, the null left out
                7.0,
                7.0 / 48.2,
                9.0,  # (10 + 12 + 8 + 6) / 4
                8.0,
                9.0 / 6.5,
                125.0,  # 500 / 4
                100.25,  # 49.25, 100.25, 150, 200.5 -> the lower middle
                125.0 / population_monetary,
                2.0,
                2.0,  # 1, 2, 2, 3
                None,
            ),
            (
                2,
                "Lost",
                0,
                2,
                2 / 6,
                50.0,
                50.0 / 550.0,
                110.0,
                100.0,
                110.0 / 48.2,
                1.5,
                1.0,
                1.5 / 6.5,
                25.0,
                20.0,
                25.0 / population_monetary,
                -4.0,
                -4.0,
                None,
            ),
        ],
        PROFILE_SCHEMA,
    )
    assert_approx_df_equality(got, expected, 1e-9, ignore_nullable=True)


def test_profile_table_rounds_revenue_to_cents(spark: SparkSession) -> None:
    rows = [("a", 1.0, 0.1, 1, 1, "x"), ("b", 2.0, 0.2, 1, 1, "x"), ("c", 3.0, None, 0, 2, "y")]
    frame = spark.createDataFrame(
        rows, "customer_id string, frequency double, monetary double, cluster int, segment int, segment_name string"
    )
    got = profiles.profile_table(frame, ["frequency"], "monetary", names={1: "x", 2: "y"}).collect()
    assert [r["revenue"] for r in got] == [0.3, None]  # 0.30000000000000004 -> 0.3; a segment of nulls has none
    assert got[0]["revenue_share"] == pytest.approx(1.0)
    assert got[1]["revenue_share"] is None


def test_profile_table_without_revenue(spark: SparkSession) -> None:
    got = profiles.profile_table(segmented(spark), ["recency_days", "frequency"], None, names=NAMES)
    assert got.columns == [
        "segment",
        "segment_name",
        "cluster_label",
        "customers",
        "customer_share",
        "mean_recency_days",
        "median_recency_days",
        "lift_recency_days",
        "mean_frequency",
        "median_frequency",
        "lift_frequency",
    ]
    rows = got.collect()
    assert [(r["segment"], r["segment_name"], r["customers"]) for r in rows] == [(1, "Champions", 4), (2, "Lost", 2)]


def test_profile_table_names_an_unnamed_segment_null(spark: SparkSession) -> None:
    got = profiles.profile_table(segmented(spark), ["frequency"], None, names={1: "Champions"}).collect()
    assert [(r["segment"], r["segment_name"]) for r in got] == [(1, "Champions"), (2, None)]


def test_profile_segments_collects_the_table(spark: SparkSession) -> None:
    frame = segmented(spark).withColumn("country", F.when(F.col("customer_id") == "c1", None).otherwise("UK"))
    spec = pipeline.FeatureSpec(numeric=tuple(FEATURES), log=(), categorical=("country",), order_by="monetary")
    assert profiles.profile_features(frame.drop("cluster", "segment", "segment_name"), spec) == FEATURES
    profiled = profiles.profile_segments(frame, spec, "monetary", names=NAMES)
    assert profiled.sizes == {1: 4, 2: 2}
    assert "mean_country" not in profiled.frame.columns
    assert profiled.rows == tuple(r.asDict() for r in profiled.frame.collect())
    assert [r["segment_name"] for r in profiled.rows] == ["Champions", "Lost"]
    assert profiled.rows[0]["median_frequency"] == 8.0 and profiled.rows[1]["revenue"] == 50.0


# ---------------------------------------------------------------- the report's sample

MAPPING = {0: 3, 1: 1, 2: 2}  # not the identity: the sample must carry segments, not cluster labels


def fitted(spark: SparkSession) -> tuple[DataFrame, PipelineModel, dict[int, int]]:
    """60 customers in three tight groups on x and y; ``monetary`` rides along (not in the model, one null)."""
    rows = [
        (f"c{i}", float(i % 3), float(i % 3) * 2 + 0.01 * i, None if i == 7 else 10.0 * (i % 3) + i) for i in range(60)
    ]
    frame = spark.createDataFrame(rows, "customer_id string, x double, y double, monetary double")
    spec = pipeline.FeatureSpec(numeric=("x", "y"), log=(), categorical=(), order_by="x")
    prep = pipeline.fit_preprocessing(frame, spec, fence_iqr=0.0, max_share=0.05)
    clusterer = fit_best(prep.transform(frame), 3, ModelConfig(seed=3))
    final = pipeline.full_model(prep, clusterer)
    assert final.transform(frame).select(pipeline.CLUSTER).distinct().count() == 3
    return frame, final, MAPPING


def test_sample_fraction() -> None:
    assert sample.sample_fraction(100) == 1.0
    assert sample.sample_fraction(sample.MAX_POINTS) == 1.0
    assert sample.sample_fraction(40_000) == 0.5
    assert sample.sample_fraction(300, max_points=100) == pytest.approx(1 / 3)


def test_report_sample_on_two_features(spark: SparkSession) -> None:
    frame, final, mapping = fitted(spark)
    extra = ("recency_days", "frequency", "monetary")  # only monetary is in the feature table
    drawn = sample.customer_sample(frame, final, mapping, customers=60, seed=1, extra_columns=extra, axes=("x", "y"))
    assert drawn.centroids_2d is None
    assert drawn.axes == ("x", "y")
    assert drawn.frame.columns == ["segment", "x", "y", "monetary"]
    scored = pipeline.with_segment(final.transform(frame), mapping)
    expected = sorted(((r.segment, r.x, r.y, r.monetary) for r in scored.collect()), key=lambda t: (t[1], t[2]))
    got = sorted((tuple(r) for r in drawn.frame.collect()), key=lambda t: (t[1], t[2]))
    assert got == expected  # every customer, x and y exactly the features, the null monetary kept
    assert len(got) == 60 and sum(1 for r in got if r[3] is None) == 1
    assert {r[0] for r in got} == set(mapping.values())


def test_report_sample_on_principal_components(spark: SparkSession) -> None:
    frame, final, mapping = fitted(spark)
    extra = ("recency_days", "frequency", "monetary")
    drawn = sample.customer_sample(frame, final, mapping, customers=60, seed=1, extra_columns=extra)
    assert drawn.frame.columns == ["segment", "x", "y", "monetary"]
    rows = drawn.frame.collect()
    assert len(rows) == 60  # 60 <= MAX_POINTS: every customer
    assert {r["segment"] for r in rows} == {1, 2, 3}
    assert drawn.axes[0].startswith("principal component 1 (") and drawn.axes[0].endswith("% of variance)")
    assert drawn.axes[1].startswith("principal component 2 (")
    assert drawn.centroids_2d is not None and len(drawn.centroids_2d) == 3
    # the projection is linear and a converged centroid is its segment's mean: each 2-d centroid (in segment
    # order) is the mean of its segment's projected customers
    for segment, (cx, cy) in zip(sorted(mapping.values()), drawn.centroids_2d, strict=True):
        members = [r for r in rows if r["segment"] == segment]
        assert len(members) == 20
        assert sum(r["x"] for r in members) / 20 == pytest.approx(cx, abs=1e-9)
        assert sum(r["y"] for r in members) / 20 == pytest.approx(cy, abs=1e-9)
    # three groups far apart: they stay apart on the first component
    spans = {s: sorted(r["x"] for r in rows if r["segment"] == s) for s in mapping.values()}
    ordered = sorted(spans.values())
    assert ordered[0][-1] < ordered[1][0] and ordered[1][-1] < ordered[2][0]


MODEL_FEATURES = ("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days")


def _segment(segment: int, median_frequency: float, median_tenure: float) -> dict:
    return {pipeline.SEGMENT: segment, "median_frequency": median_frequency, "median_tenure_days": median_tenure}


def test_repeat_splits_pair_one_time_and_repeat_buyers_alike_in_the_rest() -> None:
    rows = [_segment(1, 9.0, 350.0), _segment(2, 3.0, 170.0), _segment(3, 1.0, 110.0), _segment(4, 1.0, 300.0)]
    centres = {  # recency, frequency, monetary, avg_order_value, tenure (standardised)
        1: [-1.0, 2.0, 2.0, 0.5, 1.0],  # champions
        2: [0.2, 0.6, 0.4, 1.5, -0.5],  # occasional repeat buyers
        3: [0.5, -0.9, -0.3, 1.4, -1.9],  # their one-time twins: 0.32 sd apart in recency and order value
        4: [1.5, -0.9, -1.2, -1.5, 1.2],  # hibernating one-time buyers, unlike any repeat segment
    }
    splits = profiles.repeat_splits(rows, centres, MODEL_FEATURES)
    assert [(s.one_time, s.repeat, round(s.distance, 3), s.alike_in) for s in splits] == [
        (3, 2, 0.316, ("recency_days", "avg_order_value"))
    ]
    sentence = profiles.repeat_split_sentence(splits[0], {2: "Occasional", 3: "One-timers"})
    assert sentence.startswith(
        "Segments 2 (Occasional) and 3 (One-timers) look like one behaviour split by whether customers came "
        "back: segment 3's median customer ordered once, segment 2's more often, and they are alike in "
        "recency days, avg order value (centroids 0.32 standard deviations apart)."
    )
    # farther apart than the limit: no split; a customer table (no frequency): none
    assert profiles.repeat_splits(rows, centres, MODEL_FEATURES, max_distance=0.3) == []
    assert profiles.repeat_splits(rows, centres, ("age", "income", "score", "x", "y")) == []
    # brand-new one-time buyers with a champion's recency and basket did not start when champions did: no split
    new = [_segment(1, 9.0, 350.0), _segment(5, 1.0, 7.0)]
    alike = {1: [-1.0, 2.0, 2.0, 0.5, 1.0], 5: [-1.1, -0.9, -0.5, 0.6, -2.5]}
    assert profiles.repeat_splits(new, alike, MODEL_FEATURES) == []
    assert len(profiles.repeat_splits([new[0], _segment(5, 1.0, 200.0)], alike, MODEL_FEATURES)) == 1
