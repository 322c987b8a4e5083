"""The sweep in the driver (``model.local_kmeans``, ``model.sweep_engine: driver``): its metrics are the Spark
sweep's, and it chooses the same k for the same reason as the MLlib sweep on the same vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from chispa import assert_df_equality
from pyspark.ml import PipelineModel
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.linalg import Vectors
from pyspark.sql import SparkSession

from segmentation.config import ModelConfig, SelectionConfig
from segmentation.demo import planted
from segmentation.jobs import segment
from segmentation.model import local_kmeans, selection, sweep
from segmentation.model.metrics import adjusted_rand_index

from .conftest import job_config


def blobs(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Four separated blobs of unequal sizes in three dimensions, and each point's blob."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 1.0], [0.0, 7.0, -2.0], [5.0, 5.0, 5.0]])
    sizes = [120, 60, 30, 15]
    truth = np.repeat(np.arange(4), sizes)
    return centres[truth] + rng.normal(scale=0.6, size=(len(truth), 3)), truth


def test_silhouette_is_sparks_squared_euclidean_silhouette(spark: SparkSession) -> None:
    points, labels = blobs()
    labels = labels.copy()
    labels[0] = 4  # a cluster of one point scores 0, as in Spark
    frame = spark.createDataFrame(
        [(Vectors.dense([float(v) for v in p]), int(c)) for p, c in zip(points, labels, strict=True)],
        ["features", "prediction"],
    )
    evaluator = ClusteringEvaluator(metricName="silhouette", distanceMeasure="squaredEuclidean")
    assert local_kmeans.silhouette(points, labels) == pytest.approx(evaluator.evaluate(frame), abs=1e-9)
    assert local_kmeans.silhouette(points, np.zeros(len(points), dtype=int)) is None


def test_a_driver_fit_finds_planted_blobs_and_measures_them() -> None:
    points, truth = blobs()
    settings = ModelConfig()
    fits = [
        local_kmeans.fit(points, 4, seed, max_iter=30, tol=1e-4, init="k-means||", init_steps=5) for seed in (1, 2, 3)
    ]
    result = local_kmeans.measure(points, 4, fits, seeds=[1, 2, 3])
    best = min(fits, key=lambda f: f.cost)
    table: dict[tuple[int, int], int] = {}
    for a, b in zip(truth, best.labels, strict=True):
        table[(int(a), int(b))] = table.get((int(a), int(b)), 0) + 1
    assert adjusted_rand_index(table) == pytest.approx(1.0)
    assert sorted(result.cluster_sizes) == [15, 30, 60, 120]
    assert result.stability == pytest.approx(1.0)
    assert result.wssse == pytest.approx(best.cost)
    # the cost is the sum of squared distances to the centres, each point to its own
    own = best.centres[best.labels]
    assert best.cost == pytest.approx(float(((points - own) ** 2).sum()))
    results = sweep.run_driver_sweep(points, [2, 3, 4, 5, 6], settings)
    assert selection.choose_k(results, SelectionConfig()).k == 4
    # the same seeds give the same fits
    again = local_kmeans.fit(points, 4, 1, max_iter=30, tol=1e-4, init="k-means||", init_steps=5)
    assert np.array_equal(again.labels, fits[0].labels) and again.cost == fits[0].cost


def test_fewer_distinct_points_than_k_leave_clusters_empty() -> None:
    points = np.array([[0.0, 0.0]] * 10 + [[10.0, 10.0]] * 10 + [[0.0, 10.0]] * 10)
    results = sweep.run_driver_sweep(points, [3, 5], ModelConfig(seed=1))
    three, five = results
    assert (three.non_empty_clusters, sorted(three.cluster_sizes)) == (3, [10, 10, 10])
    assert three.silhouette == pytest.approx(1.0) and three.wssse == pytest.approx(0.0)
    assert five.non_empty_clusters == 3 and five.has_empty_cluster
    assert selection.choose_k(results, SelectionConfig()).k == 3


def test_decisive_keeps_the_criteria_and_drops_their_values() -> None:
    reason = (
        "k=3: 2 of 5 criteria put it first (silhouette (0.476, on squared distances) and stability (1.00)) among "
        "the 3 k in k=2..10 with all segments >= 2% of customers; not agreeing: the elbow is at k=4"
    )
    assert selection.decisive(reason) == "k=3: 2 of 5 criteria put it first [silhouette and stability]"
    only = "k=4: the only k in k=2..10 with all segments >= 2% of customers; left out: k=5 (an empty cluster)"
    assert selection.decisive(only) == "k=4: the only k in k=2..10 with all segments >= 2% of customers []"


@pytest.mark.extended  # keeps make test in its budget (make test-extended runs it)
def test_with_the_same_k_both_engines_publish_the_same_segments_and_model(spark: SparkSession, tmp_path: Path) -> None:
    """The final model is MLlib's on every customer either way: only the sweep table differs."""
    data = tmp_path / "log.csv.gz"
    planted.write(str(data), "k3", customers=600, seed=11)
    runs = {}
    for engine in ("spark", "driver"):
        overrides = (*planted.settings(planted.scenario("k3")), f"model.sweep_engine={engine}")
        runs[engine] = segment.run(spark, job_config(tmp_path, str(data), *overrides, output=str(tmp_path / engine)))
    spark_run, driver_run = runs["spark"], runs["driver"]
    assert driver_run.choice.k == spark_run.choice.k == 3
    assert selection.decisive(driver_run.choice.reason) == selection.decisive(spark_run.choice.reason)
    assert [r.seeds for r in driver_run.sweep] == [r.seeds for r in spark_run.sweep]
    segments = {e: spark.read.parquet(str(Path(r.run_folder) / "segments")) for e, r in runs.items()}
    assert_df_equality(segments["spark"], segments["driver"], ignore_row_order=True)
    centres = {
        e: PipelineModel.load(str(Path(r.run_folder) / "model")).stages[-1].clusterCenters() for e, r in runs.items()
    }
    assert [list(c) for c in centres["spark"]] == [list(c) for c in centres["driver"]]
