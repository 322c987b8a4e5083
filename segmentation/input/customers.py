"""A ready customer table (``input.kind: customers``): its reasons (malformed, missing id, bad number, duplicate
line, duplicate id) and its clean rows."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segmentation.config import InputConfig
from segmentation.input.duplicates import with_duplicate_reason
from segmentation.input.parsing import customer_key, is_finite, parsed_number
from segmentation.input.reasons import (
    DUPLICATE_CUSTOMER,
    DUPLICATE_LINE,
    INVALID_NUMBER,
    MALFORMED,
    MISSING_CUSTOMER,
    REASON,
)
from segmentation.input.sources import CORRUPT, RAW_LINE, SOURCE_FILE


def with_customer_reason(canonical_df: DataFrame, cfg: InputConfig) -> DataFrame:
    """Reasons for a customer table: malformed, missing id, bad number, duplicate line, duplicate id."""
    types = {f.name: f.dataType for f in canonical_df.schema.fields}
    opts = cfg.customers
    numbers = {c: parsed_number(F.col(c), types[c], cfg.numbers) for c in opts.numeric_columns}
    typed = canonical_df.select(
        customer_key(F.col("customer_id"), types["customer_id"]).alias("_customer_key"),
        F.col("customer_id").cast("string").alias("customer_id"),
        *[expr.alias(c) for c, expr in numbers.items()],
        *[F.trim(F.col(c).cast("string")).alias(c) for c in opts.categorical_columns],
        SOURCE_FILE,
        CORRUPT,
        RAW_LINE,
    )
    bad_number = F.lit(False)
    for c in opts.numeric_columns:
        bad_number = bad_number | ~is_finite(F.col(c))
    reason = (
        F.when(F.col(CORRUPT).isNotNull(), F.lit(MALFORMED))
        .when(F.col("_customer_key").isNull(), F.lit(MISSING_CUSTOMER))
        .when(bad_number, F.lit(INVALID_NUMBER))
    )
    labeled = with_duplicate_reason(typed.withColumn(REASON, reason), [RAW_LINE], DUPLICATE_LINE)
    return with_duplicate_reason(labeled, ["_customer_key"], DUPLICATE_CUSTOMER)


def clean_customers(labeled_df: DataFrame, cfg: InputConfig) -> DataFrame:
    """One row per valid customer: id, numeric features as doubles, categorical ones as text."""
    opts = cfg.customers
    categorical = [F.coalesce(F.col(c), F.lit("(missing)")).alias(c) for c in opts.categorical_columns]
    return labeled_df.filter(F.col(REASON).isNull()).select(
        F.col("_customer_key").alias("customer_id"), *opts.numeric_columns, *categorical
    )
