"""The small, Spark-computed inputs of the report: a seeded sample of customers in two dimensions.

The picture of customers coloured by segment needs coordinates: two chosen features, or the first two principal
components (Spark ML ``PCA``) of the model's standardised vectors, for a seeded sample of at most
``MAX_POINTS`` customers. The sample is written with the run (table ``report_sample``, no customer ids), so
``segmentation report`` re-renders without Spark.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.ml import PipelineModel
from pyspark.ml.feature import PCA
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segmentation.model import pipeline

MAX_POINTS = 20_000
X, Y = "x", "y"


@dataclass(frozen=True)
class CustomerSample:
    """Sampled customers with segment, x, y and the extra columns; the centroids in x/y (PCA only); axis labels."""

    frame: DataFrame
    centroids_2d: list[tuple[float, float]] | None
    axes: tuple[str, str]


def sample_fraction(customers: int, max_points: int = MAX_POINTS) -> float:
    """The fraction of ``customers`` that gives about ``max_points`` of them (all of them below that)."""
    return 1.0 if customers <= max_points else max_points / customers


def customer_sample(
    feature_df: DataFrame,
    final: PipelineModel,
    mapping: Mapping[int, int],
    *,
    customers: int,
    seed: int,
    extra_columns: Sequence[str],
    axes: tuple[str, str] | None = None,
) -> CustomerSample:
    """A seeded sample of at most ``MAX_POINTS`` customers placed on two ``axes`` (features), or on the first
    two principal components of the model's vectors when ``axes`` is None."""
    sample = feature_df.sample(fraction=sample_fraction(customers), seed=seed).limit(MAX_POINTS)
    scored = pipeline.with_segment(final.transform(sample), mapping)
    segment = F.col(pipeline.SEGMENT)
    kept = [c for c in extra_columns if c in feature_df.columns]
    if axes is not None:
        x, y = (F.col(f"`{name}`").cast("double") for name in axes)
        out = scored.select(segment, x.alias(X), y.alias(Y), *kept)
        return CustomerSample(out, None, axes)
    pca = PCA(k=2, inputCol=pipeline.VECTOR, outputCol="_pcs").fit(scored)
    projected = pca.transform(scored).withColumn("_pc", vector_to_array(F.col("_pcs")))
    out = projected.select(segment, F.col("_pc")[0].alias(X), F.col("_pc")[1].alias(Y), *kept)
    components = pca.pc.toArray()
    centroids = final.stages[-1].clusterCenters()  # type: ignore[attr-defined]
    by_segment = sorted((mapping[label], centre) for label, centre in enumerate(centroids))
    points = [(float(centre @ components[:, 0]), float(centre @ components[:, 1])) for _, centre in by_segment]
    share = list(pca.explainedVariance.toArray())
    labels = (f"principal component 1 ({share[0]:.0%} of variance)", f"principal component 2 ({share[1]:.0%})")
    return CustomerSample(out, points, labels)
