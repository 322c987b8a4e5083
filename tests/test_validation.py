"""Validation: each quarantine reason, its order, returns kept, and the reconciliation of counts."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segmentation import pipeline, quality, sources
from segmentation.config import CustomerTableOptions, FeaturesConfig, InputConfig, JobConfig

from .conftest import raw_frame

COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
CFG = InputConfig()


def work_folder() -> str:
    """A fresh work folder for one labeling (its Parquet copy of the lines goes there)."""
    return tempfile.mkdtemp(prefix="segmentation-work-")


def labeled(spark: SparkSession, rows: list[tuple], as_of: dt.date | None = None):
    config = JobConfig(features=FeaturesConfig(as_of=as_of))
    frame, as_of, _ = pipeline.label_transactions(line_reasons(raw_frame(spark, rows, COLUMNS)), config, work_folder())
    return frame, as_of


def line_reasons(raw):
    return quality.with_line_reason(sources.canonical_transactions(raw, CFG), CFG)


def reasons_by_description(frame) -> dict[str, str | None]:
    return dict(reasons_by_description_rows(frame))


def reasons_by_description_rows(frame) -> list[tuple[str, str | None]]:
    described = frame.select(F.get_json_object("_raw_line", "$.Description").alias("d"), "reason")
    return [(r["d"], r["reason"]) for r in described.collect()]


def test_every_reason_in_order(spark: SparkSession) -> None:
    rows = [
        ("536365", "85123A", "ok", "6", "12/1/2010 8:26", "2.55", "17850", "United Kingdom", None),
        ("536366", "85123A", "malformed", "6", None, None, None, None, "536366,85123A,malformed,6"),
        ("536367", "85123A", "no customer", "6", "12/1/2010 8:26", "2.55", None, "United Kingdom", None),
        ("536368", "85123A", "blank customer", "6", "12/1/2010 8:26", "2.55", "  ", "United Kingdom", None),
        (None, "85123A", "no invoice", "6", "12/1/2010 8:26", "2.55", "17850", "United Kingdom", None),
        ("536369", "85123A", "bad date", "6", "13/45/2010 8:26", "2.55", "17850", "United Kingdom", None),
        ("536369", "85123A", "impossible date", "6", "2/30/2011 8:26", "2.55", "17850", "United Kingdom", None),
        ("536370", "85123A", "nan quantity", "NaN", "12/1/2010 8:26", "2.55", "17850", "United Kingdom", None),
        ("536370", "85123A", "inf price", "6", "12/1/2010 8:26", "Infinity", "17850", "United Kingdom", None),
        ("536370", "85123A", "1e400 price", "6", "12/1/2010 8:26", "1e400", "17850", "United Kingdom", None),
        ("536370", "85123A", "text quantity", "six", "12/1/2010 8:26", "2.55", "17850", "United Kingdom", None),
        ("536371", "85123A", "zero price", "6", "12/1/2010 8:26", "0", "17850", "United Kingdom", None),
        ("A536372", "B", "negative price", "1", "12/1/2010 8:26", "-11062.06", "17850", "United Kingdom", None),
        ("536373", "85123A", "late", "6", "12/11/2010 8:26", "2.55", "17850", "United Kingdom", None),
        ("C536374", "85123A", "return", "-2", "12/2/2010 9:00", "2.55", "17850.0", "United Kingdom", None),
        ("536365", "85123A", "ok", "6", "12/1/2010 8:26", "2.55", "17850", "United Kingdom", None),
    ]
    frame, _ = labeled(spark, rows, as_of=dt.date(2010, 12, 10))
    got = {r["_raw_line"]: r["reason"] for r in frame.collect()}
    by_desc = reasons_by_description(frame)
    assert got["536366,85123A,malformed,6"] == "malformed_row"
    assert by_desc["no customer"] == "missing_customer_id"
    assert by_desc["blank customer"] == "missing_customer_id"
    assert by_desc["no invoice"] == "missing_invoice_id"
    assert by_desc["bad date"] == "invalid_timestamp"
    assert by_desc["impossible date"] == "invalid_timestamp"
    assert by_desc["nan quantity"] == "invalid_number"
    assert by_desc["inf price"] == "invalid_number"
    assert by_desc["1e400 price"] == "invalid_number"
    assert by_desc["text quantity"] == "invalid_number"
    assert by_desc["zero price"] == "non_positive_price"
    assert by_desc["negative price"] == "non_positive_price"
    assert by_desc["late"] == "after_as_of"
    assert by_desc["return"] is None  # returns are kept
    ok = [r["reason"] for r in frame.collect() if '"Description":"ok"' in r["_raw_line"]]
    assert sorted(ok, key=lambda reason: reason or "") == [None, "duplicate_line"]  # one copy stays clean


def test_counts_reconcile_and_first_reason_wins(spark: SparkSession) -> None:
    rows = [
        ("1", "P", "a", "1", "12/1/2010 8:26", "1.0", "10", "UK", None),
        ("1", "P", "a", "1", "12/1/2010 8:26", "1.0", "10", "UK", None),  # duplicate
        ("1", "P", "a", "1", "12/1/2010 8:26", "1.0", "10", "UK", None),  # duplicate
        ("2", "P", "b", "1", "12/1/2010 8:26", "1.0", None, "UK", None),  # missing customer
        ("2", "P", "b", "1", "12/1/2010 8:26", "1.0", None, "UK", None),  # missing customer, not duplicate
        ("3", "P", "c", "1", "bad", "0", "11", "UK", None),  # bad date wins over zero price
    ]
    frame, as_of = labeled(spark, rows)
    counts = quality.count_lines(frame)
    assert as_of == dt.date(2010, 12, 1)
    assert counts.lines_in == 6
    assert counts.lines_clean == 1
    assert dict(counts.quarantined) == {"duplicate_line": 2, "missing_customer_id": 2, "invalid_timestamp": 1}
    assert counts.lines_in == counts.lines_clean + counts.lines_quarantined


def test_copies_in_two_files_keep_the_first_file_s_line(spark: SparkSession) -> None:
    line = ("1", "P", "a", "1", "12/1/2010 8:26", "1.0", "10", "UK", None)
    other = ("1", "P", "b", "1", "12/1/2010 8:26", "1.0", "10", "UK", None)
    raw = raw_frame(spark, [line, line], COLUMNS, source="file:/b.csv").unionByName(
        raw_frame(spark, [line, other], COLUMNS, source="file:/a.csv")
    )
    frame, _, _ = pipeline.label_transactions(line_reasons(raw), JobConfig(), work_folder())
    got = sorted((r["_source_file"], r["_raw_line"].count('"b"'), r["reason"] or "") for r in frame.collect())
    assert got == [
        ("file:/a.csv", 0, ""),  # the first copy, in source-file order, stays clean
        ("file:/a.csv", 1, ""),
        ("file:/b.csv", 0, "duplicate_line"),
        ("file:/b.csv", 0, "duplicate_line"),
    ]


def test_lines_with_the_same_hash_but_other_text_are_not_copies(spark: SparkSession) -> None:
    # the hash skips null columns, so a value moved into its null neighbour hashes alike
    moved = [
        ("1", "P", None, "1", "12/1/2010 8:26", "1.0", "10", "UK", None),
        ("1", None, "P", "1", "12/1/2010 8:26", "1.0", "10", "UK", None),
    ]
    keyed = quality.with_line_keys(line_reasons(raw_frame(spark, moved, COLUMNS)))
    assert sources.RAW_LINE not in keyed.columns  # the cached lines hold the source columns, not their JSON
    assert keyed.select(quality.LINE_HASH).distinct().count() == 1
    frame, _ = labeled(spark, moved)
    got = sorted((r["_raw_line"], r["reason"]) for r in frame.collect())
    assert [reason for _, reason in got] == [None, None]
    assert '"StockCode":"P","Description":null' in got[0][0] and '"StockCode":null,"Description":"P"' in got[1][0]


def test_labeling_reads_the_lines_from_one_parquet_copy_in_the_work_folder(spark: SparkSession, tmp_path: Path) -> None:
    lines = [
        ("1", "P", "a", "1", "12/1/2010 8:26", "1.0", "10", "UK", None),
        ("2", "P", "b", "1", "12/2/2010 8:26", "1.0", None, "UK", None),
    ]
    raw = raw_frame(spark, lines, COLUMNS)  # in memory: it has no input files of its own
    frame, as_of, persisted = pipeline.label_transactions(line_reasons(raw), JobConfig(), str(tmp_path))
    assert persisted == []  # no duplicates: nothing else is kept
    assert list((tmp_path / "lines").glob("*.parquet"))
    copy = f"file://{tmp_path / 'lines'}/"
    assert frame.inputFiles() and all(f.startswith(copy) for f in frame.inputFiles())
    assert as_of == dt.date(2010, 12, 1)  # the latest line without a reason
    got = sorted((r["_line_id"], r["customer_id"], r["invoice_id"], r["reason"]) for r in frame.collect())
    assert [row[1:] for row in got] == [("10", "1", None), (None, "2", "missing_customer_id")]
    assert sorted((r["_line_id"], r["customer_id"], r["invoice_id"], r["reason"]) for r in frame.collect()) == got
    # the copy holds each source value once: the canonical columns come back from _source
    written = spark.read.parquet(str(tmp_path / "lines")).columns
    assert sources.SOURCE in written and not set(sources.TRANSACTION_COLUMNS) & set(written)


@pytest.mark.parametrize("broadcast", [True, False])
def test_lines_sharing_a_hash_are_compared_by_their_text(spark: SparkSession, broadcast: bool) -> None:
    rows = [
        ("1", "P", "a", "1", "12/1/2010 8:26", "1.0", "10", "UK", None),
        ("1", "P", "a", "1", "12/1/2010 8:26", "1.0", "10", "UK", None),
        ("1", "P", "b", "1", "12/1/2010 8:26", "1.0", "10", "UK", None),
        ("1", "P", "c", "1", "12/1/2010 8:26", "1.0", "10", "UK", None),
        ("1", "P", "late", "1", "12/5/2010 8:26", "1.0", "10", "UK", None),
        ("1", "P", "late", "1", "12/5/2010 8:26", "1.0", "10", "UK", None),
    ]
    line_reason = line_reasons(raw_frame(spark, rows, COLUMNS))
    # every line gets the same "hash", as if all of them collided: only exact copies may be flagged
    lines = quality.with_line_keys(line_reason).withColumn(quality.LINE_HASH, F.lit(7).cast("long")).cache()
    assert quality.latest_valid_date(lines, None) == dt.date(2010, 12, 5)
    assert quality.latest_valid_date(lines, dt.date(2010, 12, 4)) == dt.date(2010, 12, 1)
    repeated = quality.repeated_hashes(lines)
    assert [r[quality.LINE_HASH] for r in repeated.collect()] == [7]
    as_of = dt.date(2010, 12, 2)  # the "late" copies are after it: quarantined for that, not as copies
    copies = quality.duplicate_copies(lines, repeated, as_of, broadcast)
    assert copies.count() == 1
    frame = quality.with_final_reason(lines, as_of, copies, broadcast)
    assert sorted((desc, reason or "") for desc, reason in reasons_by_description_rows(frame)) == [
        ("a", ""),
        ("a", "duplicate_line"),
        ("b", ""),
        ("c", ""),
        ("late", "after_as_of"),
        ("late", "after_as_of"),
    ]
    lines.unpersist()


def test_clean_lines_are_typed_and_returns_are_netted(spark: SparkSession) -> None:
    rows = [
        ("536365", "85123A", "x", "6", "12/1/2010 8:26", "2.55", "17850.0", " United Kingdom ", None),
        ("C536379", "85123A", "x", "-2", "12/9/2010 9:01", "2.55", "17850", "United Kingdom", None),
        ("536380", "22", "x", "-1", "12/9/2010 9:02", "4.00", "17850", "United Kingdom", None),
        ("c536381", "23", "x", "3", "12/9/2010 9:03", "1.00", "17850", "United Kingdom", None),
    ]
    frame, _ = labeled(spark, rows)
    clean = quality.clean_lines(frame)
    expected = spark.createDataFrame(
        [
            ("17850", "536365", dt.datetime(2010, 12, 1, 8, 26), 6.0, 2.55, "85123A", "United Kingdom", False, 15.3),
            ("17850", "C536379", dt.datetime(2010, 12, 9, 9, 1), -2.0, 2.55, "85123A", "United Kingdom", True, -5.1),
            ("17850", "536380", dt.datetime(2010, 12, 9, 9, 2), -1.0, 4.0, "22", "United Kingdom", True, -4.0),
            ("17850", "c536381", dt.datetime(2010, 12, 9, 9, 3), 3.0, 1.0, "23", "United Kingdom", True, -3.0),
        ],
        "customer_id string, invoice_id string, invoice_ts timestamp, quantity double, unit_price double, "
        "product_id string, country string, is_return boolean, amount double",
    )
    got = clean.withColumn("amount", F.round("amount", 6))
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_quarantine_keeps_original_values_and_source(spark: SparkSession) -> None:
    rows = [
        ("1", "P", "a", "1", "12/1/2010 8:26", "1.0", "10", "UK", None),
        ("2", "P", "b", "1,5", "12/1/2010 8:26", "1.0", "11", "UK", None),
    ]
    frame, _ = labeled(spark, rows)
    quarantined = quality.quarantined_lines(frame, sources.TRANSACTION_COLUMNS).collect()
    assert len(quarantined) == 1
    row = quarantined[0]
    assert row["reason"] == "invalid_number"
    assert row["quantity"] == "1,5"
    assert row["customer_id"] == "11"
    assert row["source_file"] == "file:/in.csv"
    assert '"Quantity":"1,5"' in row["raw_line"] and '"Description":"b"' in row["raw_line"]


def test_quarantine_share_threshold_fails_with_the_key() -> None:
    counts = quality.LineCounts(lines_in=10, lines_clean=4, quarantined={"missing_customer_id": 6})
    with pytest.raises(quality.QualityError, match=r"quality\.max_quarantine_share: 60\.0% of the 10 lines"):
        quality.check_quarantine_share(counts, 0.5, "log.csv")
    quality.check_quarantine_share(counts, 0.6, "log.csv")
    with pytest.raises(quality.QualityError, match="holds no data lines"):
        quality.check_quarantine_share(quality.LineCounts(0, 0, {}), 0.5, "empty.csv")


def test_typed_sources_parse(spark: SparkSession) -> None:
    schema = T.StructType(
        [
            T.StructField("cid", T.DoubleType()),
            T.StructField("ns", T.LongType()),
            T.StructField("ts", T.TimestampType()),
        ]
    )
    frame = spark.createDataFrame(
        [
            (17850.0, 1291191960000000000, dt.datetime(2010, 12, 1, 8, 26)),
            (None, None, None),
            (1e300, None, None),  # too large for an integer id: kept as text, not an overflow under ANSI
            (12.5, None, None),
        ],
        schema,
    )
    got = frame.select(
        quality.customer_key(F.col("cid"), T.DoubleType()).alias("cid"),
        quality.parsed_timestamp(F.col("ns"), T.LongType(), ["x"], "ns").alias("from_ns"),
        quality.parsed_timestamp(F.col("ts"), T.TimestampType(), ["x"], "ns").alias("from_ts"),
    ).collect()
    assert got[0]["cid"] == "17850"
    assert got[0]["from_ns"] == dt.datetime(2010, 12, 1, 8, 26)
    assert got[0]["from_ts"] == dt.datetime(2010, 12, 1, 8, 26)
    assert got[1]["cid"] is None and got[1]["from_ns"] is None
    assert (got[2]["cid"], got[3]["cid"]) == ("1.0E300", "12.5")


def test_customer_table_reasons(spark: SparkSession) -> None:
    cfg = InputConfig(
        kind="customers",
        customers=CustomerTableOptions(
            id_column="id", numeric_columns=("age", "income"), categorical_columns=("gender",)
        ),
    )
    raw = raw_frame(
        spark,
        [
            ("1", "30", "50", "Male", None),
            ("2", "NaN", "50", "Female", None),
            (None, "30", "50", "Male", None),
            ("1", "31", "51", "Male", None),  # same id, other values
            ("3", "40", "60", None, None),
            ("3", "40", "60", None, None),  # exact duplicate
        ],
        ["id", "age", "income", "gender"],
    )
    frame = quality.with_customer_reason(sources.canonical_customers(raw, cfg), cfg)
    counts = quality.count_lines(frame)
    assert counts.lines_clean == 2
    assert dict(counts.quarantined) == {
        "invalid_number": 1,
        "missing_customer_id": 1,
        "duplicate_customer_id": 1,
        "duplicate_line": 1,
    }
    clean = quality.clean_customers(frame, cfg).orderBy("customer_id").collect()
    assert [(r["customer_id"], r["age"], r["gender"]) for r in clean] == [("1", 30.0, "Male"), ("3", 40.0, "(missing)")]
