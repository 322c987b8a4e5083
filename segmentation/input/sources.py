"""Reading the input (CSV, Parquet or JSON lines: file, folder or glob; or a catalog table or view) into
canonical column names.

This module is one of the few that touch storage. What it returns keeps the source's values untouched (CSV and
JSON lines as text, Parquet and tables as typed) so that validation can quarantine what does not parse.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

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
    "amount",
)
CORRUPT = "_corrupt_record"
SOURCE_FILE = "_source_file"
RAW_LINE = "_raw_line"
SOURCE = "_source"
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".tsv", ".tsv.gz", ".txt", ".txt.gz", ".gz")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
JSON_SUFFIXES = tuple(f"{s}{c}" for s in (".json", ".jsonl", ".ndjson") for c in ("", ".gz", ".bz2"))
HEADER_SAMPLE = 1000  # JSON lines: the fields of this many first lines are the ones a mapping is checked against


def quoted(name: str) -> Column:
    """A column by its exact name, even with spaces or dots in it."""
    return F.col("`" + name.replace("`", "``") + "`")


def resolve_format(path: str, declared: str) -> str:
    """``csv``, ``parquet`` or ``json``: the declared format, or the one the file names suggest."""
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
    if all(n.endswith(JSON_SUFFIXES) for n in lowered):
        return "json"
    if all(n.endswith(CSV_SUFFIXES) and not n.endswith(JSON_SUFFIXES) for n in lowered):
        return "csv"
    raise InputError(
        f"input.format: cannot tell whether {path!r} is CSV, Parquet or JSON lines from its file names; "
        "set input.format to csv, parquet or json"
    )


def read_raw(
    spark: SparkSession, cfg: InputConfig, *, files: Sequence[str] | None = None, rows_after: Column | None = None
) -> DataFrame:
    """The input as read, plus ``_source_file``, ``_corrupt_record``, ``_source`` and ``_raw_line`` (see below),
    with only the lines ``input.where`` selects (and every malformed line, which it cannot judge).

    ``files`` (an incremental run's new files, as Spark lists them) are read instead of all of ``input.path``;
    ``rows_after`` (a condition over a table's columns) keeps only a table's new rows. A catalog table's lines name
    the table as their source file. Pandas' nanosecond timestamps in Parquet read as integers only under
    ``session.job_settings``, which every run holds for its duration.
    """
    if cfg.table is not None:
        read = _read_table(spark, cfg.table)
        if rows_after is not None:
            read = read.filter(rows_after)
        located = read.withColumns({CORRUPT: F.lit(None).cast("string"), SOURCE_FILE: F.lit(cfg.table)})
        return with_raw_line(selected(located, cfg))
    assert cfg.path is not None
    fmt = resolve_format(cfg.path, cfg.format)
    paths = [cfg.path] if files is None else list(files)
    if fmt == "csv":
        read = _read_csv(spark, cfg, paths)
        located = read.withColumn(SOURCE_FILE, source_file(read))
    elif fmt == "json":
        located = _read_json(spark, cfg, paths)
    else:
        read = _read_parquet(spark, cfg, paths)
        located = read.withColumns({CORRUPT: F.lit(None).cast("string"), SOURCE_FILE: source_file(read)})
    return with_raw_line(selected(located, cfg))


def _reader_options(cfg: InputConfig, paths: Sequence[str]) -> dict[str, str]:
    """``basePath`` when some files of a folder are read (an incremental run's new files, as Spark lists them): the
    columns its sub-folder names give (``date=2024-06-30/``) are read as when the whole folder is. Not for a glob,
    nor for ``input.path`` itself or a single file it names."""
    assert cfg.path is not None
    given = cfg.path.rstrip("/")
    if list(paths) == [cfg.path] or any(c in cfg.path for c in "*?[{"):
        return {}
    if len(paths) == 1 and paths[0].rstrip("/").endswith("/" + given.split("/")[-1]):
        return {}  # the file input.path names
    return {"basePath": given}


def selected(located: DataFrame, cfg: InputConfig) -> DataFrame:
    """The lines ``input.where`` selects, and every malformed line; an invalid predicate is an ``InputError``.

    The predicate sees the input's columns as read (text for CSV and JSON lines, typed for Parquet and tables);
    a line for which it is null is not selected, as in SQL.
    """
    if cfg.where is None:
        return located
    predicate = F.expr(cfg.where)
    start = f"input.where: {cfg.where!r} is not a predicate over the columns of {cfg.source!r}"
    try:
        kind = located.select(predicate.alias("_where")).schema["_where"].dataType  # analysed now, also over Connect
    except Exception as exc:  # Py4J and Connect raise different types
        raise InputError(f"{start}: {summary(exc)}") from None
    if not isinstance(kind, T.BooleanType):
        raise InputError(f"{start}: it gives {kind.simpleString()}, not true or false")
    try:
        chosen = located.filter(predicate | F.col(CORRUPT).isNotNull())
        _ = chosen.schema  # a condition a filter cannot hold (an aggregate, a window) fails here
    except Exception as exc:  # Py4J and Connect raise different types
        raise InputError(f"{start}: {summary(exc)}") from None
    return chosen


def _read_table(spark: SparkSession, name: str) -> DataFrame:
    """A catalog table or view, through the session's catalog."""
    try:
        table = spark.read.table(name)
        _ = table.schema  # resolved now, also over Spark Connect
    except Exception as exc:  # Py4J and Connect raise different types
        raise InputError(f"input.table: cannot read the table or view {name!r}: {summary(exc)}") from None
    if CORRUPT in table.columns or SOURCE_FILE in table.columns:
        raise InputError(f"input.table: {name!r} has a column named {CORRUPT} or {SOURCE_FILE}, which this job adds")
    return table


def mapped_columns(cfg: InputConfig) -> list[tuple[str, str]]:
    """The (config key, source column) pairs the job reads."""
    if cfg.kind == "customers":
        opts = cfg.customers
        pairs = [("input.customers.id_column", opts.id_column)]
        pairs += [("input.customers.numeric_columns", c) for c in opts.numeric_columns]
        return pairs + [("input.customers.categorical_columns", c) for c in opts.categorical_columns]
    return [
        (f"input.columns.{canonical}", source)
        for canonical in TRANSACTION_COLUMNS
        if (source := getattr(cfg.columns, canonical)) is not None
    ]


# the mapped columns without which no line is valid: a JSON field for them must be in the first lines
REQUIRED_KEYS = (
    "input.columns.customer_id",
    "input.columns.invoice_ts",
    "input.columns.unit_price",
    "input.columns.amount",
    "input.customers.id_column",
)


def _read_json(spark: SparkSession, cfg: InputConfig, paths: Sequence[str]) -> DataFrame:
    """JSON lines (UTF-8, one object per line; blank lines skipped), with ``_source_file``: the fields of the first
    ``HEADER_SAMPLE`` lines and the mapped ones, as text (numbers too: validation parses them), and as
    ``_corrupt_record`` the text of each line that is not a JSON object.

    The fields come from a sample, not from schema inference, which would read every line once more. A required
    mapped field (customer id, timestamp, money) that none of the sampled lines has is an error naming its key.
    """
    assert cfg.path is not None
    try:
        lines = spark.read.options(**_reader_options(cfg, paths)).text(list(paths))
        keys = (
            lines.limit(HEADER_SAMPLE).select(F.explode(F.json_object_keys("value")).alias("key")).distinct().collect()
        )
    except Exception as exc:  # Py4J and Connect raise different types
        raise InputError(f"input.path: cannot read {cfg.path!r} as JSON lines: {summary(exc)}") from None
    fields = sorted(row["key"] for row in keys)
    mapped = mapped_columns(cfg)
    for key, name in mapped:
        if key in REQUIRED_KEYS and name not in fields:
            found = {n for _, n in mapped} & set(fields)
            listed = f"their fields are: {', '.join(fields)}" if found else f"they have {len(fields)} other fields"
            raise InputError(
                f"{key}: field {name!r} is in none of the first {HEADER_SAMPLE} lines of {cfg.path!r}; {listed}"
            )
    names = list(dict.fromkeys([*fields, *(name for _, name in mapped)]))
    schema = T.StructType([T.StructField(name, T.StringType()) for name in names])
    value = F.col("value")
    parsed = F.from_json(value, schema)
    malformed = F.json_object_keys(value).isNull()  # not JSON, or JSON but not an object
    return lines.filter(F.trim(value) != "").select(
        *[parsed.getField(name).alias(name) for name in names],
        F.when(malformed, value).alias(CORRUPT),
        source_file(lines).alias(SOURCE_FILE),
    )


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
    return source_columns_of(raw_df.columns)


def source_columns_of(columns: Sequence[str]) -> list[str]:
    """``columns`` without the ones this module adds."""
    return [c for c in columns if c not in (CORRUPT, SOURCE_FILE, SOURCE, RAW_LINE)]


def _read_csv(spark: SparkSession, cfg: InputConfig, paths: Sequence[str]) -> DataFrame:
    options = {
        **_reader_options(cfg, paths),
        "header": "true",
        "sep": cfg.csv.delimiter,
        "quote": cfg.csv.quote,
        "escape": cfg.csv.escape,
        "encoding": cfg.csv.encoding,
        "multiLine": str(cfg.csv.multiline).lower(),
        "inferSchema": "false",
    }
    try:
        header = spark.read.options(**options).csv(list(paths)).columns
    except Exception as exc:  # Py4J and Connect raise different types
        raise InputError(f"input.path: cannot read {cfg.path!r} as CSV: {summary(exc)}") from None
    if not header:
        raise InputError(f"input.path: {cfg.path!r} has no usable CSV header line (an empty file?)")
    schema = T.StructType(
        [T.StructField(name, T.StringType()) for name in header] + [T.StructField(CORRUPT, T.StringType())]
    )
    return (
        spark.read.options(**options)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .schema(schema)
        .csv(list(paths))
    )


def _read_parquet(spark: SparkSession, cfg: InputConfig, paths: Sequence[str]) -> DataFrame:
    """Parquet as typed; pandas' nanosecond timestamps read as integers under ``session.JOB_SQL_SETTINGS``."""
    try:
        return spark.read.options(**_reader_options(cfg, paths)).parquet(*paths)
    except Exception as exc:  # Py4J and Connect raise different types
        raise InputError(f"input.path: cannot read {cfg.path!r} as Parquet: {summary(exc)}") from None


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
            _not_found(f"input.columns.{canonical}", source, cfg, raw_df.columns)
        _check_type(canonical, source, types[source], cfg.source)
        selected.append(quoted(source).alias(canonical))
    return raw_df.select(*selected, SOURCE_FILE, CORRUPT, SOURCE, RAW_LINE)


def canonical_from_source(cfg: InputConfig) -> dict[str, Column]:
    """Each canonical column as an expression over ``_source``: the text of the source column it maps (or null).

    The same values ``canonical_transactions`` and ``input.rules.with_line_reason`` give them (the source column
    as text), so a copy of the lines can leave them out and get them back from ``_source``.
    """
    return {
        canonical: F.col(SOURCE).getField(source) if source is not None else F.lit(None).cast("string")
        for canonical in TRANSACTION_COLUMNS
        for source in [getattr(cfg.columns, canonical)]
    }


def _not_found(key: str, name: str, cfg: InputConfig, columns: Sequence[str]) -> NoReturn:
    """The error for a mapped column the input does not have: one its header names twice (Spark then reads the
    copies as ``<name><position>``), or one that is not there."""
    repeats = [i for i, column in enumerate(columns) if column.lower() == f"{name}{i}".lower()]
    if repeats:
        positions = " and ".join(str(i + 1) for i in repeats)
        raise InputError(
            f"{key}: the column name {name!r} repeats in the header of {cfg.source!r} (columns {positions}); "
            "each name must be there once: rename or drop the copies"
        )
    available = set(source_columns_of(columns))
    raise InputError(f"{key}: column {name!r} not found in {cfg.source!r}; {_found(cfg, available)}")


def _found(cfg: InputConfig, available: set[str]) -> str:
    """What the file has instead: its column names, unless none of the mapped ones is there.

    Then the "header" is probably a data line (a file without a header, the wrong delimiter, not a CSV file),
    and its values are not repeated in the message.
    """
    mapped = {name for _, name in mapped_columns(cfg)}
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
    "amount": (TEXT_OR_NUMBER, "a number (or text holding one)"),
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
    for key, name in mapped_columns(cfg):
        if name not in available:
            _not_found(key, name, cfg, raw_df.columns)
    features = [quoted(c).alias(c) for c in (*opts.numeric_columns, *opts.categorical_columns)]
    return raw_df.select(quoted(opts.id_column).alias("customer_id"), *features, SOURCE_FILE, CORRUPT, RAW_LINE)
