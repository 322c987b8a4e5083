"""Segment profiles: size, share of customers and revenue, mean, median and lift of every feature, and name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segmentation.model import CLUSTER, SEGMENT, SEGMENT_NAME, FeatureSpec, lookup


@dataclass(frozen=True)
class SegmentProfiles:
    """The profiles table (k rows) and its rows collected on the driver."""

    frame: DataFrame
    rows: tuple[dict[str, Any], ...]

    @property
    def sizes(self) -> dict[int, int]:
        """Segment id -> customers."""
        return {int(r[SEGMENT]): int(r["customers"]) for r in self.rows}


def profile_features(feature_df: DataFrame, spec: FeatureSpec) -> list[str]:
    """The numeric feature columns that profiles describe (every column but the id and categorical ones)."""
    return [c for c in feature_df.columns if c != "customer_id" and c not in spec.categorical]


def profile_table(
    segmented_df: DataFrame,
    feature_names: Sequence[str],
    revenue_column: str | None,
    *,
    names: Mapping[int, str],
) -> DataFrame:
    """One row per segment (k rows): name, customers, share, revenue share, and per feature ``mean_<f>``,
    ``median_<f>`` and ``lift_<f>`` (the segment's mean over the population's; null when that is 0).

    Medians are Spark's approximate percentile (relative error 1/10000), which scales to any size.
    """
    aggregates = [F.count(F.lit(1)).alias("customers"), F.first(CLUSTER).alias("cluster_label")]
    totals = [F.count(F.lit(1)).alias("_all_customers")]
    if revenue_column:
        aggregates.append(F.sum(revenue_column).alias("revenue"))
        totals.append(F.sum(revenue_column).alias("_all_revenue"))
    for name in feature_names:
        aggregates.append(F.avg(name).alias(f"mean_{name}"))
        aggregates.append(F.percentile_approx(name, 0.5, 10000).cast("double").alias(f"median_{name}"))
        totals.append(F.avg(name).alias(f"_all_{name}"))
    profile = segmented_df.groupBy(SEGMENT).agg(*aggregates).crossJoin(segmented_df.agg(*totals))
    extra = {
        SEGMENT_NAME: lookup(names, F.col(SEGMENT)),
        "customer_share": F.col("customers") / F.col("_all_customers"),
    }
    if revenue_column:
        extra["revenue_share"] = F.col("revenue") / F.col("_all_revenue")
        extra["revenue"] = F.round("revenue", 2)  # money in cents: no float noise from summation order
    for name in feature_names:
        population = F.col(f"_all_{name}")
        extra[f"lift_{name}"] = F.when(population != 0, F.col(f"mean_{name}") / population)
    profile = profile.withColumns(extra)
    head = [SEGMENT, SEGMENT_NAME, "cluster_label", "customers", "customer_share"]
    if revenue_column:
        head += ["revenue", "revenue_share"]
    per_feature = [f"{stat}_{name}" for name in feature_names for stat in ("mean", "median", "lift")]
    return profile.select(*head, *per_feature).orderBy(SEGMENT)


def profile_segments(
    segmented_df: DataFrame, spec: FeatureSpec, revenue_column: str | None, *, names: Mapping[int, str]
) -> SegmentProfiles:
    """The profiles of the segmented feature table, computed once and collected (k rows)."""
    feature_names = profile_features(segmented_df.drop(SEGMENT, SEGMENT_NAME, CLUSTER), spec)
    frame = profile_table(segmented_df, feature_names, revenue_column, names=names)
    return SegmentProfiles(frame, tuple(r.asDict() for r in frame.collect()))
