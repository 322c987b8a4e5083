"""Reading the input (CSV or Parquet; file, folder or glob) into canonical column names.

This module is one of the three that touch storage. What it returns keeps the source's values
untouched (CSV as text, Parquet as typed) so that validation can quarantine what does not parse.
"""

from __future__ import annotations

import glob
import logging
import os
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segmentation.config import InputConfig, is_local_path, local_path
from segmentation.errors import InputError, summary

log = logging.getLogger(__name__)

TRANSACTION_COLUMNS = (
    "customer_id",
    "invoice_id",
    "invoice_ts",
    "quantity",
    "unit_price",
    "product_id",
    "country",
)
CORRUPT = "_corrupt_record"
SOURCE_FILE = "_source_file"
RAW_LINE = "_raw_line"
SOURCE = "_source"
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".tsv", ".tsv.gz", ".txt", ".txt.gz", ".gz")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def quoted(name: str) -> Column:
    """A column by its exact name, even with spaces or dots in it."""
    return F.col("`" + name.replace("`", "``") + "`")


def resolve_format(path: str, declared: str) -> str:
    """``csv`` or ``parquet``: the declared format, or the one the file names suggest."""
    if declared != "auto":
        return declared
    names = [path]
    if is_local_path(path):
        local = local_path(path)
        matches = glob.glob(local)
        files = [m for m in matches if os.path.isfile(m)]
        for folder in (m for m in matches if os.path.isdir(m)):
            files += [str(p) for p in Path(folder).rglob("*") if p.is_file() and not p.name.startswith(("_", "."))]
        names = files or names
    lowered = [n.lower() for n in names]
    if all(n.endswith(PARQUET_SUFFIXES) for n in lowered):
        return "parquet"
    if all(n.endswith(CSV_SUFFIXES) for n in lowered):
        return "csv"
    raise InputError(
        f"input.format: cannot tell whether {path!r} is CSV or Parquet from its file names; "
        "set input.format to csv or parquet"
    )


def read_raw(spark: SparkSession, cfg: InputConfig) -> DataFrame:
    """The input as read, plus ``_source_file``, ``_corrupt_record``, ``_source`` and ``_raw_line`` (see below).

    Pandas' nanosecond timestamps in Parquet read as integers only under ``session.job_settings``, which every
    run holds for its duration.
    """
    assert cfg.path is not None
    fmt = resolve_format(cfg.path, cfg.format)
    if fmt == "csv":
        raw = _read_csv(spark, cfg)
        return with_raw_line(raw.withColumn(SOURCE_FILE, source_file(raw)))
    raw = _read_parquet(spark, cfg.path)
    return with_raw_line(raw.withColumns({CORRUPT: F.lit(None).cast("string"), SOURCE_FILE: source_file(raw)}))


def source_file(read: DataFrame) -> Column:
    """The URI of the file each line comes from, for ``read``: a reader's DataFrame, as the reader returned it.

    Spark's hidden file metadata column, ``_metadata.file_path`` (Unity Catalog and Spark Connect have it; not
    the older SQL function for the input file's name), found even where the input has a column named
    ``_metadata``. A local file's URI is given as ``file:///…``, as that function wrote it (the metadata column
    writes ``file:/…``), so the quarantine's ``source_file`` reads as it did; other URIs are left as they are.
    """
    path = read.metadataColumn("_metadata").getField("file_path")
    return F.regexp_replace(path, r"^file:/(?!/)", "file:///")


def with_raw_line(raw_df: DataFrame) -> DataFrame:
    """Add ``_source`` (every source column as text, in one struct) and ``_raw_line`` (see ``raw_line``)."""
    columns = [c for c in raw_df.columns if c not in (CORRUPT, SOURCE_FILE)]
    as_text = F.struct(*[quoted(c).cast("string").alias(c) for c in columns])
    # one projection, not two: over Spark Connect every step nests the plan deeper, and it has a depth limit
    return raw_df.withColumns({SOURCE: as_text, RAW_LINE: raw_line(as_text)})


def raw_line(source: Column | None = None) -> Column:
    """The line as the quarantine shows it: the malformed text as read, or ``_source`` as one JSON object.

    An expression over ``_source`` and ``_corrupt_record``, so a frame can be copied without it (the JSON text
    of every line is costly to build and to store) and get it back for the few lines that need it.
    """
    source = F.col(SOURCE) if source is None else source
    return F.coalesce(F.col(CORRUPT), F.to_json(source, {"ignoreNullFields": "false"}))


def source_columns(raw_df: DataFrame) -> list[str]:
    """The input's own columns (without the ones this module adds)."""
    return [c for c in raw_df.columns if c not in (CORRUPT, SOURCE_FILE, SOURCE, RAW_LINE)]


def _read_csv(spark: SparkSession, cfg: InputConfig) -> DataFrame:
    options = {
        "header": "true",
        "sep": cfg.csv.delimiter,
        "quote": cfg.csv.quote,
        "escape": cfg.csv.escape,
        "encoding": cfg.csv.encoding,
        "multiLine": str(cfg.csv.multiline).lower(),
        "inferSchema": "false",
    }
    try:
        header = spark.read.options(**options).csv(cfg.path).columns
    except Exception as exc:  # Py4J and Connect raise different types
        raise InputError(f"input.path: cannot read {cfg.path!r} as CSV: {summary(exc)}") from None
    if not header or len(set(header)) != len(header):
        raise InputError(
            f"input.path: {cfg.path!r} has no usable CSV header line (empty file, or repeated column names)"
        )
    schema = T.StructType(
        [T.StructField(name, T.StringType()) for name in header] + [T.StructField(CORRUPT, T.StringType())]
    )
    return (
        spark.read.options(**options)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .schema(schema)
        .csv(cfg.path)
    )


def _read_parquet(spark: SparkSession, path: str) -> DataFrame:
    """Parquet as typed; pandas' nanosecond timestamps read as integers under ``session.JOB_SQL_SETTINGS``."""
    try:
        return spark.read.parquet(path)
    except Exception as exc:  # Py4J and Connect raise different types
        raise InputError(f"input.path: cannot read {path!r} as Parquet: {summary(exc)}") from None


def canonical_transactions(raw_df: DataFrame, cfg: InputConfig) -> DataFrame:
    """Rename the mapped source columns to canonical names; a missing column is an error naming its key."""
    types = {f.name: f.dataType for f in raw_df.schema.fields}
    available = set(source_columns(raw_df))
    selected = []
    for canonical in TRANSACTION_COLUMNS:
        source = getattr(cfg.columns, canonical)
        if source is None:
            selected.append(F.lit(None).cast("string").alias(canonical))
            continue
        if source not in available:
            raise InputError(
                f"input.columns.{canonical}: column {source!r} not found in {cfg.path!r}; {_found(cfg, available)}"
            )
        _check_type(canonical, source, types[source], cfg.path)
        selected.append(quoted(source).alias(canonical))
    return raw_df.select(*selected, SOURCE_FILE, CORRUPT, SOURCE, RAW_LINE)


def canonical_from_source(cfg: InputConfig) -> dict[str, Column]:
    """Each canonical column as an expression over ``_source``: the text of the source column it maps (or null).

    The same values ``canonical_transactions`` and ``validation.with_line_reason`` give them (the source column
    as text), so a copy of the lines can leave them out and get them back from ``_source``.
    """
    return {
        canonical: F.col(SOURCE).getField(source) if source is not None else F.lit(None).cast("string")
        for canonical in TRANSACTION_COLUMNS
        for source in [getattr(cfg.columns, canonical)]
    }


def _found(cfg: InputConfig, available: set[str]) -> str:
    """What the file has instead: its column names, unless none of the mapped ones is there.

    Then the "header" is probably a data line (a file without a header, the wrong delimiter, not a CSV file),
    and its values are not repeated in the message.
    """
    mapped = {name for name in vars(cfg.columns).values() if name is not None}
    if not mapped & available:
        return (
            f"none of the mapped columns is in its header ({len(available)} columns); is it a CSV file with a "
            "header line, with the delimiter in input.csv.delimiter (or set input.format)?"
        )
    return f"its columns are: {', '.join(sorted(available))}"


TEXT_OR_NUMBER = (T.StringType, T.NumericType)
ACCEPTED_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "customer_id": (TEXT_OR_NUMBER, "text or a number"),
    "invoice_id": (TEXT_OR_NUMBER, "text or a number"),
    "invoice_ts": (
        (T.StringType, T.TimestampType, T.TimestampNTZType, T.DateType, T.IntegralType),
        "a timestamp, a date, an integer (epoch) or text",
    ),
    "quantity": (TEXT_OR_NUMBER, "a number (or text holding one)"),
    "unit_price": (TEXT_OR_NUMBER, "a number (or text holding one)"),
    "product_id": (TEXT_OR_NUMBER, "text or a number"),
    "country": (TEXT_OR_NUMBER, "text"),
}


def _check_type(canonical: str, source: str, data_type: T.DataType, path: str | None) -> None:
    """A typed (Parquet) column this job cannot validate line by line is an error naming its key."""
    accepted, expected = ACCEPTED_TYPES[canonical]
    if not isinstance(data_type, accepted):
        raise InputError(
            f"input.columns.{canonical}: column {source!r} in {path!r} has type {data_type.simpleString()}; "
            f"expected {expected}"
        )


def canonical_customers(raw_df: DataFrame, cfg: InputConfig) -> DataFrame:
    """Keep the id (as ``customer_id``) and the configured feature columns of a customer table."""
    available = set(source_columns(raw_df))
    opts = cfg.customers
    wanted = [("input.customers.id_column", opts.id_column)]
    wanted += [("input.customers.numeric_columns", c) for c in opts.numeric_columns]
    wanted += [("input.customers.categorical_columns", c) for c in opts.categorical_columns]
    for key, name in wanted:
        if name not in available:
            raise InputError(
                f"{key}: column {name!r} not found in {cfg.path!r}; its columns are: {', '.join(sorted(available))}"
            )
    features = [quoted(c).alias(c) for c in (*opts.numeric_columns, *opts.categorical_columns)]
    return raw_df.select(quoted(opts.id_column).alias("customer_id"), *features, SOURCE_FILE, CORRUPT, RAW_LINE)
