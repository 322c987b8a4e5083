"""Reference: customer segmentation written the way a typical PySpark tutorial does it.

A local session with default settings (200 shuffle partitions, adaptive execution as Spark defaults it), the
CSV read with ``inferSchema``, the same filters and features as the project's job (segmentation/input/,
segmentation/features/table.py), ``VectorAssembler`` + ``StandardScaler``, then a full-data MLlib ``KMeans`` (defaults:
k-means||, maxIter 20) and a ``ClusteringEvaluator`` silhouette for every k = 2..10; the best silhouette wins.
No outlier caps (the usual way). Writes ``<output>/segments`` (Parquet: customer_id, segment) and prints one
JSON line: ``{"chosen_k": ..., "customers": ..., "silhouettes": {...}}``.

    python bench/reference_pyspark.py --input PATH --output DIR --driver-memory 4g
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from pyspark.ml.clustering import KMeans, KMeansModel
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.feature import StandardScaler, VectorAssembler
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

FEATURES = ["recency_days", "frequency", "monetary", "avg_order_value", "tenure_days"]
K_RANGE = range(2, 11)
SEED = 42
DATE_FORMAT = "M/d/yyyy H:mm"


def session(driver_memory: str) -> SparkSession:
    """A local session on every core with the given driver memory; every other setting as Spark defaults it."""
    return (
        SparkSession.builder.master("local[*]")
        .appName("reference-pyspark")
        .config("spark.driver.memory", driver_memory)
        .getOrCreate()
    )


def customer_text(col: Column, data_type: T.DataType) -> Column:
    """The customer id as text, ``17850.0`` as ``17850``; null when blank."""
    if isinstance(data_type, T.FloatType | T.DoubleType | T.DecimalType):
        col = F.when(col == F.floor(col), col.cast("long").cast("string")).otherwise(col.cast("string"))
    text = F.regexp_replace(F.trim(col.cast("string")), r"^(\d+)\.0*$", "$1")
    return F.when(text != "", text)


def timestamp(col: Column, data_type: T.DataType) -> Column:
    """The invoice time; null when it does not parse (``try_``: Spark 4 runs in ANSI mode)."""
    if isinstance(data_type, T.StringType):
        return F.try_to_timestamp(F.trim(col), F.lit(DATE_FORMAT))
    return col.cast("timestamp")


def finite(col: Column) -> Column:
    """Not null, not NaN, not infinite."""
    return col.isNotNull() & ~F.isnan(col) & (F.abs(col) < F.lit(float("inf")))


def clean(raw: DataFrame) -> DataFrame:
    """Valid lines (typed, exact duplicates dropped) with the return flag and the signed amount."""
    types = {f.name: f.dataType for f in raw.schema.fields}
    typed = raw.dropDuplicates().select(
        customer_text(F.col("CustomerID"), types["CustomerID"]).alias("customer_id"),
        F.trim(F.col("InvoiceNo").cast("string")).alias("invoice"),
        timestamp(F.col("InvoiceDate"), types["InvoiceDate"]).alias("ts"),
        F.col("Quantity").try_cast("double").alias("quantity"),
        F.col("UnitPrice").try_cast("double").alias("price"),
    )
    valid = typed.filter(
        F.col("customer_id").isNotNull()
        & F.col("invoice").isNotNull()
        & (F.col("invoice") != "")
        & F.col("ts").isNotNull()
        & finite(F.col("quantity"))
        & finite(F.col("price"))
        & (F.col("price") > 0)
    )
    is_return = F.upper(F.col("invoice")).startswith("C") | (F.col("quantity") < 0)
    amount = F.abs(F.col("quantity") * F.col("price"))
    return valid.withColumn("is_return", is_return).withColumn("amount", F.when(is_return, -amount).otherwise(amount))


def customer_features(lines: DataFrame) -> DataFrame:
    """One row per customer: the five model features, days counted against the date of the latest line."""
    as_of = lines.agg(F.max("ts")).first()[0].date()
    buy = ~F.col("is_return")
    day = F.to_date("ts")
    per_customer = lines.groupBy("customer_id").agg(
        F.max(F.when(buy, day)).alias("last_purchase"),
        F.max(day).alias("last_seen"),
        F.min(day).alias("first_seen"),
        F.count_distinct(F.when(buy, F.col("invoice"))).alias("frequency"),
        F.sum("amount").alias("monetary"),
        F.sum(F.when(buy, F.col("amount")).otherwise(0.0)).alias("gross"),
    )
    return per_customer.select(
        "customer_id",
        F.datediff(F.lit(as_of), F.coalesce("last_purchase", "last_seen")).cast("double").alias("recency_days"),
        F.col("frequency").cast("double").alias("frequency"),
        F.col("monetary").cast("double").alias("monetary"),
        F.when(F.col("frequency") > 0, F.col("gross") / F.col("frequency")).otherwise(0.0).alias("avg_order_value"),
        F.datediff(F.lit(as_of), F.col("first_seen")).cast("double").alias("tenure_days"),
    )


def scaled_features(features: DataFrame) -> DataFrame:
    """Signed log1p of every feature, assembled into a vector and standardised (mean 0, unit variance)."""
    logged = features.select(
        "customer_id", *[(F.signum(F.col(c)) * F.log1p(F.abs(F.col(c)))).alias(c) for c in FEATURES]
    )
    assembled = VectorAssembler(inputCols=FEATURES, outputCol="raw_features").transform(logged)
    scaler = StandardScaler(inputCol="raw_features", outputCol="features", withMean=True, withStd=True)
    return scaler.fit(assembled).transform(assembled).select("customer_id", "features")


def sweep(data: DataFrame, customers: int) -> tuple[dict[int, float], dict[int, KMeansModel]]:
    """A full-data KMeans and its silhouette for every k."""
    evaluator = ClusteringEvaluator()
    silhouettes, models = {}, {}
    for k in (k for k in K_RANGE if k < customers):
        models[k] = KMeans(k=k, seed=SEED).fit(data)
        silhouettes[k] = float(evaluator.evaluate(models[k].transform(data)))
    return silhouettes, models


def main(argv: list[str] | None = None) -> int:
    """Read, clean, featurise, sweep k, write the chosen segmentation and print the summary line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="CSV file or folder of CSV part files (gzip works)")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--driver-memory", default="4g")
    args = parser.parse_args(argv)
    spark = session(args.driver_memory)
    spark.sparkContext.setLogLevel("WARN")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    lines = clean(spark.read.csv(args.input, header=True, inferSchema=True))
    features = customer_features(lines)
    # Cached like most tutorials do: otherwise every k re-reads and re-aggregates the whole log.
    data = scaled_features(features).cache()
    customers = data.count()
    timings["read_features"] = time.perf_counter() - start
    silhouettes, models = sweep(data, customers)
    chosen = max(silhouettes, key=lambda k: silhouettes[k])
    timings["sweep"] = time.perf_counter() - start - sum(timings.values())
    assigned = models[chosen].transform(data).select("customer_id", F.col("prediction").cast("int").alias("segment"))
    assigned.write.mode("overwrite").parquet(os.path.join(args.output, "segments"))
    timings["write"] = time.perf_counter() - start - sum(timings.values())
    summary = {
        "chosen_k": chosen,
        "customers": customers,
        "silhouettes": {str(k): round(v, 6) for k, v in silhouettes.items()},
        "timings_seconds": {k: round(v, 3) for k, v in timings.items()},
    }
    print(json.dumps(summary), flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
