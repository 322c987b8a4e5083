"""The choice of k on data with a known answer: logs with a planted number of behavioural segments."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from segmentation import generate, job
from segmentation.sweep import adjusted_rand_index

from .conftest import job_config

pytestmark = pytest.mark.slow


def ari_against_truth(spark: SparkSession, segments_path: Path, truth_path: Path) -> float:
    """Adjusted Rand index between published segments and the generator's truth, from a Spark contingency."""
    segments = spark.read.parquet(str(segments_path))
    truth = spark.read.option("header", True).csv(str(truth_path))
    rows = segments.join(truth, segments.customer_id == truth.CustomerID).groupBy("segment", "persona").count()
    table = {(r["segment"], r["persona"]): r["count"] for r in rows.collect()}
    return adjusted_rand_index(table)


@pytest.mark.parametrize(("planted", "seed"), [(3, 1), (4, 2), (5, 1), (6, 1), (6, 2)])
def test_chosen_k_is_the_planted_k(spark: SparkSession, tmp_path: Path, planted: int, seed: int) -> None:
    log, truth = tmp_path / "log.csv.gz", tmp_path / "truth.csv"
    generate.write(str(log), customers=1000, seed=seed, truth_path=str(truth), planted=planted)
    result = job.run(spark, job_config(tmp_path, str(log), "model.k_max=8"))
    assert result.choice.k == planted, result.choice.reason
    ari = ari_against_truth(spark, Path(result.run_folder) / "segments", truth)
    assert ari >= 0.8
    assert len(set(result.segment_names.values())) == planted
