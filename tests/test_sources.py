"""Reading input: CSV with a header and other column names, gzip, folders and globs, pandas Parquet."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from pathlib import Path

import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segmentation.config import ColumnMapping, InputConfig
from segmentation.errors import InputError
from segmentation.input import rules, sources, validate
from segmentation.runtime import session

HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
LINES = [
    "489434,85048,LED LIGHT,12,2009-12-01 07:45:00,6.95,13085.0,United Kingdom\n",
    '489434,79323P,"PINK, CHERRY LIGHTS",12,2009-12-01 07:45:00,6.75,13085.0,United Kingdom\n',
    "489435,22350,CAT BOWL,12,2009-12-01 07:46:00,2.55,,United Kingdom\n",
]
MAPPING = ColumnMapping(invoice_id="Invoice", unit_price="Price", customer_id="Customer ID")


def write_gz(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as handle:
        handle.write(HEADER + "".join(lines))


def line_reasons(spark: SparkSession, cfg: InputConfig) -> DataFrame:
    """Every line read from ``cfg.path`` with its typed values and per-line reason (under ``job_settings``)."""
    raw = sources.read_raw(spark, cfg)
    return validate.with_line_reason(sources.canonical_transactions(raw, cfg), cfg)


def test_other_column_names_by_mapping_gzip_folder_and_glob(spark: SparkSession, tmp_path: Path) -> None:
    write_gz(tmp_path / "logs" / "a.csv.gz", LINES[:2])
    write_gz(tmp_path / "logs" / "b.csv.gz", LINES[2:])
    at = dt.datetime(2009, 12, 1, 7, 45)
    expected = spark.createDataFrame(
        [
            ("a.csv.gz", "489434", "13085", at, 12.0, 6.95, None),  # float id normalised
            ("a.csv.gz", "489434", "13085", at, 12.0, 6.75, None),
            ("b.csv.gz", "489435", None, at.replace(minute=46), 12.0, 2.55, "missing_customer_id"),
        ],
        "file string, invoice_id string, _customer_key string, _ts timestamp, _quantity double, "
        "_unit_price double, reason string",
    )
    for path in (tmp_path / "logs", tmp_path / "logs" / "*.csv.gz"):
        cfg = InputConfig(path=str(path), columns=MAPPING)
        with session.job_settings(spark):
            lines = line_reasons(spark, cfg)
            got = lines.select(
                F.regexp_extract(sources.SOURCE_FILE, r"[^/]+$", 0).alias("file"),
                "invoice_id",
                "_customer_key",
                rules.TS,
                rules.QTY,
                rules.PRICE,
                rules.REASON,
            )
            assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
            raw_lines = [r[sources.RAW_LINE] for r in lines.collect()]
        assert any('"Description":"PINK, CHERRY LIGHTS"' in line for line in raw_lines)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_each_line_names_its_file_by_its_uri(spark: SparkSession, tmp_path: Path, fmt: str) -> None:
    folder = tmp_path / "two logs"  # a space: the URI writes it %20
    folder.mkdir()
    suffix = ".csv.gz" if fmt == "csv" else ".parquet"
    for name, lines in (("a", LINES[:2]), ("b", LINES[2:])):
        if fmt == "csv":
            write_gz(folder / f"{name}{suffix}", [*lines, '489436,"unclosed\n'])  # and a bad line
        else:
            rows = [next(csv.reader([line])) for line in lines]
            pd.DataFrame(rows, columns=HEADER.strip().split(",")).to_parquet(folder / f"{name}{suffix}")
    raw = sources.read_raw(spark, InputConfig(path=str(folder), format=fmt))
    got = sorted((r[sources.SOURCE_FILE], r[sources.CORRUPT] is not None) for r in raw.collect())
    a, b = ((folder / f"{name}{suffix}").as_uri() for name in "ab")
    assert a == f"file://{tmp_path}/two%20logs/a{suffix}"  # file:///tmp/…/two%20logs/a.csv.gz
    expected = [(a, False), (a, False), (b, False)] + ([(a, True), (b, True)] if fmt == "csv" else [])
    assert got == sorted(expected)
    # what the SQL function gave before (Unity Catalog lacks it): the same text
    assert raw.filter(F.col(sources.SOURCE_FILE) != F.input_file_name()).count() == 0


def test_a_column_named_like_the_metadata_column_does_not_hide_the_file(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "meta.csv"
    path.write_text("_metadata,InvoiceNo\nx,1\n")
    raw = sources.read_raw(spark, InputConfig(path=str(path)))
    assert [(r["_metadata"], r[sources.SOURCE_FILE]) for r in raw.collect()] == [("x", path.as_uri())]


def test_missing_mapped_column_names_the_key(spark: SparkSession, tmp_path: Path) -> None:
    write_gz(tmp_path / "a.csv.gz", LINES)
    cfg = InputConfig(path=str(tmp_path / "a.csv.gz"))  # default mapping expects InvoiceNo, CustomerID, ...
    with pytest.raises(InputError, match=r"input\.columns\.customer_id: column 'CustomerID' not found"):
        sources.canonical_transactions(sources.read_raw(spark, cfg), cfg)


def test_pandas_parquet_with_nanosecond_timestamps(spark: SparkSession, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "InvoiceNo": ["1", "2"],
            "StockCode": ["A", "B"],
            "Quantity": [3, 4],
            "InvoiceDate": pd.to_datetime(["2011-01-02 10:30:00.123456789", "2011-01-03 11:00:00.000000000"]),
            "UnitPrice": [1.5, 2.0],
            "CustomerID": [12346.0, float("nan")],
            "Country": ["UK", "UK"],
        }
    )
    path = tmp_path / "log.parquet"
    frame.to_parquet(path)
    cfg = InputConfig(path=str(path))
    with session.job_settings(spark):
        rows = {r["invoice_id"]: r for r in line_reasons(spark, cfg).collect()}
    assert rows["1"]["_ts"] == dt.datetime(2011, 1, 2, 10, 30, 0, 123456)
    assert rows["1"]["_customer_key"] == "12346"
    assert rows["1"]["reason"] is None
    assert rows["2"]["reason"] == "missing_customer_id"


def test_format_detection() -> None:
    assert sources.resolve_format("s3://bucket/logs/*.csv.gz", "auto") == "csv"
    assert sources.resolve_format("s3://bucket/logs/part.parquet", "auto") == "parquet"
    assert sources.resolve_format("s3://bucket/logs/", "parquet") == "parquet"
    with pytest.raises(InputError, match=r"input\.format: cannot tell"):
        sources.resolve_format("s3://bucket/logs/data.bin", "auto")


def test_empty_csv_is_a_clear_error(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(InputError, match=r"input\.path: .*empty\.csv"):
        sources.read_raw(spark, InputConfig(path=str(path)))
