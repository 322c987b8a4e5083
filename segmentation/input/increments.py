"""What an incremental run reads (``input.incremental``): the input's files its state has not absorbed, or a catalog
table's rows past the highest value of ``input.incremental_column`` the state has read.

A file is known by its path, size and modified time as Spark lists it: the ``binaryFile`` source's listing, which
reads no content and leaves out the files Spark's readers leave out (names starting with ``_`` or ``.``). A file
the state absorbed that has since changed or vanished is refused, naming it: the state would no longer add up to
the input. Listing and reading go through Spark only, so this works on every file system Spark reaches and over
Spark Connect.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segmentation.config import InputConfig
from segmentation.errors import InputError, summary
from segmentation.input.sources import SOURCE, quoted

FILES_SCHEMA = T.StructType(
    [
        T.StructField("path", T.StringType(), False),
        T.StructField("size", T.LongType(), False),
        T.StructField("modified_ms", T.LongType(), False),
        T.StructField("lines", T.LongType(), False),
    ]
)


@dataclass(frozen=True, order=True)
class InputFile:
    """One input file as Spark lists it: its URI, size in bytes and modified time (epoch milliseconds)."""

    path: str
    size: int
    modified_ms: int

    def describe(self) -> str:
        when = dt.datetime.fromtimestamp(self.modified_ms / 1000, dt.UTC).isoformat(timespec="seconds")
        return f"{self.size} bytes, modified {when}"


def listed_files(spark: SparkSession, cfg: InputConfig) -> list[InputFile]:
    """Every file under ``input.path`` (a file, folder or glob) that Spark's readers read, sorted by path."""
    try:
        listing = spark.read.format("binaryFile").load(cfg.path)
        rows = listing.select("path", "length", F.unix_millis("modificationTime").alias("modified")).collect()
    except Exception as exc:  # Py4J and Connect raise different types
        raise InputError(f"input.path: cannot list the files of {cfg.path!r}: {summary(exc)}") from None
    return sorted(InputFile(r["path"], int(r["length"]), int(r["modified"])) for r in rows)


def new_files(listed: Sequence[InputFile], absorbed: Sequence[InputFile], *, state: str) -> list[InputFile]:
    """The listed files the state has not absorbed; ``InputError`` naming the first absorbed file that changed or
    is gone (``state`` names the run whose state absorbed it)."""
    now = {f.path: f for f in listed}
    for old in sorted(absorbed):
        current = now.get(old.path)
        fix = "restore it, or run with --rebuild to read the whole input into a new state"
        if current is None:
            raise InputError(
                f"input.path: {old.path} was absorbed into the state of {state} ({old.describe()}) and is no longer "
                f"there; {fix}"
            )
        if current != old:
            raise InputError(
                f"input.path: {old.path} has changed since the state of {state} absorbed it (then {old.describe()}, "
                f"now {current.describe()}); {fix}"
            )
    known = {f.path for f in absorbed}
    return [f for f in listed if f.path not in known]


def files_frame(spark: SparkSession, files: Sequence[InputFile], lines_df: DataFrame | None) -> DataFrame:
    """The ``state_files`` rows of ``files``: path, size, modified time and how many lines each gave (from
    ``lines_df``'s ``_source_file``; none without lines)."""
    listed = spark.createDataFrame([(f.path, f.size, f.modified_ms, 0) for f in files], FILES_SCHEMA)
    if lines_df is None:
        return listed
    counted = lines_df.groupBy(F.col("_source_file").alias("_file")).agg(F.count(F.lit(1)).alias("_lines"))
    # the lines name a local file as file:///…, Spark's listing as file:/…
    bare = F.regexp_replace("_file", r"^file:/+", "file:/")
    counted = counted.select(bare.alias("path"), "_lines")
    joined = listed.drop("lines").join(counted, "path", "left")
    return joined.select("path", "size", "modified_ms", F.coalesce("_lines", F.lit(0)).cast("long").alias("lines"))


def absorbed_files(files_df: DataFrame) -> list[InputFile]:
    """The files a state's ``state_files`` rows name (one row per file: O(files) on the driver)."""
    rows = files_df.select("path", "size", "modified_ms").collect()
    return [InputFile(r["path"], int(r["size"]), int(r["modified_ms"])) for r in rows]


def table_type(spark: SparkSession, cfg: InputConfig) -> T.DataType:
    """The type of ``input.incremental_column`` in the input table; ``InputError`` naming the key if it is not
    there."""
    assert cfg.table is not None and cfg.incremental_column is not None
    try:
        schema = spark.read.table(cfg.table).schema
    except Exception as exc:  # Py4J and Connect raise different types
        raise InputError(f"input.table: cannot read the table or view {cfg.table!r}: {summary(exc)}") from None
    found = {f.name: f.dataType for f in schema.fields}
    if cfg.incremental_column not in found:
        raise InputError(
            f"input.incremental_column: column {cfg.incremental_column!r} not found in {cfg.table!r}; its columns "
            f"are: {', '.join(sorted(found))}"
        )
    return found[cfg.incremental_column]


def rows_after(cfg: InputConfig, read_up_to: str | None, kind: T.DataType) -> Column | None:
    """The condition for a table's rows past ``read_up_to`` (the highest value read so far, as text; None: all)."""
    if read_up_to is None:
        return None
    assert cfg.incremental_column is not None
    return quoted(cfg.incremental_column) > F.lit(read_up_to).cast(kind)


def highest_read(copy_df: DataFrame, cfg: InputConfig, *, kind: T.DataType, before: str | None) -> str | None:
    """The highest value of ``input.incremental_column`` among the lines read (from the work copy's ``_source``,
    as text), or ``before`` when none was read."""
    assert cfg.incremental_column is not None
    value = F.col(SOURCE).getField(cfg.incremental_column).cast(kind)
    row = copy_df.agg(F.max(value).cast("string").alias("highest")).first()
    highest = row["highest"] if row is not None else None
    return before if highest is None else str(highest)
