"""Model steps: stable segment ids, the empty-cluster guard, the choice of k, the saved pipeline."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from pyspark.ml import PipelineModel
from pyspark.sql import SparkSession

from segmentation import model, selection
from segmentation.config import ModelConfig
from segmentation.sweep import KResult, fit_k, run_sweep


def result(k: int, silhouette: float | None, non_empty: int | None = None) -> KResult:
    sizes = tuple([10] * (non_empty if non_empty is not None else k) + [0] * (k - (non_empty or k)))
    return KResult(k, 42, 1.0, silhouette, sizes, sum(1 for s in sizes if s), 0.1, 5)


def test_segment_order_ranks_by_mean_then_size_then_label() -> None:
    stats = [
        {"cluster": 0, "customers": 10, "order_value": 5.0},
        {"cluster": 1, "customers": 30, "order_value": 50.0},
        {"cluster": 2, "customers": 20, "order_value": 5.0},
        {"cluster": 3, "customers": 20, "order_value": 5.0},
        {"cluster": 4, "customers": 1, "order_value": None},
    ]
    assert model.segment_order(stats) == {1: 1, 2: 2, 3: 3, 0: 4, 4: 5}
    assert model.segment_order(list(reversed(stats))) == model.segment_order(stats)


def test_with_segment_maps_labels(spark: SparkSession) -> None:
    frame = spark.createDataFrame([("a", 0), ("b", 1), ("c", 2), ("d", None)], "customer_id string, cluster int")
    got = model.with_segment(frame, {0: 3, 1: 1, 2: 2})
    expected = spark.createDataFrame(
        [("a", 0, 3), ("b", 1, 1), ("c", 2, 2), ("d", None, None)], "customer_id string, cluster int, segment int"
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_choose_k_takes_best_silhouette_and_skips_empty_clusters() -> None:
    results = [result(2, 0.50), result(3, 0.70), result(4, 0.90, non_empty=3), result(5, 0.70)]
    choice = selection.choose_k(results)
    assert choice.k == 3  # k=4 is better but has an empty cluster; k=5 ties with 3, smaller wins
    assert choice.reason == "k=3: highest silhouette (0.700) among k=2..5; k=4 excluded for empty clusters"


def test_choose_k_fixed_and_all_empty() -> None:
    assert selection.choose_k([result(4, 0.3)], fixed_k=4) == selection.Choice(4, "k=4: fixed by model.k (no sweep)")
    with pytest.raises(selection.SelectionError, match=r"model\.k: k=4 gave only 2 non-empty clusters"):
        selection.choose_k([result(4, 0.3, non_empty=2)], fixed_k=4)
    with pytest.raises(selection.SelectionError, match="every k from 3 to 4 gave an empty cluster"):
        selection.choose_k([result(3, None, non_empty=1), result(4, None, non_empty=2)])


def scaled_points(spark: SparkSession, points: list[tuple[float, float]]):
    frame = spark.createDataFrame(
        [(str(i), x, y) for i, (x, y) in enumerate(points)], "customer_id string, x double, y double"
    )
    spec = model.FeatureSpec(numeric=("x", "y"), log=(), categorical=(), order_by="x")
    prep = model.fit_preprocessing(frame, spec)
    return frame, prep, prep.transform(frame)


def test_sweep_guards_against_k_above_distinct_points(spark: SparkSession) -> None:
    points = [(0.0, 0.0)] * 10 + [(10.0, 10.0)] * 10 + [(0.0, 10.0)] * 10  # 30 customers, 3 distinct points
    _, _, vectors = scaled_points(spark, points)
    results, _ = run_sweep(vectors, [3, 5], ModelConfig(seed=1))
    three, five = results
    assert (three.non_empty_clusters, sorted(three.cluster_sizes)) == (3, [10, 10, 10])
    assert three.silhouette == pytest.approx(1.0)
    assert five.non_empty_clusters == 3 and five.has_empty_cluster
    assert selection.choose_k(results).k == 3


def test_full_model_scores_new_customers_like_training(spark: SparkSession, tmp_path) -> None:
    points = [(float(i % 3), float(i % 3) * 2 + 0.01 * i) for i in range(60)]
    frame, prep, vectors = scaled_points(spark, points)
    _, fitted = fit_k(vectors, 3, ModelConfig(seed=3))
    full = model.full_model(prep, fitted)
    full.write().overwrite().save(str(tmp_path / "m"))
    loaded = PipelineModel.load(str(tmp_path / "m"))
    before = full.transform(frame).select("customer_id", model.CLUSTER)
    after = loaded.transform(frame).select("customer_id", model.CLUSTER)
    assert_df_equality(before, after, ignore_row_order=True)
    assert before.select(model.CLUSTER).distinct().count() == 3
