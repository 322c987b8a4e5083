"""The KMeans sweep over k: one fit per k with a fixed seed, and the metrics of each fit."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from pyspark.ml.clustering import KMeansModel
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.sql import DataFrame

from segmentation.config import ModelConfig
from segmentation.model import CLUSTER, VECTOR, kmeans

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KResult:
    """The metrics of one KMeans fit."""

    k: int
    seed: int
    wssse: float
    silhouette: float | None
    cluster_sizes: tuple[int, ...]
    non_empty_clusters: int
    smallest_cluster_share: float
    iterations: int

    @property
    def has_empty_cluster(self) -> bool:
        return self.non_empty_clusters < self.k

    def as_row(self) -> dict[str, object]:
        row = asdict(self)
        row["cluster_sizes"] = list(self.cluster_sizes)
        return row


def fit_k(vectors_df: DataFrame, k: int, settings: ModelConfig) -> tuple[KResult, KMeansModel]:
    """Fit KMeans at k and measure it: WSSSE, silhouette (squared Euclidean), cluster sizes."""
    fitted = kmeans(k, settings).fit(vectors_df)
    summary = fitted.summary
    sizes = [int(s) for s in summary.clusterSizes]
    sizes += [0] * (k - len(sizes))  # KMeans may return fewer centres than asked for
    non_empty = sum(1 for s in sizes if s > 0)
    silhouette = None
    if non_empty >= 2:
        evaluator = ClusteringEvaluator(
            featuresCol=VECTOR, predictionCol=CLUSTER, metricName="silhouette", distanceMeasure="squaredEuclidean"
        )
        silhouette = float(evaluator.evaluate(summary.predictions))
    total = sum(sizes)
    result = KResult(
        k=k,
        seed=settings.seed,
        wssse=float(summary.trainingCost),
        silhouette=silhouette,
        cluster_sizes=tuple(sizes),
        non_empty_clusters=non_empty,
        smallest_cluster_share=min(sizes) / total if total else 0.0,
        iterations=int(summary.numIter),
    )
    log.info(
        "k=%d: wssse=%.1f silhouette=%s non-empty clusters=%d/%d",
        k,
        result.wssse,
        "n/a" if silhouette is None else f"{silhouette:.3f}",
        non_empty,
        k,
    )
    return result, fitted


def run_sweep(
    vectors_df: DataFrame, ks: Iterable[int], settings: ModelConfig
) -> tuple[list[KResult], dict[int, KMeansModel]]:
    """Fit every k in turn on the (cached) standardised vectors; return the metrics and the fitted models."""
    results, models = [], {}
    for k in ks:
        result, fitted = fit_k(vectors_df, k, settings)
        results.append(result)
        models[k] = fitted
    return results, models
