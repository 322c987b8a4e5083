"""Validation: each quarantine reason, its order, returns kept, and the reconciliation of counts."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segmentation.config import CustomerTableOptions, FeaturesConfig, InputConfig, JobConfig, QualityConfig
from segmentation.errors import InputError
from segmentation.input import customers, duplicates, quarantine, rules, sources
from segmentation.input import validate as validation
from segmentation.input.clean import clean_lines
from segmentation.publish import files

from .conftest import raw_frame

COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
CFG = InputConfig()
TODAY = dt.date(2024, 1, 31)  # the day "the job runs" in these tests
Validate = Callable[..., validation.Validated]


@pytest.fixture
def validate(tmp_path: Path) -> Validate:
    """Validation as the job runs it: the lines for the copy, the copy in a fresh folder, then ``validate``.

    Any share of lines may be quarantined here (the threshold has tests of its own).
    """
    copies = itertools.count()

    def run(
        raw: DataFrame,
        as_of: dt.date | None = None,
        today: dt.date = TODAY,
        window_days: int | None = None,
        max_share: float = 1.0,
    ) -> validation.Validated:
        features = FeaturesConfig(as_of=as_of, window_days=window_days)
        cfg = JobConfig(quality=QualityConfig(max_quarantine_share=max_share), features=features)
        path = str(tmp_path / f"copy{next(copies)}")
        copy = files.write_work_copy(validation.lines_for_copy(raw, cfg.input), path)
        return validation.validate(copy, cfg, today=today, keep=lambda frame: frame)

    return run


def line_reasons(raw: DataFrame) -> DataFrame:
    return validation.with_line_reason(sources.canonical_transactions(raw, CFG), CFG)


def described(frame: DataFrame) -> DataFrame:
    """Each line's description (its whole text for a malformed line) and reason."""
    text = F.coalesce(F.get_json_object(sources.RAW_LINE, "$.Description"), F.col(sources.RAW_LINE))
    return frame.select(text.alias("description"), rules.REASON)


def reasons_by_description_rows(frame: DataFrame) -> list[tuple[str, str | None]]:
    return [(r["description"], r["reason"]) for r in described(frame).collect()]


def test_every_reason_in_order(spark: SparkSession, validate: Validate) -> None:
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
        ("536373", "85123A", "future", "6", "2/1/2024 0:00", "2.55", "17850", "United Kingdom", None),
        ("C536374", "85123A", "return", "-2", "12/2/2010 9:00", "2.55", "17850.0", "United Kingdom", None),
        ("536365", "85123A", "ok", "6", "12/1/2010 8:26", "2.55", "17850", "United Kingdom", None),
    ]
    validated = validate(raw_frame(spark, rows, COLUMNS), as_of=dt.date(2010, 12, 10))
    expected = spark.createDataFrame(
        [
            ("536366,85123A,malformed,6", "malformed_row"),
            ("no customer", "missing_customer_id"),
            ("blank customer", "missing_customer_id"),
            ("no invoice", "missing_invoice_id"),
            ("bad date", "invalid_timestamp"),
            ("impossible date", "invalid_timestamp"),
            ("nan quantity", "invalid_number"),
            ("inf price", "invalid_number"),
            ("1e400 price", "invalid_number"),
            ("text quantity", "invalid_number"),
            ("zero price", "non_positive_price"),
            ("negative price", "non_positive_price"),
            ("late", "out_of_window"),  # not a quarantine reason: valid, but dated after the as-of date
            ("future", "after_today"),
            ("return", None),  # returns are kept
            ("ok", None),  # one copy stays clean
            ("ok", "duplicate_line"),
        ],
        "description string, reason string",
    )
    assert_df_equality(described(validated.lines), expected, ignore_row_order=True, ignore_nullable=True)
    assert validated.as_of == dt.date(2010, 12, 10)  # as configured, not the latest line's date


def test_counts_reconcile_and_first_reason_wins(spark: SparkSession, validate: Validate) -> None:
    rows = [
        ("1", "P", "a", "1", "12/1/2010 8:26", "1.0", "10", "UK", None),
        ("1", "P", "a", "1", "12/1/2010 8:26", "1.0", "10", "UK", None),  # duplicate
        ("1", "P", "a", "1", "12/1/2010 8:26", "1.0", "10", "UK", None),  # duplicate
        ("2", "P", "b", "1", "12/1/2010 8:26", "1.0", None, "UK", None),  # missing customer
        ("2", "P", "b", "1", "12/1/2010 8:26", "1.0", None, "UK", None),  # missing customer, not duplicate
        ("3", "P", "c", "1", "bad", "0", "11", "UK", None),  # bad date wins over zero price
    ]
    validated = validate(raw_frame(spark, rows, COLUMNS))
    counts = validated.counts
    assert counts == validation.count_lines(validated.lines)
    assert validated.as_of == dt.date(2010, 12, 1)
    assert counts.lines_in == 6
    assert counts.lines_clean == 1
    assert dict(counts.quarantined) == {"duplicate_line": 2, "missing_customer_id": 2, "invalid_timestamp": 1}
    assert counts.lines_in == counts.lines_clean + counts.lines_quarantined


def test_copies_in_two_files_keep_the_first_file_s_line(spark: SparkSession, validate: Validate) -> None:
    line = ("1", "P", "a", "1", "12/1/2010 8:26", "1.0", "10", "UK", None)
    other = ("1", "P", "b", "1", "12/1/2010 8:26", "1.0", "10", "UK", None)
    raw = raw_frame(spark, [line, line], COLUMNS, source="file:/b.csv").unionByName(
        raw_frame(spark, [line, other], COLUMNS, source="file:/a.csv")
    )
    frame = validate(raw).lines
    got = sorted((r["_source_file"], r["_raw_line"].count('"b"'), r["reason"] or "") for r in frame.collect())
    assert got == [
        ("file:/a.csv", 0, ""),  # the first copy, in source-file order, stays clean
        ("file:/a.csv", 1, ""),
        ("file:/b.csv", 0, "duplicate_line"),
        ("file:/b.csv", 0, "duplicate_line"),
    ]


def test_lines_with_the_same_hash_but_other_text_are_not_copies(spark: SparkSession, validate: Validate) -> None:
    # the hash skips null columns, so a value moved into its null neighbour hashes alike
    moved = [
        ("1", "P", None, "1", "12/1/2010 8:26", "1.0", "10", "UK", None),
        ("1", None, "P", "1", "12/1/2010 8:26", "1.0", "10", "UK", None),
    ]
    keyed = validation.with_line_keys(line_reasons(raw_frame(spark, moved, COLUMNS)))
    assert sources.RAW_LINE not in keyed.columns  # the copied lines hold the source columns, not their JSON
    assert keyed.select(duplicates.LINE_HASH).distinct().count() == 1
    frame = validate(raw_frame(spark, moved, COLUMNS)).lines
    got = sorted((r["_raw_line"], r["reason"]) for r in frame.collect())
    assert [reason for _, reason in got] == [None, None]
    assert '"StockCode":"P","Description":null' in got[0][0] and '"StockCode":null,"Description":"P"' in got[1][0]


def test_validation_reads_the_lines_from_their_work_copy(spark: SparkSession, tmp_path: Path) -> None:
    lines = [
        ("1", "P", "a", "1", "12/1/2010 8:26", "1.0", "10", "UK", None),
        ("2", "P", "b", "1", "12/2/2010 8:26", "1.0", None, "UK", None),
    ]
    raw = raw_frame(spark, lines, COLUMNS)  # in memory: it has no input files of its own
    kept: list[DataFrame] = []
    copy = files.write_work_copy(validation.lines_for_copy(raw, CFG), str(tmp_path / "lines"))
    validated = validation.validate(copy, JobConfig(), today=TODAY, keep=lambda f: kept.append(f) or f)
    assert kept == []  # no duplicates: nothing else is kept
    frame = validated.lines
    prefix = f"file://{tmp_path / 'lines'}/"
    assert frame.inputFiles() and all(f.startswith(prefix) for f in frame.inputFiles())
    assert validated.as_of == dt.date(2010, 12, 1)  # the latest line without a reason
    expected = spark.createDataFrame(
        # the line without a customer is dated after the as-of date: it belongs to a later period, not quarantined
        [("10", "1", None), (None, "2", "out_of_window")],
        "customer_id string, invoice_id string, reason string",
    )
    got = frame.select("customer_id", "invoice_id", "reason")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    # the copy holds each source value once: the canonical columns come back from _source
    written = spark.read.parquet(str(tmp_path / "lines")).columns
    assert sources.SOURCE in written and not set(sources.TRANSACTION_COLUMNS) & set(written)


def test_a_log_dated_only_after_today_is_refused(spark: SparkSession, validate: Validate) -> None:
    rows = [
        ("1", "P", "a", "1", "12/1/2030 8:26", "1.0", "10", "UK", None),
        ("2", "P", "b", "1", "1/1/2031 0:00", "1.0", "10", "UK", None),
    ]
    with pytest.raises(InputError, match=r"input\.path: every line of .* is dated after today \(2024-01-31 in UTC\)"):
        validate(raw_frame(spark, rows, COLUMNS))
    # an as-of date after today: the lines up to it are in, the ones after it are the lines dated "after today"
    counts = validate(raw_frame(spark, rows, COLUMNS), as_of=dt.date(2030, 12, 31)).counts
    assert (counts.lines_clean, dict(counts.quarantined), counts.out_of_window) == (1, {"after_today": 1}, 0)


def test_lines_dated_outside_the_window_are_counted_apart_not_quarantined(
    spark: SparkSession, validate: Validate
) -> None:
    rows = [
        ("1", "P", "ok", "1", "12/1/2010 8:26", "1.0", "10", "UK", None),
        ("2", "P", "late", "1", "12/3/2010 0:00", "1.0", "10", "UK", None),
        ("2", "P", "late", "1", "12/3/2010 0:00", "1.0", "10", "UK", None),  # a copy of an out-of-window line
        ("3", "P", "late, no customer", "1", "12/3/2010 0:00", "1.0", None, "UK", None),  # a later period's problem
        ("4", "P", "no customer", "1", "12/2/2010 23:59", "1.0", None, "UK", None),
        ("5", "P", "future", "1", "2/1/2024 0:00", "1.0", "10", "UK", None),  # after today (2024-01-31)
        ("6", "P", "x", "1", "12/3/2010 0:00", "1.0", "10", "UK", "6,P,torn"),  # malformed: its date is not trusted
    ]
    validated = validate(raw_frame(spark, rows, COLUMNS), as_of=dt.date(2010, 12, 2))
    assert sorted((d, r or "") for d, r in reasons_by_description_rows(validated.lines)) == [
        ("6,P,torn", "malformed_row"),
        ("future", "after_today"),
        ("late", "out_of_window"),
        ("late", "out_of_window"),
        ("late, no customer", "out_of_window"),
        ("no customer", "missing_customer_id"),
        ("ok", ""),
    ]
    counts = validated.counts
    assert counts == validation.LineCounts(
        lines_in=7,
        lines_clean=1,
        quarantined={"malformed_row": 1, "after_today": 1, "missing_customer_id": 1},
        out_of_window=3,
    )
    assert counts.quarantined_share == 0.75  # of the 4 lines in the window
    assert counts.as_dict()["lines_out_of_window"] == 3
    quarantined = quarantine.quarantined_lines(validated.lines, validated.text_columns)
    assert sorted(r["reason"] for r in quarantined.collect()) == ["after_today", "malformed_row", "missing_customer_id"]
    assert [r["invoice_id"] for r in clean_lines(validated.lines, InputConfig()).collect()] == ["1"]


def test_window_days_keeps_the_days_ending_with_the_as_of_date(spark: SparkSession, validate: Validate) -> None:
    rows = [
        ("1", "P", "before", "1", "11/30/2010 23:59", "1.0", "10", "UK", None),
        ("2", "P", "first day", "1", "12/1/2010 0:00", "1.0", "10", "UK", None),
        ("3", "P", "as-of day", "1", "12/10/2010 23:59", "1.0", "10", "UK", None),
        ("4", "P", "after", "1", "12/11/2010 0:00", "1.0", "10", "UK", None),
    ]
    validated = validate(raw_frame(spark, rows, COLUMNS), as_of=dt.date(2010, 12, 10), window_days=10)
    assert dict(reasons_by_description_rows(validated.lines)) == {
        "before": "out_of_window",
        "first day": None,
        "as-of day": None,
        "after": "out_of_window",
    }
    assert (validated.counts.lines_clean, validated.counts.out_of_window) == (2, 2)
    # without an as-of date the window ends with the latest valid line's date
    latest = validate(raw_frame(spark, rows, COLUMNS), window_days=1)
    assert latest.as_of == dt.date(2010, 12, 11)
    assert (latest.counts.lines_clean, latest.counts.out_of_window) == (1, 3)


def test_the_quarantine_threshold_ignores_out_of_window_lines(spark: SparkSession, validate: Validate) -> None:
    clean = [(str(i), "P", "c", "1", "12/1/2010 8:26", "1.0", "10", "UK", None) for i in range(3)]
    bad = [("9", "P", "b", "1", "12/1/2010 8:26", "1.0", None, "UK", None)]
    late = [(str(20 + i), "P", "l", "1", "12/5/2010 8:26", "1.0", "10", "UK", None) for i in range(10)]
    raw = raw_frame(spark, clean + bad + late, COLUMNS)
    counts = validate(raw, as_of=dt.date(2010, 12, 1), max_share=0.3).counts  # 1 of 14 lines in, 1 of 4 in window
    assert counts == validation.LineCounts(14, 3, {"missing_customer_id": 1}, out_of_window=10)
    assert counts.quarantined_share == 0.25


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
    lines = validation.with_line_keys(line_reason).withColumn(duplicates.LINE_HASH, F.lit(7).cast("long")).cache()
    assert validation.latest_valid_date(lines, None) == dt.date(2010, 12, 5)
    assert validation.latest_valid_date(lines, dt.date(2010, 12, 4)) == dt.date(2010, 12, 1)
    repeated = duplicates.repeated_hashes(lines)
    assert [r[duplicates.LINE_HASH] for r in repeated.collect()] == [7]
    period = validation.Period.of(dt.date(2010, 12, 2), None, TODAY)  # the "late" copies: out of window, not copies
    copies = duplicates.duplicate_copies(lines, repeated, period, broadcast=broadcast)
    assert copies.count() == 1
    frame = duplicates.with_final_reason(lines, period, copies, broadcast=broadcast)
    assert sorted((desc, reason or "") for desc, reason in reasons_by_description_rows(frame)) == [
        ("a", ""),
        ("a", "duplicate_line"),
        ("b", ""),
        ("c", ""),
        ("late", "out_of_window"),
        ("late", "out_of_window"),
    ]
    lines.unpersist()


def test_clean_lines_are_typed_and_returns_are_netted(spark: SparkSession, validate: Validate) -> None:
    rows = [
        ("536365", "85123A", "x", "6", "12/1/2010 8:26", "2.55", "17850.0", " United Kingdom ", None),
        ("C536379", "85123A", "x", "-2", "12/9/2010 9:01", "2.55", "17850", "United Kingdom", None),
        ("536380", "22", "x", "-1", "12/9/2010 9:02", "4.00", "17850", "United Kingdom", None),
        ("c536381", "23", "x", "3", "12/9/2010 9:03", "1.00", "17850", "United Kingdom", None),
    ]
    clean = clean_lines(validate(raw_frame(spark, rows, COLUMNS)).lines, InputConfig())
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
    assert all(r["order_id"] == r["invoice_id"] for r in clean.collect())  # an order per invoice
    got = clean.drop("order_id").withColumn("amount", F.round("amount", 6))
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_quarantine_keeps_original_values_and_source(spark: SparkSession, validate: Validate) -> None:
    rows = [
        ("1", "P", "a", "1", "12/1/2010 8:26", "1.0", "10", "UK", None),
        ("2", "P", "b", "1,5", "12/1/2010 8:26", "1.0", "11", "UK", None),
    ]
    validated = validate(raw_frame(spark, rows, COLUMNS))
    quarantined = quarantine.quarantined_lines(validated.lines, validated.text_columns)
    raw = (
        '{"InvoiceNo":"2","StockCode":"P","Description":"b","Quantity":"1,5","InvoiceDate":"12/1/2010 8:26",'
        '"UnitPrice":"1.0","CustomerID":"11","Country":"UK"}'
    )
    expected = spark.createDataFrame(
        [("invalid_number", "file:/in.csv", raw, "11", "2", "12/1/2010 8:26", "1,5", "1.0", "P", "UK", None)],
        "reason string, source_file string, raw_line string, customer_id string, invoice_id string, "
        "invoice_ts string, quantity string, unit_price string, product_id string, country string, detail string",
    )
    assert_df_equality(quarantined, expected, ignore_nullable=True)


def test_quarantine_share_threshold_fails_with_the_key() -> None:
    counts = validation.LineCounts(lines_in=10, lines_clean=4, quarantined={"missing_customer_id": 6})
    with pytest.raises(InputError, match=r"quality\.max_quarantine_share: 60\.0% of the 10 lines"):
        validation.check_quarantine_share(counts, 0.5, "log.csv")
    validation.check_quarantine_share(counts, 0.6, "log.csv")
    with pytest.raises(InputError, match="holds no data lines"):
        validation.check_quarantine_share(validation.LineCounts(0, 0, {}), 0.5, "empty.csv")


def test_quarantine_share_leaves_out_of_window_lines_out() -> None:
    counts = validation.LineCounts(lines_in=14, lines_clean=3, quarantined={"missing_customer_id": 1}, out_of_window=10)
    assert counts.lines_in == counts.lines_clean + counts.lines_quarantined + counts.out_of_window
    validation.check_quarantine_share(counts, 0.3, "log.csv")
    with pytest.raises(InputError, match=r"25\.0% of the 4 lines in 'log\.csv' dated in the run's window"):
        validation.check_quarantine_share(counts, 0.2, "log.csv")
    nothing_in_window = validation.LineCounts(lines_in=5, lines_clean=0, quarantined={}, out_of_window=5)
    assert nothing_in_window.quarantined_share == 0.0
    with pytest.raises(InputError, match=r"features\.as_of: no valid line of 'log\.csv' is dated in the run's window"):
        validation.check_quarantine_share(nothing_in_window, 0.5, "log.csv")


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
        rules.customer_key(F.col("cid"), T.DoubleType()).alias("cid"),
        rules.parsed_timestamp(F.col("ns"), T.LongType(), InputConfig()).alias("from_ns"),
        rules.parsed_timestamp(F.col("ts"), T.TimestampType(), InputConfig()).alias("from_ts"),
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
            ("1", "31", "51", "Male", None),  # same id, other values: the first in text order stays clean
            ("3", "40", "60", None, None),
            ("3", "40", "60", None, None),  # exact duplicate
        ],
        ["id", "age", "income", "gender"],
    )
    frame = validation.lines_for_copy(raw, cfg)
    expected = spark.createDataFrame(
        [
            ("1", 30.0, None),
            ("2", float("nan"), "invalid_number"),
            (None, 30.0, "missing_customer_id"),
            ("1", 31.0, "duplicate_customer_id"),
            ("3", 40.0, None),
            ("3", 40.0, "duplicate_line"),
        ],
        "customer_id string, age double, reason string",
    )
    got = frame.select("customer_id", "age", "reason")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True, allow_nan_equality=True)
    clean = customers.clean_customers(frame, cfg)
    expected_clean = spark.createDataFrame(
        [("1", 30.0, 50.0, "Male"), ("3", 40.0, 60.0, "(missing)")],
        "customer_id string, age double, income double, gender string",
    )
    assert_df_equality(clean, expected_clean, ignore_row_order=True, ignore_nullable=True)
