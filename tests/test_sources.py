"""Reading input: CSV with a header and other column names, gzip, folders and globs, pandas Parquet."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from segmentation import pipeline, quality, sources
from segmentation.config import ColumnMapping, InputConfig

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


def clean_from(spark: SparkSession, cfg: InputConfig):
    pipeline.apply_job_settings(spark)
    raw = sources.read_raw(spark, cfg)
    labeled = quality.with_line_reason(sources.canonical_transactions(raw, cfg), cfg)
    return labeled


def test_other_column_names_by_mapping_gzip_folder_and_glob(spark: SparkSession, tmp_path: Path) -> None:
    write_gz(tmp_path / "logs" / "a.csv.gz", LINES[:2])
    write_gz(tmp_path / "logs" / "b.csv.gz", LINES[2:])
    for path in (tmp_path / "logs", tmp_path / "logs" / "*.csv.gz"):
        cfg = InputConfig(path=str(path), columns=MAPPING)
        rows = clean_from(spark, cfg).orderBy("_raw_line").collect()
        assert len(rows) == 3
        assert sorted(r["reason"] or "" for r in rows) == ["", "", "missing_customer_id"]
        valid = [r for r in rows if r["reason"] is None]
        assert {r["_customer_key"] for r in valid} == {"13085"}  # float id normalised
        assert {r["_ts"] for r in valid} == {dt.datetime(2009, 12, 1, 7, 45)}
        assert {Path(r["_source_file"]).name for r in rows} == {"a.csv.gz", "b.csv.gz"}
        assert '"Description":"PINK, CHERRY LIGHTS"' in " ".join(r["_raw_line"] for r in valid)


def test_missing_mapped_column_names_the_key(spark: SparkSession, tmp_path: Path) -> None:
    write_gz(tmp_path / "a.csv.gz", LINES)
    cfg = InputConfig(path=str(tmp_path / "a.csv.gz"))  # default mapping expects InvoiceNo, CustomerID, ...
    with pytest.raises(sources.SourceError, match=r"input\.columns\.customer_id: column 'CustomerID' not found"):
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
    rows = {r["invoice_id"]: r for r in clean_from(spark, cfg).collect()}
    assert rows["1"]["_ts"] == dt.datetime(2011, 1, 2, 10, 30, 0, 123456)
    assert rows["1"]["_customer_key"] == "12346"
    assert rows["1"]["reason"] is None
    assert rows["2"]["reason"] == "missing_customer_id"


def test_format_detection() -> None:
    assert sources.resolve_format("s3://bucket/logs/*.csv.gz", "auto") == "csv"
    assert sources.resolve_format("s3://bucket/logs/part.parquet", "auto") == "parquet"
    assert sources.resolve_format("s3://bucket/logs/", "parquet") == "parquet"
    with pytest.raises(sources.SourceError, match=r"input\.format: cannot tell"):
        sources.resolve_format("s3://bucket/logs/data.bin", "auto")


def test_empty_csv_is_a_clear_error(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(sources.SourceError, match=r"input\.path: .*empty\.csv"):
        sources.read_raw(spark, InputConfig(path=str(path)))
