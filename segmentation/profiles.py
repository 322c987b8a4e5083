"""Segment profiles: size, share of customers and revenue, mean, median and lift of every feature, and name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segmentation.model import CLUSTER, SEGMENT

SEGMENT_NAME = "segment_name"


def name_column(names: Mapping[int, str], segment: Column) -> Column:
    """The name of each row's segment, from a small literal map."""
    pairs = [F.lit(v) for item in sorted(names.items()) for v in item]
    return F.element_at(F.create_map(*pairs), segment)


def describe(
    segmented_df: DataFrame,
    feature_names: Sequence[str],
    revenue_column: str | None,
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
        SEGMENT_NAME: name_column(names, F.col(SEGMENT)),
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
