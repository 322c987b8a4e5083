"""Segment profiles: size, share of customers and revenue, mean and median of every feature."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segmentation.model import CLUSTER, SEGMENT


def describe(segmented_df: DataFrame, feature_names: Sequence[str], revenue_column: str | None) -> DataFrame:
    """One row per segment (k rows): customers, share, revenue share, ``mean_<f>`` and ``median_<f>``.

    Medians are Spark's approximate percentile (relative error 1/10000), which scales to any size.
    """
    aggregates = [F.count(F.lit(1)).alias("customers"), F.first(CLUSTER).alias("cluster_label")]
    if revenue_column:
        aggregates.append(F.sum(revenue_column).alias("revenue"))
    for name in feature_names:
        aggregates.append(F.avg(name).alias(f"mean_{name}"))
        aggregates.append(F.percentile_approx(name, 0.5, 10000).cast("double").alias(f"median_{name}"))
    profile = segmented_df.groupBy(SEGMENT).agg(*aggregates)
    totals = [F.sum("customers").alias("_all_customers")]
    if revenue_column:
        totals.append(F.sum("revenue").alias("_all_revenue"))
    profile = profile.crossJoin(profile.agg(*totals))
    profile = profile.withColumn("customer_share", F.col("customers") / F.col("_all_customers"))
    if revenue_column:
        profile = profile.withColumn("revenue_share", F.col("revenue") / F.col("_all_revenue"))
    profile = profile.drop("_all_customers", "_all_revenue")
    head = [SEGMENT, "cluster_label", "customers", "customer_share"]
    if revenue_column:
        head += ["revenue", "revenue_share"]
    rest = [c for c in profile.columns if c not in head]
    return profile.select(*head, *rest).orderBy(SEGMENT)
