"""The Spark ML pipeline (signed log1p of skewed features, one-hot categoricals, standardising, KMeans) and the
segments it gives: stable segment ids and names for the clusters.

The fitted ``PipelineModel`` holds every step, so a saved model scores new customers by itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.ml import Pipeline, PipelineModel, Transformer
from pyspark.ml.clustering import KMeans, KMeansModel
from pyspark.ml.feature import OneHotEncoder, SQLTransformer, StandardScaler, StringIndexer, VectorAssembler
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segmentation.config import JobConfig, ModelConfig, unavailable_features
from segmentation.model import naming

RAW_VECTOR = "features_raw"
VECTOR = "features_scaled"
NUMERIC_VECTOR = "features_numeric_scaled"  # the standardised numeric features, before the indicators
CLUSTER = "cluster"
SEGMENT = "segment"
SEGMENT_NAME = "segment_name"


@dataclass(frozen=True)
class FeatureSpec:
    """Which columns enter the model and how: numeric (some log-transformed) and categorical."""

    numeric: tuple[str, ...]
    log: tuple[str, ...]
    categorical: tuple[str, ...]
    order_by: str | None


def feature_spec(cfg: JobConfig) -> FeatureSpec:
    """The model's inputs for this job's kind of input."""
    if cfg.input.kind == "customers":
        opts = cfg.input.customers
        order_by = cfg.model.order_by or (opts.numeric_columns[0] if opts.numeric_columns else None)
        return FeatureSpec(opts.numeric_columns, opts.log_columns, opts.categorical_columns, order_by)
    missing = unavailable_features(cfg.input)  # left out: the input cannot give them
    numeric = tuple(f for f in cfg.features.model_features if f not in missing)
    log = tuple(f for f in numeric if f in cfg.features.log_features)
    return FeatureSpec(numeric, log, (), cfg.model.order_by or "monetary")


def _model_name(column: str) -> str:
    return f"{column}__model"


def _to_model_scale(value: float, logged: bool) -> float:
    return math.copysign(math.log1p(abs(value)), value) if logged else value


def _from_model_scale(value: float, logged: bool) -> float:
    if not logged:
        return value
    try:
        return math.copysign(math.expm1(abs(value)), value)
    except OverflowError:
        return math.copysign(math.inf, value)


def cap_bounds(q1: float, q3: float, *, logged: bool, fence_iqr: float) -> tuple[float, float]:
    """Lower and upper caps (raw scale) for one feature from its quartiles: Tukey's far-out fences.

    The fences lie ``fence_iqr`` interquartile ranges outside the quartiles, measured on the model's scale
    (after log1p for logged features), so ordinary skew is untouched and only far-out values are capped. A
    feature with no spread between its quartiles (IQR 0) is not capped: its fences would flatten it.
    """
    low_q, high_q = _to_model_scale(q1, logged), _to_model_scale(q3, logged)
    iqr = high_q - low_q
    if iqr <= 0:
        return -math.inf, math.inf
    low, high = low_q - fence_iqr * iqr, high_q + fence_iqr * iqr
    return _from_model_scale(low, logged), _from_model_scale(high, logged)


def outlier_caps(
    features_df: DataFrame, spec: FeatureSpec, *, fence_iqr: float, max_share: float
) -> dict[str, tuple[float, float]]:
    """Caps for each numeric feature: its far-out fences (see ``cap_bounds``), on each side where few values lie.

    A side is capped only when at most ``max_share`` of the customers (at least one) lie beyond its fence: a
    few extreme values are outliers, while a larger group beyond a fence (say, 8% brand-new customers far
    below the typical tenure) is a behaviour the model must see. Two aggregations: quartiles, then counts.
    """
    if fence_iqr <= 0 or not spec.numeric:
        return {}
    aggs = [F.percentile_approx(_numeric(c), [0.25, 0.75], 10_000).alias(c) for c in spec.numeric]
    row = features_df.agg(*aggs).first()
    fences = {}
    for c in spec.numeric:
        quartiles = row[c] if row is not None else None
        if quartiles and all(v is not None for v in quartiles):
            fences[c] = cap_bounds(float(quartiles[0]), float(quartiles[1]), logged=c in spec.log, fence_iqr=fence_iqr)
    if not fences:
        return {}
    counts = [F.count(F.lit(1)).alias("customers")]
    for c, (low, high) in fences.items():
        counts.append(F.sum(F.when(_numeric(c) < F.lit(low), 1).otherwise(0)).alias(f"{c}__below"))
        counts.append(F.sum(F.when(_numeric(c) > F.lit(high), 1).otherwise(0)).alias(f"{c}__above"))
    beyond = features_df.agg(*counts).first()
    assert beyond is not None  # a global aggregation has one row
    allowed = max(1, math.floor(max_share * beyond["customers"]))
    caps = {}
    for c, (low, high) in fences.items():
        low = low if beyond[f"{c}__below"] <= allowed else -math.inf
        high = high if beyond[f"{c}__above"] <= allowed else math.inf
        if math.isfinite(low) or math.isfinite(high):
            caps[c] = (low, high)
    return caps


def _numeric(column: str) -> Column:
    return F.col(f"`{column}`").cast("double")


def _model_expression(column: str, spec: FeatureSpec, bounds: Mapping[str, tuple[float, float]]) -> str:
    """SQL for one numeric feature as the model sees it: clipped to its bounds, then signed log1p if asked."""
    value = f"CAST(`{column}` AS DOUBLE)"
    if column in bounds:
        low, high = bounds[column]
        if math.isfinite(low):
            value = f"greatest({value}, CAST({low!r} AS DOUBLE))"
        if math.isfinite(high):
            value = f"least({value}, CAST({high!r} AS DOUBLE))"
    if column in spec.log:
        value = f"signum({value}) * log1p(abs({value}))"
    return value


def preprocessing_stages(
    spec: FeatureSpec, bounds: Mapping[str, tuple[float, float]] | None = None
) -> list[Transformer]:
    """Stages from the feature table to the model's vector: numeric features standardised (mean 0, unit
    variance), then each categorical column as 0/1 indicators, one per category.

    Numeric features are capped at ``bounds`` (outlier fences) and log-transformed in one SQL step that is part
    of the saved model, so new customers are scored with the training run's bounds. Indicators are not
    standardised: two customers in different categories are then as far apart (squared distance 2) as two
    typical customers on one standardised feature, so a categorical column weighs about one numeric feature.
    Standardised, a rare category's indicator would reach several standard deviations and its minority
    members would split off every segment.
    """
    bounds = bounds or {}
    stages: list = []
    if spec.numeric:
        exprs = ", ".join(f"{_model_expression(c, spec, bounds)} AS `{_model_name(c)}`" for c in spec.numeric)
        stages.append(SQLTransformer(statement=f"SELECT *, {exprs} FROM __THIS__"))
        numeric = [_model_name(c) for c in spec.numeric]
        stages.append(VectorAssembler(inputCols=numeric, outputCol=RAW_VECTOR, handleInvalid="error"))
        scaled = VECTOR if not spec.categorical else NUMERIC_VECTOR
        stages.append(StandardScaler(inputCol=RAW_VECTOR, outputCol=scaled, withMean=True, withStd=True))
    if spec.categorical:
        indexed = [f"{c}__index" for c in spec.categorical]
        encoded = [f"{c}__onehot" for c in spec.categorical]
        stages.append(
            StringIndexer(
                inputCols=list(spec.categorical),
                outputCols=indexed,
                handleInvalid="keep",
                stringOrderType="alphabetAsc",
            )
        )
        stages.append(OneHotEncoder(inputCols=indexed, outputCols=encoded, dropLast=False, handleInvalid="keep"))
        inputs = ([NUMERIC_VECTOR] if spec.numeric else []) + encoded
        stages.append(VectorAssembler(inputCols=inputs, outputCol=VECTOR, handleInvalid="error"))
    return stages


def fit_preprocessing(
    features_df: DataFrame, spec: FeatureSpec, *, fence_iqr: float, max_share: float
) -> PipelineModel:
    """Fit the preprocessing stages on the feature table, capping rare far-out values (see ``outlier_caps``;
    ``model.outlier_fence_iqr`` and ``model.outlier_max_share``, 0 fences turn capping off)."""
    bounds = outlier_caps(features_df, spec, fence_iqr=fence_iqr, max_share=max_share)
    stages: list[Any] = list(preprocessing_stages(spec, bounds))
    return Pipeline(stages=stages).fit(features_df)


def kmeans(k: int, settings: ModelConfig, seed: int | None = None) -> KMeans:
    """A KMeans estimator with the job's settings and an explicit seed."""
    return KMeans(
        k=k,
        seed=settings.seed if seed is None else seed,
        maxIter=settings.max_iter,
        tol=settings.tol,
        initMode=settings.init_mode,
        initSteps=settings.init_steps,
        featuresCol=VECTOR,
        predictionCol=CLUSTER,
        distanceMeasure="euclidean",
    )


def full_model(preprocessing: PipelineModel, clusterer: KMeansModel) -> PipelineModel:
    """One model from features to cluster label, ready to save and to score new customers."""
    return PipelineModel(stages=[*preprocessing.stages, clusterer])


def segment_order(cluster_stats: Sequence[Mapping[str, float]]) -> dict[int, int]:
    """Cluster label -> segment id (1 = highest mean of the ordering feature).

    ``cluster_stats`` rows have ``cluster``, ``order_value`` and ``customers``; ties fall to the larger
    cluster, then to the lower label, so the ids are the same on every re-run with the same data and seed.
    """
    ranked = sorted(
        cluster_stats,
        key=lambda r: (
            -(r["order_value"] if r["order_value"] is not None else float("-inf")),
            -r["customers"],
            r["cluster"],
        ),
    )
    return {int(r["cluster"]): rank for rank, r in enumerate(ranked, start=1)}


def cluster_stats(assigned_df: DataFrame, order_by: str | None) -> list[dict[str, float]]:
    """Per cluster: size and mean of the ordering feature (k rows, collected to the driver)."""
    order_value = F.avg(order_by) if order_by else F.lit(0.0)
    rows = (
        assigned_df.groupBy(CLUSTER)
        .agg(F.count(F.lit(1)).alias("customers"), order_value.alias("order_value"))
        .collect()
    )
    return [
        {"cluster": int(r[CLUSTER]), "customers": int(r["customers"]), "order_value": r["order_value"]} for r in rows
    ]


def lookup(mapping: Mapping[int, object], key: Column) -> Column:
    """The value ``mapping`` gives each row's ``key``, from a small literal map (null for a key not in it)."""
    pairs = [F.lit(v) for item in sorted(mapping.items()) for v in item]
    return F.element_at(F.create_map(*pairs), key)


def with_segment(assigned_df: DataFrame, mapping: Mapping[int, int]) -> DataFrame:
    """Add the stable segment id for each cluster label."""
    return assigned_df.withColumn(SEGMENT, lookup(mapping, F.col(CLUSTER)).cast("int"))


def with_segments(assigned_df: DataFrame, mapping: Mapping[int, int], names: Mapping[int, str]) -> DataFrame:
    """Add each customer's stable segment id and the segment's name to the cluster assignments."""
    return with_segment(assigned_df, mapping).withColumn(SEGMENT_NAME, lookup(names, F.col(SEGMENT)))


def segment_names(
    clusterer: KMeansModel, mapping: Mapping[int, int], spec: FeatureSpec, *, kind: str
) -> dict[int, str]:
    """Segment id -> name, from the final model's centroids (standardised means of the model's features).

    A centroid holds the numeric features first, then the one-hot dimensions of categorical columns; names are
    read from the numeric features alone (a category's share is not a level to call high or low).
    """
    width = len(spec.numeric)
    centres = {
        mapping[label]: [float(v) for v in centre[:width]]
        for label, centre in enumerate(clusterer.clusterCenters())
        if label in mapping
    }
    return naming.name_segments(centres, features=spec.numeric, kind=kind)
