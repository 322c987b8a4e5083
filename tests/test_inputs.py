"""Inputs as users keep them: a purchase log without invoices, products or unit prices (the CDNOW shape) by
configuration alone, catalog tables and views, JSON lines, European number formats, timestamps in other shapes,
and the predicate that selects lines. Each output is checked against an independent computation or its twin.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segmentation import cli, config
from segmentation.config import ColumnMapping, InputConfig, NumberOptions, unavailable_features
from segmentation.demo import generate
from segmentation.errors import InputError
from segmentation.features.table import customer_features
from segmentation.input import diagnostics, duplicates, parsing, rules, sources
from segmentation.input import validate as validation
from segmentation.input.clean import clean_lines
from segmentation.jobs import segment
from segmentation.runtime import timing

from .conftest import REPO, job_config, raw_frame

pytestmark = pytest.mark.slow
CDNOW_CONFIG = REPO / "conf/examples/cdnow.yaml"
FIXED_K = ("model.k=3",)  # these tests are about reading: one fixed k, no sweep
SAME_TABLES = ("segments", "features", "profiles", "sweep")


def table(run_folder: str, name: str, spark: SparkSession) -> DataFrame:
    return spark.read.parquet(str(Path(run_folder) / name))


def assert_same_outputs(spark: SparkSession, one: str, other: str) -> None:
    """The published tables of two runs are equal, row for row (the quarantine apart: see each test)."""
    for name in SAME_TABLES:
        assert_df_equality(table(one, name, spark), table(other, name, spark), ignore_row_order=True)


def reasons(spark: SparkSession, run_folder: str) -> Counter:
    return Counter(r["reason"] for r in table(run_folder, "quarantine", spark).collect())


# ---------------------------------------------------------------- a log without invoices, products or prices


def test_a_cdnow_shaped_log_runs_by_configuration_alone(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "cdnow.csv"
    generate.write_cdnow(str(path), customers=400, seed=5)
    cfg = config.load([CDNOW_CONFIG], FIXED_K, input_path=str(path), output_path=str(tmp_path / "out"))
    result = segment.run(spark, cfg)

    # independently, in pandas: lines after the as-of date are out of the window; zero-value purchases are
    # quarantined; exact copies are counted and kept (input.exact_copies: keep); an order is a customer's purchases
    # on one day (the log has no invoice ids)
    log = pd.read_csv(path, dtype={"date": str})
    in_window = log["date"] <= "19970930"
    zero = (log["dollar_value"] == 0) & in_window
    valid = log[in_window & ~zero]
    expected = valid.groupby("customer_id").agg(
        frequency=("date", "nunique"), monetary=("dollar_value", "sum"), items=("number_of_cds", "sum")
    )
    assert result.counts.lines_in == len(log)
    assert result.counts.out_of_window == int((~in_window).sum())
    assert reasons(spark, result.run_folder) == Counter({"zero_amount": int(zero.sum())})
    got = table(result.run_folder, "features", spark).toPandas()
    got.index = got["customer_id"].astype(int)
    got = got.loc[expected.index]
    assert got["frequency"].tolist() == expected["frequency"].astype(float).tolist()
    assert got["monetary"].round(4).tolist() == expected["monetary"].round(4).tolist()
    assert got["avg_items_per_order"].round(6).tolist() == (expected["items"] / expected["frequency"]).round(6).tolist()

    # the feature that needs products is absent (not zeros), and the manifest and report say so
    assert "distinct_products" not in got.columns
    manifest = json.loads((Path(result.run_folder) / "manifest.json").read_text())
    assert manifest["counts"]["exact_copies"] == int(valid.duplicated(keep="first").sum())
    assert manifest["input"]["exact_copies"] == "keep"
    assert manifest["value"]["status"] == "fitted" and manifest["value"]["time_unit"] == "week"
    assert manifest["value"]["customers"] == len(expected)
    assert manifest["input"]["orders_by"] == "timestamp"
    assert manifest["input"]["features_left_out"] == {
        "distinct_products": "no product column (input.columns.product_id is null)"
    }
    report = (Path(result.run_folder) / "report.md").read_text()
    assert "An order is a customer's lines at one timestamp (no invoice ids)." in report
    assert "- `distinct_products`: no product column (input.columns.product_id is null)" in report
    assert "Features the input cannot give (not computed, in no table and not in the model):" in report


def purchases(customer_key: str = "cust", order_key: str | None = "timestamp") -> InputConfig:
    """A CDNOW-like mapping: customer, yyyyMMdd day, items, total; no invoice, product, price or country."""
    columns = ColumnMapping(
        customer_id=customer_key,
        invoice_id=None,
        invoice_ts="day",
        quantity="items",
        unit_price=None,
        amount="total",
        product_id=None,
        country=None,
    )
    return InputConfig(timestamp_formats=("yyyyMMdd",), order_key=order_key, columns=columns)  # type: ignore[arg-type]


def customer_row(spark: SparkSession, rows: list[tuple], cfg: InputConfig) -> dict:
    raw = raw_frame(spark, rows, ["cust", "day", "items", "total"])
    lines = validation.with_line_keys(validation.with_line_reason(sources.canonical_transactions(raw, cfg), cfg))
    clean = clean_lines(lines, cfg)
    return customer_features(clean, dt.date(2011, 6, 30), left_out=unavailable_features(cfg)).first()


def test_without_invoices_an_order_is_a_timestamp_or_a_line_and_a_negative_total_is_a_return(
    spark: SparkSession,
) -> None:
    rows = [
        ("1", "20110601", "2", "10.00", None),
        ("1", "20110601", "1", "5.00", None),  # same day: the same order by timestamp, another by line
        ("1", "20110602", "1", "-5.00", None),  # a return: netted into monetary, not an order
    ]
    by_day, by_line = customer_row(spark, rows, purchases()), customer_row(spark, rows, purchases(order_key="line"))
    assert (by_day["frequency"], by_line["frequency"]) == (1.0, 2.0)
    assert by_day["monetary"] == by_line["monetary"] == 10.0
    assert by_day["return_rate"] == pytest.approx(5 / 15)
    assert by_day["avg_items_per_order"] == 3.0 and by_line["avg_items_per_order"] == 1.5
    assert "distinct_products" not in by_day


def test_an_amount_without_quantity_leaves_items_out_and_zero_and_bad_amounts_are_quarantined(
    spark: SparkSession,
) -> None:
    cfg = purchases().model_copy(update={"columns": purchases().columns.model_copy(update={"quantity": None})})
    raw = raw_frame(
        spark,
        [("1", "20110601", "x", "10.00", None), ("2", "20110601", "x", "0", None), ("3", "20110601", "x", "NaN", None)],
        ["cust", "day", "items", "total"],
    )
    lines = validation.with_line_reason(sources.canonical_transactions(raw, cfg), cfg)
    assert [r["reason"] for r in lines.orderBy("customer_id").collect()] == [None, "zero_amount", "invalid_number"]
    assert set(unavailable_features(cfg)) == {"avg_items_per_order", "distinct_products"}
    clean = clean_lines(lines.withColumn(duplicates.LINE_ID, F.lit(1)), cfg)
    row = customer_features(clean, dt.date(2011, 6, 30), left_out=unavailable_features(cfg)).first()
    assert row["monetary"] == 10.0 and "avg_items_per_order" not in row


# ---------------------------------------------------------------- catalog tables and views


def typed_view(spark: SparkSession, log: pd.DataFrame, name: str) -> None:
    """The log as a typed catalog view (as a table in a warehouse holds it): numbers, ids and timestamps typed."""
    text = spark.createDataFrame(log.astype(str))
    typed = text.select(
        "InvoiceNo",
        "StockCode",
        "Description",
        F.col("Quantity").try_cast("int").alias("Quantity"),
        F.try_to_timestamp("InvoiceDate", F.lit("M/d/yyyy H:mm")).alias("InvoiceDate"),
        F.col("UnitPrice").try_cast("double").alias("UnitPrice"),
        F.col("CustomerID").try_cast("double").alias("CustomerID"),
        "Country",
    )
    typed.createOrReplaceTempView(name)


def test_a_catalog_view_and_the_same_lines_as_files_give_identical_outputs(
    spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    log, _ = generate.generate(customers=80, seed=3)  # no malformed lines: a table cannot hold those
    files = tmp_path / "in" / "log.csv"
    files.parent.mkdir()
    log.to_csv(files, index=False)
    typed_view(spark, log, "retail_lines")

    from_files = segment.run(spark, job_config(tmp_path, str(files), *FIXED_K, output=str(tmp_path / "files")))
    argv = ["run", "--config", str(REPO / "conf/base.yaml"), "--input-table", "retail_lines"]
    assert cli.main([*argv, "--output", str(tmp_path / "table"), "--set", FIXED_K[0]]) == 0  # the active session
    capsys.readouterr()
    table_run = next((tmp_path / "table" / "runs").glob("as_of_date=*/run_id=main/attempt=*"))

    assert_same_outputs(spark, from_files.run_folder, str(table_run))
    assert reasons(spark, str(table_run)) == reasons(spark, from_files.run_folder)
    assert {r["source_file"] for r in table(str(table_run), "quarantine", spark).collect()} == {"retail_lines"}
    manifest = json.loads((table_run / "manifest.json").read_text())
    assert (manifest["input"]["table"], manifest["input"]["path"]) == ("retail_lines", None)


def test_input_where_selects_lines_and_keeps_malformed_ones(spark: SparkSession, tmp_path: Path) -> None:
    log, _ = generate.generate(customers=40, seed=4)
    typed_view(spark, log, "retail_where")
    dates = pd.to_datetime(log["InvoiceDate"], format="%m/%d/%Y %H:%M", errors="coerce")
    cfg = InputConfig(table="retail_where", where="InvoiceDate < '2011-07-01'")
    assert sources.read_raw(spark, cfg).count() == int((dates < "2011-07-01").sum())

    path = tmp_path / "log.csv.gz"
    lines = generate.write(str(path), customers=40, seed=4)  # with 3 malformed lines
    on_files = InputConfig(path=str(path), where="Country = 'France'")
    france = int((log["Country"] == "France").sum())
    assert lines == len(log) + 3
    read = sources.read_raw(spark, on_files).select(sources.CORRUPT, sources.RAW_LINE).collect()  # as the job reads
    assert len(read) == france + 3  # a predicate cannot judge a malformed line: all 3 are kept
    assert sum(r[sources.CORRUPT] is not None for r in read) == 3


@pytest.mark.parametrize(
    ("where", "phrase"),
    [("NoSuchColumn > 1", "NoSuchColumn"), ("Description", "Description"), ("count(*) > 1", "")],
)
def test_an_invalid_where_names_the_key(spark: SparkSession, where: str, phrase: str) -> None:
    log, _ = generate.generate(customers=5, seed=4)
    typed_view(spark, log, "retail_bad_where")
    with pytest.raises(InputError) as raised:
        sources.read_raw(spark, InputConfig(table="retail_bad_where", where=where))
    message = str(raised.value)
    assert message.startswith(f"input.where: {where!r} is not a predicate over the columns of 'retail_bad_where'")
    assert phrase in message


def test_a_missing_table_names_the_key(spark: SparkSession) -> None:
    with pytest.raises(InputError, match=r"^input\.table: cannot read the table or view 'no_such_table'"):
        sources.read_raw(spark, InputConfig(table="no_such_table"))


# ---------------------------------------------------------------- JSON lines


def test_json_lines_give_the_outputs_of_the_same_lines_as_csv(spark: SparkSession, tmp_path: Path) -> None:
    csv_path, json_path = tmp_path / "csv" / "log.csv.gz", tmp_path / "json" / "log.jsonl.gz"
    generate.write(str(csv_path), customers=80, seed=3)
    written = generate.write_json_lines(str(json_path), customers=80, seed=3)
    assert sources.resolve_format(str(json_path), "auto") == "json"

    as_csv = segment.run(spark, job_config(tmp_path, str(csv_path), *FIXED_K, output=str(tmp_path / "o_csv")))
    as_json = segment.run(spark, job_config(tmp_path, str(json_path), *FIXED_K, output=str(tmp_path / "o_json")))
    assert_same_outputs(spark, as_csv.run_folder, as_json.run_folder)
    csv_reasons, json_reasons = reasons(spark, as_csv.run_folder), reasons(spark, as_json.run_folder)
    assert (csv_reasons.pop("malformed_row"), json_reasons.pop("malformed_row")) == (3, 2)  # as written
    assert csv_reasons == json_reasons
    assert as_json.counts.lines_in == written


def test_json_lines_that_are_no_object_are_malformed_and_where_sees_every_field(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = tmp_path / "few.jsonl"
    good = {"CustomerID": 99401, "InvoiceNo": "1", "InvoiceDate": "6/1/2011 10:00", "Quantity": 2, "UnitPrice": 1.5}
    lines = [
        json.dumps({**good, "StockCode": "A", "Country": "France", "Channel": "web"}),
        "",  # a blank line: no record
        json.dumps([good]),  # an array: not a line object
        json.dumps({**good, "StockCode": "B", "Country": "France", "Channel": "shop"}),
        "[]",
    ]
    path.write_text("\n".join(lines) + "\n")
    read = sources.read_raw(spark, InputConfig(path=str(path))).collect()
    assert len(read) == 4 and sorted(r[sources.CORRUPT] for r in read if r[sources.CORRUPT]) == ["[]", lines[2]]
    assert {r["Channel"] for r in read} == {"web", "shop", None}  # an unmapped field is read too
    assert {r["UnitPrice"] for r in read if not r[sources.CORRUPT]} == {"1.5"}  # JSON numbers as text
    chosen = sources.read_raw(spark, InputConfig(path=str(path), where="Channel = 'web'")).collect()
    assert [r["StockCode"] for r in chosen if not r[sources.CORRUPT]] == ["A"] and len(chosen) == 3


def test_a_json_field_the_lines_do_not_have_names_the_key(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    generate.write_json_lines(str(path), customers=5, seed=4)
    cfg = InputConfig(path=str(path), columns=ColumnMapping(customer_id="customer"))
    with pytest.raises(InputError, match=r"^input\.columns\.customer_id: field 'customer' is in none of the first"):
        sources.read_raw(spark, cfg)


# ---------------------------------------------------------------- European exports


def test_a_semicolon_file_with_decimal_commas_gives_the_outputs_of_its_twin(
    spark: SparkSession, tmp_path: Path
) -> None:
    log, _ = generate.generate(customers=80, seed=3)
    log.loc[log.index[:4], "Quantity"] = "1250"  # thousands, written 1.250 in the European twin
    european = log.copy()
    european["UnitPrice"] = european["UnitPrice"].str.replace(".", ",", regex=False)
    european["Quantity"] = european["Quantity"].str.replace("1250", "1.250", regex=False)
    plain, semicolon = tmp_path / "plain" / "log.csv", tmp_path / "eu" / "log.csv"
    for path, frame, sep in ((plain, log, ","), (semicolon, european, ";")):
        path.parent.mkdir()
        frame.to_csv(path, index=False, sep=sep)
    assert european["UnitPrice"].str.contains(",").any()

    eu_settings = (
        "input.csv.delimiter=;",
        'input.numbers.decimal_separator=","',
        'input.numbers.thousands_separator="."',
    )
    one = segment.run(spark, job_config(tmp_path, str(plain), *FIXED_K, output=str(tmp_path / "o1")))
    two = segment.run(spark, job_config(tmp_path, str(semicolon), *FIXED_K, *eu_settings, output=str(tmp_path / "o2")))
    assert_same_outputs(spark, one.run_folder, two.run_folder)
    assert reasons(spark, one.run_folder) == reasons(spark, two.run_folder)


@pytest.mark.parametrize(
    ("decimal", "thousands", "values"),
    [
        (",", None, {"1,25": 1.25, "-0,5": -0.5, "12": 12.0, "1.25": None, "1,2,3": None}),
        (",", ".", {"1.234,5": 1234.5, "1.234.567": 1234567.0, "12.34,5": None, "1,25": 1.25, "-1.000": -1000.0}),
        (".", ",", {"1,234.5": 1234.5, "1,25": None, "1.25": 1.25, "12,345,678": 12345678.0}),
        (",", " ", {"1 234,5": 1234.5, "1 23,4": None}),
        (".", None, {"1.25": 1.25, "1,25": None, "1e3": 1000.0}),
    ],
)
def test_numbers_with_a_decimal_comma_and_thousands_separators(
    spark: SparkSession, decimal: str, thousands: str | None, values: dict[str, float | None]
) -> None:
    numbers = NumberOptions(decimal_separator=decimal, thousands_separator=thousands)  # type: ignore[arg-type]
    frame = spark.createDataFrame([(v,) for v in values], "v string")
    parsed = frame.select("v", rules.parsed_number(F.col("v"), T.StringType(), numbers).alias("n")).collect()
    assert {r["v"]: r["n"] for r in parsed} == values


# ---------------------------------------------------------------- timestamps


def parse(spark: SparkSession, values: list, data_type: T.DataType, **settings: object) -> list:
    frame = spark.createDataFrame([(v,) for v in values], T.StructType([T.StructField("v", data_type)]))
    cfg = InputConfig(**settings)  # type: ignore[arg-type]
    return [r["t"] for r in frame.select(rules.parsed_timestamp(F.col("v"), data_type, cfg).alias("t")).collect()]


def test_timestamps_as_dates_compact_days_and_epochs(spark: SparkSession) -> None:
    ten = dt.datetime(2011, 6, 1, 10, 0)
    assert parse(spark, ["2011-06-01", "6/1/2011 10:00"], T.StringType()) == [dt.datetime(2011, 6, 1), ten]
    assert parse(spark, ["20110601", "2011-06-01"], T.StringType(), timestamp_formats=["yyyyMMdd"]) == [
        dt.datetime(2011, 6, 1),
        None,
    ]
    epochs = ["1306922400", " 1306922400 ", "99999999999999999", "13069224e2"]
    assert parse(spark, epochs, T.StringType(), timestamp_formats=["epoch_seconds"]) == [ten, ten, None, None]
    assert parse(spark, ["1306922400000"], T.StringType(), timestamp_formats=["epoch_millis"]) == [ten]
    assert parse(spark, [1306922400000], T.LongType(), timestamp_formats=["epoch_millis"]) == [ten]
    assert parse(spark, [1306922400], T.LongType(), integer_timestamp_unit="s") == [ten]
    assert parse(spark, [10**15], T.LongType(), integer_timestamp_unit="s") == [None]  # no overflow: not a date
    # an integer that is no epoch after 1970 is read as text with the patterns: a warehouse's yyyyMMdd column
    day = dt.datetime(2011, 6, 1)
    assert parse(spark, [20110601], T.LongType(), timestamp_formats=["yyyyMMdd"]) == [day]
    assert parse(spark, [1306922400], T.LongType(), integer_timestamp_unit="s", timestamp_formats=["yyyyMMdd"]) == [ten]
    assert parse(spark, ["1306922400.0"], T.StringType(), timestamp_formats=["epoch_seconds"]) == [ten]  # pandas'


def test_value_shapes_hide_every_letter_digit_and_symbol(spark: SparkSession) -> None:
    values = ["Müller", "12,5", "2011-06-01 10:00", "a€b", "١٢"]
    frame = spark.createDataFrame([(v,) for v in values], "v string")
    shapes = [r["s"] for r in frame.select(diagnostics.value_shape(F.col("v")).alias("s")).collect()]
    assert shapes == ["aaaaaa", "99,9", "9999-99-99 99:99", "a?a", "99"]


def test_today_is_the_day_in_the_logs_time_zone() -> None:
    noon_utc = dt.datetime(2026, 11, 30, 12, 30, tzinfo=dt.UTC)
    assert timing.today_in("Pacific/Auckland", noon_utc) == dt.date(2026, 12, 1)  # already tomorrow there
    assert timing.today_in("+13:00", noon_utc) == dt.date(2026, 12, 1)
    assert timing.today_in("UTC", noon_utc) == dt.date(2026, 11, 30)
    assert timing.today_in("America/New_York", dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)) == dt.date(2026, 11, 30)


def test_the_time_zone_applies_to_instants_and_leaves_local_times_as_they_are(spark: SparkSession) -> None:
    zone = {"time_zone": "Europe/Amsterdam"}  # two hours ahead of UTC on 1 June 2011
    noon = dt.datetime(2011, 6, 1, 12, 0)
    assert parse(spark, ["6/1/2011 12:00"], T.StringType(), **zone) == [noon]  # a local time: as written
    assert parse(spark, ["1306922400"], T.StringType(), timestamp_formats=["epoch_seconds"], **zone) == [noon]
    zoned = ["2011-06-01T10:00:00Z", "2011-06-01T11:00:00+01:00"]
    assert parse(spark, zoned, T.StringType(), timestamp_formats=["yyyy-MM-dd'T'HH:mm:ssXXX"], **zone) == [noon, noon]
    instant = dt.datetime(2011, 6, 1, 10, 0)  # the session's zone is UTC in these tests, as during a job
    assert parse(spark, [instant], T.TimestampType(), **zone) == [noon]
    assert parse(spark, [instant], T.TimestampType()) == [instant]
    pandas_ns = 1306922400 * 10**9  # pandas' timestamps without a zone: local times, not shifted
    assert parse(spark, [pandas_ns], T.LongType(), **zone) == [instant]
    assert parse(spark, [1306922400], T.LongType(), integer_timestamp_unit="s", **zone) == [noon]
    assert parsing.has_zone("yyyy-MM-dd'T'HH:mm:ssXXX") and not parsing.has_zone("yyyy-MM-dd'Z'")


# ---------------------------------------------------------------- the docs' example


def runnable_example(name: str) -> str:
    """The code block right after ``<!-- runnable: name -->`` in README.md or a page under docs/."""
    marker = f"<!-- runnable: {name} -->"
    found = [
        text.split(marker, 1)[1]
        for path in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
        if marker in (text := path.read_text())
    ]
    assert len(found) == 1, f"{marker} is in {len(found)} places, not one"
    fence = found[0].lstrip("\n").split("\n", 1)
    assert fence[0].startswith("```"), f"{marker} is not right before a code fence"
    return fence[1].split("\n```", 1)[0] + "\n"


@pytest.mark.extended
def test_the_readme_catalog_table_example_runs_as_written(tmp_path: Path) -> None:
    # in a process of its own, from a folder laid out as the repository after `make run` (the demo log, conf/)
    generate.write(str(tmp_path / "data/generated/transactions.csv.gz"), customers=80, seed=3)
    shutil.copytree(REPO / "conf", tmp_path / "conf")
    (tmp_path / "example.py").write_text(runnable_example("catalog-table"))
    done = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run_folder = Path(done.stdout.strip().splitlines()[-1])
    assert run_folder.is_relative_to(tmp_path / "output/from_table/runs")
    manifest = json.loads((run_folder / "manifest.json").read_text())
    assert manifest["input"]["table"] == "transactions"
    assert manifest["input"]["where"] == "Country = 'United Kingdom'"
    log, _ = generate.generate(customers=80, seed=3)  # the lines written, without the 3 malformed ones
    assert manifest["counts"]["lines_in"] == int((log["Country"] == "United Kingdom").sum()) < len(log)
