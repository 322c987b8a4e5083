"""Segment profiles: size, share of customers and revenue, mean, median and lift of every feature, and name."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segmentation.model.pipeline import CLUSTER, SEGMENT, SEGMENT_NAME, FeatureSpec, lookup


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


# Features that follow from buying again: one-time and repeat buyers of one behaviour differ in these anyway
# (a one-time buyer's tenure is its recency). When they started buying is checked apart: see ``repeat_splits``.
REPEAT_FEATURES = frozenset(
    ("frequency", "tenure_days", "monetary", "mean_days_between_orders", "active_months", "distinct_products")
)
SPLIT_DISTANCE = 0.5  # standard deviations between the two centroids on the features buying again does not set
SAME_START = 0.25  # a one-time segment's median tenure is at least this share of the repeat segment's


@dataclass(frozen=True)
class RepeatSplit:
    """Two segments of one behaviour told apart by buying again: ``one_time`` bought once, ``repeat`` more."""

    one_time: int
    repeat: int
    distance: float  # between their centroids on the other model features, in standard deviations
    alike_in: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "one_time": self.one_time,
            "repeat": self.repeat,
            "distance": round(self.distance, 3),
            "alike_in": list(self.alike_in),
        }


def repeat_splits(
    rows: Sequence[Mapping[str, Any]],
    centres: Mapping[int, Sequence[float]],
    features: Sequence[str],
    *,
    max_distance: float = SPLIT_DISTANCE,
) -> list[RepeatSplit]:
    """Pairs of segments that split one behaviour into one-time and repeat buyers.

    A segment whose median customer has one order is paired with the nearest segment whose median customer
    has more, measured between centroids (standardised model scale) on the model features that do not follow
    from buying again (recency, order value, ...). It is such a split when the two are closer than
    ``max_distance`` (half a) standard deviation, each the other's nearest, and started buying in the same period: the
    one-time segment's median tenure is at least a quarter of the repeat segment's (brand-new customers with a
    champion's basket are not champions who did not come back). None for a customer table.
    """
    other = [i for i, name in enumerate(features) if name not in REPEAT_FEATURES]
    needed = ("median_frequency", "median_tenure_days")
    if "frequency" not in features or not other or not rows or any(c not in rows[0] for c in needed):
        return []
    by_id = {int(r[SEGMENT]): r for r in rows if all(r[c] is not None for c in needed)}
    one_time = [s for s, r in by_id.items() if r["median_frequency"] <= 1]
    repeat = [s for s, r in by_id.items() if r["median_frequency"] >= 2]

    def apart(a: int, b: int) -> float:
        return math.sqrt(sum((centres[a][i] - centres[b][i]) ** 2 for i in other))

    splits = []
    for a in one_time:
        if not repeat:
            break
        b = min(repeat, key=lambda s: (apart(a, s), s))
        back = min(one_time, key=lambda s: (apart(s, b), s))
        same_start = by_id[a]["median_tenure_days"] >= SAME_START * by_id[b]["median_tenure_days"]
        if back == a and apart(a, b) <= max_distance and same_start:
            splits.append(RepeatSplit(a, b, apart(a, b), tuple(features[i] for i in other)))
    return splits


def repeat_split_sentence(split: RepeatSplit, names: Mapping[int, str]) -> str:
    """One sentence for the report on a one-time / repeat split."""
    alike = ", ".join(name.replace("_", " ") for name in split.alike_in)
    return (
        f"Segments {split.repeat} ({names.get(split.repeat, '')}) and {split.one_time} "
        f"({names.get(split.one_time, '')}) look like one behaviour split by whether customers came back: "
        f"segment {split.one_time}'s median customer ordered once, segment {split.repeat}'s more often, and "
        f"they are alike in {alike} (centroids {split.distance:.2f} standard deviations apart). A marketer may "
        "well want them apart (first-order follow-up against retention); they can also be read as one."
    )
