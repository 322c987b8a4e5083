"""A baseline unrelated to a run's input is not taken silently (``history.relation``).

Three runs of one output root: a planted log A (``exports/2011-12-07``), a later export of it without some of its
customers (``exports/2011-12-08``: taken as its baseline), and an unrelated log B of other customers (its found
baseline ignored). A named unrelated baseline (taken, with the warning recorded) is judged on tiny frames with
pseudonymised ids (compared as published), and its report sentence read from a manifest; then the rule's pure
parts and older manifests.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from segmentation.config import ConfigError
from segmentation.demo import generate
from segmentation.history import baseline as baselines
from segmentation.history import migration, relation
from segmentation.jobs import segment
from segmentation.publish import files, protect
from segmentation.publish.manifest import BaselineCheck, HistorySection, RunRef
from segmentation.report import text

from .conftest import job_config
from .manifests import manifest as fixture_manifest

KEY = "a-test-key-of-32-characters-long"
A, EXPORT, B = "exports/2011-12-07.csv.gz", "exports/2011-12-08.csv.gz", "other/shop.csv.gz"


def manifest(result: segment.RunResult) -> dict[str, Any]:
    return json.loads((Path(result.run_folder) / files.MANIFEST).read_text())


class Caught(logging.Handler):
    """The warnings of ``history.relation`` while the runs run (caplog is per test; the runs are per module)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def runs(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The three runs (see the module), their warnings, and B's customer ids."""
    tmp = tmp_path_factory.mktemp("related")
    log_a, truth_a = generate.generate(customers=120, seed=11, planted=4)
    generate.write_log(str(tmp / A), log_a, truth_a, truth_path=None)
    dropped = set(truth_a["CustomerID"].iloc[::7])  # the later export lost every seventh customer
    generate.write_log(str(tmp / EXPORT), log_a[~log_a["CustomerID"].isin(dropped)], truth_a, truth_path=None)
    log_b, truth_b = generate.generate(customers=120, seed=23, planted=4)
    other = {c: str(int(c) + 500_000) for c in truth_b["CustomerID"]}  # nobody in both shops
    log_b = log_b.assign(CustomerID=log_b["CustomerID"].replace(other))
    generate.write_log(str(tmp / B), log_b, truth_b, truth_path=None)

    def run(path: str, day: str) -> segment.RunResult:
        cfg = job_config(
            tmp, str(tmp / path), "model.k=4", "model.seeds=1", "value.enabled=false",
            f"features.as_of={day}", output=str(tmp / "out"),
        )  # fmt: skip
        return segment.run(spark, cfg)

    caught, logger = Caught(), logging.getLogger(relation.__name__)
    logger.addHandler(caught)
    try:
        found = {"a": run(A, "2011-12-07"), "export": run(EXPORT, "2011-12-08"), "b": run(B, "2011-12-09")}
        found["again"] = run(A, "2011-12-10")  # after the other shop's run: the line looks back past it
    finally:
        logger.removeHandler(caught)
    yield {**found, "tmp": tmp, "warnings": caught.messages, "b_ids": set(other.values())}


@pytest.mark.slow
def test_a_later_export_of_mostly_the_same_customers_is_taken_as_the_baseline(runs: dict[str, Any]) -> None:
    entry = manifest(runs["export"])["history"]
    assert entry["status"] == "taken" and entry["baseline"]["as_of_date"] == "2011-12-07"
    check = entry["check"]
    assert (check["input"], check["baseline_input"]) == (str(runs["tmp"] / EXPORT), str(runs["tmp"] / A))
    assert check["same_input"] is False and check["related"] is True
    # the export lost every seventh of A's customers and has a few who first bought after A's as-of date
    smaller = min(check["customers"], check["baseline_customers"])
    assert 0.9 * smaller < check["shared_customers"] < smaller
    assert check["shared_share"] == round(check["shared_customers"] / smaller, 6) and check["min_shared"] == 0.5
    shared = relation.percent(check["shared_share"])
    assert (
        entry["reason"] == f"related input ({runs['tmp'] / EXPORT} vs {runs['tmp'] / A}; {shared} of customers shared)"
    )
    assert entry["matches"] and entry["migration"]  # ids kept, customers followed
    assert {m["segment"]: m["name"] for m in entry["matches"]}.items() <= runs["a"].segment_names.items()


@pytest.mark.slow
def test_an_unrelated_log_ignores_the_baseline_found_and_starts_fresh(
    spark: SparkSession, runs: dict[str, Any]
) -> None:
    result = runs["b"]
    entry = manifest(result)["history"]
    assert entry["status"] == "ignored" and entry["baseline"] is None and entry["method"] == "no baseline"
    assert entry["check"]["run"]["as_of_date"] == "2011-12-08" and entry["check"]["related"] is False
    assert entry["check"]["shared_customers"] == 0
    # fresh ids, as a first run numbers them, nothing matched and no migration against the export
    assert entry["matches"] == [] and entry["new"] == [] and entry["migration"] == []
    # the run id's ids are never reused: the fresh segments are numbered after the highest id of the line
    used = manifest(runs["export"])["history"]["max_segment_id"]
    assert used >= 4 and sorted(result.segment_names) == [used + 1, used + 2, used + 3, used + 4]
    assert entry["max_segment_id"] == used + 4
    assert pd.read_parquet(Path(result.run_folder) / migration.MIGRATION).empty
    segments = spark.read.parquet(str(Path(result.run_folder) / "segments"))
    assert segments.filter("previous_segment IS NOT NULL").count() == 0 and segments.count() == result.customers
    expected = (
        f"baseline 2011-12-08/main ignored: unrelated input ({runs['tmp'] / B} vs {runs['tmp'] / EXPORT}; "
        "0% of customers shared)"
    )
    assert expected in runs["warnings"] and entry["reason"] == expected.split(" ignored: ")[1]
    assert any(m.startswith("baseline 2011-12-07/main ignored: unrelated input") for m in runs["warnings"])
    assert not any(c in message for message in runs["warnings"] for c in runs["b_ids"])  # no customer in a log
    report = (Path(result.run_folder) / "report.md").read_text()
    assert "The earlier run of 2011-12-08 (run id main) was not taken as the baseline, for its unrelated" in report


def stored(spark: SparkSession, ids: list[str], key: bytes) -> baselines.Baseline:
    """A baseline of ``a.csv`` whose features table has ``ids``, published pseudonymised with ``key``."""
    raw = spark.createDataFrame([(c, 1) for c in ids], "customer_id string, segment int")
    found = fixture_manifest()
    found = found.model_copy(
        update={
            "input": found.input.model_copy(update={"path": "a.csv"}),
            "counts": found.counts.model_copy(update={"customers": len(ids)}),
        }
    )
    return baselines.Baseline(dt.date(2011, 12, 7), "main", "out", found, "model", protect(raw, key))


def test_a_named_unrelated_baseline_is_taken_with_the_warning_recorded(
    spark: SparkSession, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two of four customers in both runs (compared as pseudonyms): related at 0.5, not at 0.6; named, taken."""
    key, mine = KEY.encode(), tmp_path / "b.csv"
    mine.write_text("CustomerID\n")
    baseline = stored(spark, ["1", "2", "3", "4"], key)
    current = spark.createDataFrame([(c,) for c in ("3", "4", "5", "6")], "customer_id string")
    related = job_config(tmp_path, str(mine), "history.min_shared_customers=0.5")
    judged = relation.judge(baseline, related, current, customers=4, key=key)
    assert judged.baseline is baseline and judged.status == "taken" and judged.check is not None
    assert (judged.check.shared_customers, judged.check.shared_share) == (2, 0.5)
    named = job_config(tmp_path, str(mine), "history.min_shared_customers=0.6", "history.baseline=2011-12-07")
    caplog.clear()  # the INFO line above, when an earlier test (the command line's) set the logger to INFO
    with caplog.at_level(logging.WARNING, logger=relation.__name__):
        judged = relation.judge(baseline, named, current, customers=4, key=key)
    assert judged.baseline is baseline and judged.status == "taken unrelated"
    reason = f"unrelated input ({mine} vs a.csv; 50% of customers shared)"
    assert caplog.messages == [
        f"baseline 2011-12-07/main taken because history.baseline names it, though it is unrelated: {reason}"
    ]
    section = HistorySection(**judged.as_dict())  # as history_section records it
    assert (section.status, section.reason, section.check) == ("taken unrelated", reason, judged.check)
    # not named: ignored; without a key the raw ids meet the baseline's pseudonyms, and nobody is shared
    ignored = relation.judge(baseline, related, current, customers=4, key=None)
    assert ignored.baseline is None and ignored.status == "ignored"
    assert ignored.check is not None and ignored.check.shared_customers == 0


def test_the_report_says_a_named_baseline_is_unrelated() -> None:
    run = {"as_of_date": "2011-12-07", "run_id": "main"}
    found = {"run": run, "input": "b.csv", "baseline_input": "a.csv", "same_input": False, "customers": 4}
    found |= {"baseline_customers": 4, "shared_customers": 0, "shared_share": 0.0, "min_shared": 0.5, "related": False}
    reason = "unrelated input (b.csv vs a.csv; 0% of customers shared)"
    history = {"baseline": run, "status": "taken unrelated", "reason": reason, "check": found, "method": "m"}
    lines = text.history_lines(fixture_manifest(history=history))
    assert lines[:2] == [
        "Compared with the run of 2011-12-07 (run id main), by m.",
        f"It was taken because history.baseline names it, though it is unrelated: {reason}.",
    ]


# ---------------------------------------------------------------- the rule's pure parts


def check(*, same: bool = False, shared: int = 0, customers: int = 100, theirs: int = 50) -> BaselineCheck:
    share = relation.share_of_smaller(shared, customers, theirs)
    return BaselineCheck(
        run=RunRef(as_of_date="2011-12-07", run_id="main"), input="b.csv", baseline_input="b.csv" if same else "a.csv",
        same_input=same, customers=customers, baseline_customers=theirs, shared_customers=None if same else shared,
        shared_share=None if same else share, min_shared=None if same else 0.5, related=same or share >= 0.5,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("found", "named", "status", "reason"),
    [
        (check(same=True), False, "taken", "same input (b.csv)"),
        (check(shared=25), False, "taken", "related input (b.csv vs a.csv; 50% of customers shared)"),
        (check(shared=24), False, "ignored", "unrelated input (b.csv vs a.csv; 48% of customers shared)"),
        (check(shared=24), True, "taken unrelated", "unrelated input (b.csv vs a.csv; 48% of customers shared)"),
        (check(shared=0, theirs=0), False, "ignored", "unrelated input (b.csv vs a.csv; 0% of customers shared)"),
    ],
)
def test_the_rule_takes_the_same_input_or_enough_of_the_smaller_run_s_customers(
    found: BaselineCheck, named: bool, status: str, reason: str
) -> None:
    assert relation.decide(found, named=named) == status and relation.reason(found) == reason


def test_a_share_is_rounded_down_so_it_never_reads_as_the_threshold() -> None:
    assert [relation.percent(s) for s in (0.0, 0.4996, 0.5, 0.123, 1.0)] == ["0%", "49.9%", "50%", "12.3%", "100%"]


@pytest.mark.parametrize("value", ["0", "1.5", "-0.1"])
def test_min_shared_customers_is_a_fraction_above_0_up_to_1(tmp_path: Path, value: str) -> None:
    (tmp_path / "in.csv").write_text("CustomerID\n")
    assert (
        job_config(tmp_path, str(tmp_path / "in.csv"), "history.min_shared_customers=1").history.min_shared_customers
        == 1
    )
    with pytest.raises(ConfigError, match="min_shared_customers"):
        job_config(tmp_path, str(tmp_path / "in.csv"), f"history.min_shared_customers={value}")


def test_a_manifest_written_before_the_rule_reads_and_is_written_as_it_was() -> None:
    older = fixture_manifest()
    assert older.history is None or older.history.status is None
    older = fixture_manifest(history={"method": "no baseline", "migration": []})
    assert older.history is not None and older.history.status is None and older.history.check is None
    assert not {"status", "reason", "check"} & set(older.to_json()["history"])


@pytest.mark.slow
def test_a_run_after_an_unrelated_one_looks_back_to_the_latest_related_run(runs: dict[str, Any]) -> None:
    entry = manifest(runs["again"])["history"]
    assert entry["status"] == "taken" and entry["baseline"]["as_of_date"] == "2011-12-08"  # the export, past B
    assert any(m.startswith("baseline 2011-12-09/main ignored: unrelated input") for m in runs["warnings"])
    assert entry["matches"] and entry["migration"]
    taken = {m["segment"] for m in entry["matches"]}
    assert taken <= set(runs["export"].segment_names) and taken <= set(runs["again"].segment_names)
