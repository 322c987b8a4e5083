"""The bad-input corpus (tests/corpus/): every bad file or config mistake ends in a correct run with the right
lines quarantined, or in a clear error naming the file, column or key, with nothing published.

Each bad CSV file is read next to a clean generated log (the way a bad file turns up in a nightly folder), so
a run must keep the clean customers and account for every line of the bad file. Corpus customer ids are
990xx; they must never appear in logs or error messages.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession

from segmentation import cli
from segmentation.demo import generate
from segmentation.errors import ConfigError, InputError, RunFailed
from segmentation.jobs import segment
from segmentation.publish import files, storage

from .conftest import REPO, job_config

pytestmark = pytest.mark.slow
CORPUS = REPO / "tests" / "corpus"
CORPUS_ID = re.compile(r"\b99\d{3}\b")
FAST = ("model.k=3",)  # the corpus is about input handling: one fixed k, no sweep


@pytest.fixture(scope="module")
def base_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean generated log (80 customers) that every bad file is read next to."""
    path = tmp_path_factory.mktemp("corpus_base") / "base.csv.gz"
    generate.write(str(path), customers=80, seed=3)
    return path


def input_folder(tmp_path: Path, base_log: Path, *corpus_files: str) -> str:
    """A folder with the clean log and the given corpus files, named through a path with '..' in it."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(base_log, folder / base_log.name)
    for name in corpus_files:
        shutil.copy(CORPUS / name, folder / name)
    (tmp_path / "elsewhere").mkdir()
    return str(tmp_path / "elsewhere" / ".." / "in")  # '..' in a local path resolves; the run must work


def records(spark: SparkSession, path: Path, multiline: bool = False) -> int:
    """How many records Spark reads from one CSV file (what the job counts as lines in)."""
    return spark.read.option("header", True).option("multiLine", multiline).csv(str(path)).count()


def nothing_published(root: Path) -> bool:
    return files.committed_runs(storage.for_root(None, str(root))) == [] and not (root / "latest").exists()


# name: (corpus file, overrides, records read from it, quarantine reasons for its lines, customers kept, dropped)
RUN_CASES = {
    "wrong_field_counts": ("wrong_field_counts.csv", (), 4, {"malformed_row": 2}, {"99001", "99002"}, set()),
    "unclosed_quote": ("unclosed_quote.csv", (), 3, {"malformed_row": 1}, {"99011", "99012"}, set()),
    "embedded_newline": ("embedded_newline.csv", (), 4, {"malformed_row": 2}, {"99021", "99022"}, set()),
    "embedded_newline_multiline": (
        "embedded_newline.csv",
        ("input.csv.multiline=true",),
        3,
        {},
        {"99021", "99022"},
        set(),
    ),
    "nan_infinity_1e400": (
        "non_finite_numbers.csv",
        (),
        6,
        {"invalid_number": 4, "non_positive_price": 1},  # 1e-400 underflows to a price of 0
        {"99032"},
        {"99031"},
    ),
    "unparseable_and_impossible_dates": (
        "bad_dates.csv",
        (),
        6,
        {"invalid_timestamp": 5},
        {"99042"},
        {"99041"},
    ),
    "dates_after_the_as_of_date": (
        "dates_after_as_of.csv",
        ("features.as_of=2011-12-09",),
        4,
        {"after_today": 1},  # 2031; the lines of 12/10/2011 and 5/1/2012 are out of window, not quarantined
        {"99052"},
        {"99051"},
    ),
    "compact_dates_with_their_pattern": (
        "compact_dates.csv",
        ("input.timestamp_formats=[M/d/yyyy H:mm, yyyyMMdd]",),
        3,
        {},
        {"99321", "99322", "99323"},
        set(),
    ),
    "epoch_seconds_as_text": (
        "epoch_seconds.csv",
        ("input.timestamp_formats=[M/d/yyyy H:mm, epoch_seconds]",),
        3,
        {},
        {"99331", "99332", "99333"},
        set(),
    ),
}
# lines counted as out of window (dated after the as-of date, before today); none for the other cases
OUT_OF_WINDOW = {"dates_after_the_as_of_date": 2}


@pytest.mark.parametrize("case", sorted(RUN_CASES))
def test_bad_lines_are_quarantined_and_the_run_is_correct(
    spark: SparkSession, tmp_path: Path, base_log: Path, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    name, overrides, file_records, reasons, kept, dropped = RUN_CASES[case]
    caplog.set_level("DEBUG", logger="segmentation")
    folder = input_folder(tmp_path, base_log, name)
    result = segment.run(spark, job_config(tmp_path, folder, *FAST, *overrides, output=str(tmp_path / "x/../out")))

    multiline = "input.csv.multiline=true" in overrides
    assert records(spark, CORPUS / name, multiline) == file_records
    assert result.counts.lines_in == records(spark, base_log, multiline) + file_records  # no line lost
    assert result.counts.out_of_window == OUT_OF_WINDOW.get(case, 0)
    run = Path(result.run_folder)
    assert run.parents[3] == tmp_path / "out"  # '..' in the output path resolved too
    quarantine = spark.read.parquet(str(run / "quarantine")).filter(f"source_file LIKE '%/{name}'")
    assert Counter(r["reason"] for r in quarantine.collect()) == Counter(reasons)
    customers = {r["customer_id"] for r in spark.read.parquet(str(run / "segments")).collect()}
    assert kept <= customers and not dropped & customers
    assert files.committed_runs(storage.for_root(None, str(tmp_path / "out"))) == [(result.as_of, "main")]
    assert not CORPUS_ID.search(caplog.text)  # logs name counts, files and columns, not customers


def test_a_mistyped_future_year_does_not_move_the_as_of_date(
    spark: SparkSession, tmp_path: Path, base_log: Path
) -> None:
    # without features.as_of the as-of date is the latest valid date, but never after the day the job runs:
    # the line dated 2031 is quarantined (after today) instead of making every customer's recency 20 years long
    folder = input_folder(tmp_path, base_log, "dates_after_as_of.csv")
    result = segment.run(spark, job_config(tmp_path, folder, *FAST))
    assert result.as_of == dt.date(2012, 5, 1)  # the latest line dated before today
    late = spark.read.parquet(str(Path(result.run_folder) / "quarantine")).filter("reason = 'after_today'")
    assert [r["invoice_ts"] for r in late.collect()] == ["1/1/2031 10:00"]


def segment_size_of(spark: SparkSession, run_folder: str, customer_id: str) -> int:
    segments = spark.read.parquet(str(Path(run_folder) / "segments"))
    segment = segments.filter(segments.customer_id == customer_id).first()["segment"]
    return segments.filter(segments.segment == segment).count()


def test_an_extreme_spender_does_not_get_a_segment_of_its_own(
    spark: SparkSession, tmp_path: Path, base_log: Path
) -> None:
    folder = input_folder(tmp_path, base_log, "extreme_spend.csv")  # one customer, one line of 1e9
    # a unit price of a billion is beyond input.limits (quarantined as implausible_value): off here, to see the cap
    limits = ("input.limits.max_unit_price=null", "input.limits.max_amount=null")
    capped = segment.run(spark, job_config(tmp_path, folder, "model.k=4", *limits, output=str(tmp_path / "capped")))
    assert segment_size_of(spark, capped.run_folder, "99071") > 1
    features = spark.read.parquet(str(Path(capped.run_folder) / "features")).filter("customer_id = '99071'")
    assert features.first()["monetary"] == pytest.approx(1e9)  # outputs keep the real value; only the model caps

    # the same data without the cap: the extreme customer is a segment of one (what the cap prevents)
    raw = segment.run(
        spark,
        job_config(tmp_path, folder, "model.k=4", "model.outlier_fence_iqr=0", *limits, output=str(tmp_path / "raw")),
    )
    assert segment_size_of(spark, raw.run_folder, "99071") == 1


def test_ansi_mode_on_and_off_give_the_same_result(spark: SparkSession, tmp_path: Path, base_log: Path) -> None:
    bad_files = sorted({case[0] for case in RUN_CASES.values()} | {"extreme_spend.csv"})
    folder = input_folder(tmp_path, base_log, *bad_files)
    runs = {}
    before = spark.conf.get("spark.sql.ansi.enabled")
    try:
        for ansi in ("true", "false"):
            spark.conf.set("spark.sql.ansi.enabled", ansi)
            runs[ansi] = segment.run(spark, job_config(tmp_path, folder, *FAST, output=str(tmp_path / f"ansi_{ansi}")))
    finally:
        spark.conf.set("spark.sql.ansi.enabled", before)
    on, off = Path(runs["true"].run_folder), Path(runs["false"].run_folder)
    assert runs["true"].counts == runs["false"].counts
    assert runs["true"].counts.quarantined["malformed_row"] >= 5
    for table in ("segments", "features", "quarantine"):
        assert_df_equality(
            spark.read.parquet(str(on / table)), spark.read.parquet(str(off / table)), ignore_row_order=True
        )
    centroids = [json.loads((folder / "manifest.json").read_text())["centroids"] for folder in (on, off)]
    assert centroids[0] == centroids[1]


def parquet_file(tmp_path: Path, name: str, **changes: object) -> Path:
    """A small valid transaction Parquet file, with some columns replaced (to give them the wrong type)."""
    frame = pd.DataFrame(
        {
            "InvoiceNo": ["990201", "990202"],
            "StockCode": ["20001", "20002"],
            "Description": ["PRODUCT 001", "PRODUCT 002"],
            "Quantity": [2, 3],
            "InvoiceDate": pd.to_datetime(["2011-06-01 10:00", "2011-06-02 10:00"]),
            "UnitPrice": [1.5, 2.5],
            "CustomerID": [99201.0, 99202.0],
            "Country": ["United Kingdom", "France"],
        }
    )
    for column, values in changes.items():
        frame[column] = values
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)
    return path


# name: (files to put in the input, overrides, error type, what the message must say)
ERROR_CASES = {
    "empty_file": (["empty.csv"], (), InputError, ["input.path", "empty.csv", "no usable CSV header"]),
    "header_only": (["header_only.csv"], (), InputError, ["input.path", "header_only.csv", "no data lines"]),
    "column_missing_from_the_mapping": (
        ["missing_column.csv"],
        (),
        InputError,
        ["input.columns.country", "'Country' not found", "missing_column.csv", "its columns are: CustomerID"],
    ),
    "not_the_declared_format": (
        ["not_really.parquet"],
        (),
        InputError,
        ["input.path", "not_really.parquet", "as Parquet", "CANNOT_READ_FILE_FOOTER"],
    ),
    "fewer_customers_than_k_min": (
        ["two_customers.csv"],
        ("model.k_min=3", "model.k_max=4"),
        InputError,
        ["model.k_min", "two_customers.csv", "2 valid customers", "fewer than the 3"],
    ),
    "every_line_invalid": (
        ["all_invalid.csv"],
        (),
        InputError,
        ["quality.max_quarantine_share", "none of the 5 lines", "all_invalid.csv", "missing_customer_id=1"],
    ),
    "a_repeated_header_name": (
        ["repeated_header.csv"],
        (),
        InputError,
        ["input.columns.customer_id", "'CustomerID' repeats in the header", "repeated_header.csv", "columns 7 and 8"],
    ),
    "decimal_commas_without_the_setting": (
        ["decimal_comma.csv"],
        ("input.csv.delimiter=;",),
        InputError,
        [
            "quality.max_quarantine_share: none of the 5 lines",
            "decimal_comma.csv",
            "(invalid_number=4, missing_customer_id=1)",  # the hint is about the reason most lines have
            "column 'UnitPrice' (input.columns.unit_price) does not read as a number in 4 of the 4 lines "
            "quarantined as invalid_number",
            "look like '9,99'",
            'set input.numbers.decimal_separator: ","',
        ],
    ),
    "compact_dates_without_their_pattern": (
        ["compact_dates.csv"],
        (),
        InputError,
        [
            "input.timestamp_formats: 3 of the first 3 values of column 'InvoiceDate' (input.columns.invoice_ts)",
            "compact_dates.csv",
            "(M/d/yyyy H:mm, yyyy-MM-dd HH:mm:ss, yyyy-MM-dd'T'HH:mm:ss, yyyy-MM-dd)",
            "look like '99999999'",
        ],
    ),
    "epoch_seconds_read_as_milliseconds": (
        ["epoch_seconds.csv"],
        ("input.timestamp_formats=[epoch_millis]",),
        InputError,
        ["input.timestamp_formats: 3 of the first 3 values", "no date from 1971 to 2200", "(epoch_millis)"],
    ),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_bad_files_give_a_clear_error_and_publish_nothing(spark: SparkSession, tmp_path: Path, case: str) -> None:
    files, overrides, error, phrases = ERROR_CASES[case]
    path = CORPUS / files[0]
    with pytest.raises(error) as raised:
        segment.run(spark, job_config(tmp_path, str(path), *overrides))
    message = str(raised.value)
    assert all(phrase in message for phrase in phrases), message
    assert not CORPUS_ID.search(message)
    assert "allowed 0%" not in message  # a limit nobody set
    assert nothing_published(tmp_path / "out")


def test_a_parquet_column_of_the_wrong_type_names_the_key(spark: SparkSession, tmp_path: Path) -> None:
    path = parquet_file(tmp_path, "typed/wrong.parquet", Quantity=[True, False])
    with pytest.raises(InputError, match=r"input\.columns\.quantity: column 'Quantity' in .*wrong\.parquet.* boolean"):
        segment.run(spark, job_config(tmp_path, str(path)))
    assert nothing_published(tmp_path / "out")


def test_parquet_files_that_disagree_on_a_type_name_the_file(spark: SparkSession, tmp_path: Path) -> None:
    parquet_file(tmp_path, "mixed/a.parquet")
    parquet_file(tmp_path, "mixed/b.parquet", Quantity=["2", "3"])  # text where a.parquet has integers
    with pytest.raises(RunFailed) as raised:
        segment.run(spark, job_config(tmp_path, str(tmp_path / "mixed")))
    message = str(raised.value)
    assert "stage read_validate failed" in message and "b.parquet" in message and "[Quantity]" in message, message
    assert "nothing was published" in message and not CORPUS_ID.search(message)
    assert nothing_published(tmp_path / "out")


def test_a_parquet_file_read_as_csv_does_not_echo_its_bytes(spark: SparkSession, tmp_path: Path) -> None:
    path = parquet_file(tmp_path, "typed/data.parquet")
    with pytest.raises(InputError) as raised:
        segment.run(spark, job_config(tmp_path, str(path), "input.format=csv"))
    message = str(raised.value)
    assert "input.columns.customer_id" in message and "data.parquet" in message
    assert "none of the mapped columns is in its header" in message and "PAR1" not in message
    assert nothing_published(tmp_path / "out")


def test_a_glob_matching_nothing_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"input\.path: no file or folder matches '.*nothing-\*\.csv'"):
        job_config(tmp_path, str(CORPUS / "nothing-*.csv"))


CONFIG_CASES = sorted(p.name for p in (CORPUS / "config").glob("*.yaml"))


@pytest.mark.parametrize("name", CONFIG_CASES)
def test_config_mistakes_stop_the_command_line_before_any_work(
    tmp_path: Path, base_log: Path, name: str, capsys: pytest.CaptureFixture
) -> None:
    path = CORPUS / "config" / name
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    argv = ["run", "--config", str(REPO / "conf/base.yaml"), "--config", str(path), "--input", str(base_log)]
    if "  path:" not in path.read_text():
        argv += ["--output", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert re.search(expected, error), error
    assert name in error  # the message names the file the mistake is in
    assert "do-not-put-keys" not in error  # a key put in a config file is not echoed back
    assert not (tmp_path / "out").exists()
