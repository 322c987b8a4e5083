"""Segments over time, through whole runs: ids kept across runs, splits and merges, a frozen model's run,
history read across dates from Spark, pandas and DuckDB, and a bad baseline refused before any work.

One planted log (4 well-separated behaviours) is run at three as-of dates of one run id, then at the last date
under other run ids against the same baseline: reseeded and repartitioned, with k = 3 and k = 5, and scored
with the frozen model.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from segmentation.demo import generate
from segmentation.errors import InputError
from segmentation.history import migration, readers
from segmentation.input import sources
from segmentation.jobs import score, segment
from segmentation.publish import files, storage

from .conftest import job_config

pytestmark = pytest.mark.slow
DATES = ("2011-12-07", "2011-12-08", "2011-12-09")


def manifest(run_folder: str) -> dict[str, Any]:
    return json.loads((Path(run_folder) / files.MANIFEST).read_text())


@pytest.fixture(scope="module")
def runs(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The planted log's runs (see the module); their results by name."""
    tmp = tmp_path_factory.mktemp("history")
    log = tmp / "planted.csv.gz"
    generate.write(str(log), customers=160, seed=11, planted=4)

    def run(name: str, *overrides: str) -> segment.RunResult:
        return segment.run(
            spark, job_config(tmp, str(log), "model.k=4", "model.seeds=1", *overrides, output=str(tmp / "out"))
        )

    found: dict[str, Any] = {"root": tmp / "out", "log": log, "tmp": tmp}
    for day in DATES:
        found[day] = run(day, f"features.as_of={day}")
    last = f"{DATES[-1]}/main"
    found["reseeded"] = run(
        "reseeded", f"features.as_of={DATES[-1]}", "output.run_id=reseeded", "model.seed=7",
        "model.customers_per_partition=40", f"history.baseline={last}",
    )  # fmt: skip
    found["merged"] = run(
        "merged", f"features.as_of={DATES[-1]}", "output.run_id=merged", "model.k=3", f"history.baseline={last}"
    )
    found["split"] = run(
        "split", f"features.as_of={DATES[-1]}", "output.run_id=split", "model.k=5", f"history.baseline={last}"
    )
    return found


def test_a_first_run_has_no_baseline_and_later_ones_compare_with_the_date_before(runs: dict[str, Any]) -> None:
    first = manifest(runs[DATES[0]].run_folder)["history"]
    assert first["baseline"] is None and first["migration"] == []
    empty = pd.read_parquet(Path(runs[DATES[0]].run_folder) / migration.MIGRATION)  # the table, without rows
    assert empty.empty and list(empty.columns) == migration.MIGRATION_SCHEMA.names
    for before, day in itertools.pairwise(DATES):
        entry = manifest(runs[day].run_folder)["history"]
        assert (entry["baseline"]["as_of_date"], entry["baseline"]["run_id"]) == (before, "main")
    report = (Path(runs[DATES[0]].run_folder) / "report.md").read_text()
    assert "This run has no baseline" in report


def test_ids_and_names_are_kept_when_nothing_changed_but_the_seed_and_partitioning(
    spark: SparkSession, runs: dict[str, Any]
) -> None:
    base, again = runs[DATES[-1]], runs["reseeded"]
    entry = manifest(again.run_folder)["history"]
    assert entry["new"] == [] and entry["vanished"] == []
    assert {m["segment"]: m["name"] for m in entry["matches"]} == base.segment_names
    assert again.segment_names == base.segment_names
    # the migration is the identity: every customer stays, nobody new or inactive
    assert {(r["from_segment"], r["to_segment"], r["direction"]) for r in entry["migration"]} == {
        (s, s, "same") for s in base.segment_names
    }
    assert all(r["share_of_from"] == 1.0 for r in entry["migration"])
    segments = spark.read.parquet(str(Path(again.run_folder) / "segments"))
    assert segments.filter("previous_segment IS NULL OR previous_segment != segment").count() == 0
    table = spark.read.parquet(str(Path(again.run_folder) / migration.MIGRATION)).orderBy("from_segment").collect()
    assert [(r["from_segment"], r["to_segment"], r["customers"]) for r in table] == [
        (s, s, n) for s, n in sorted(base.segment_sizes.items())
    ]
    assert {r["baseline_as_of_date"] for r in table} == {dt.date.fromisoformat(DATES[-1])}


def test_consecutive_dates_keep_every_behaviour_s_id(runs: dict[str, Any]) -> None:
    ids = [runs[day].segment_names for day in DATES]
    assert ids[0] == ids[1] == ids[2]  # one day more of the same log: the same behaviours, ids and names


def test_a_retrain_with_fewer_segments_reports_the_merge(runs: dict[str, Any]) -> None:
    """k = 3 on 4 behaviours: two merge. The merged segment's centroid lies between theirs, so it is neither
    (a new id), both are reported vanished and merged into it, and the other two keep their ids."""
    before, merged = runs[DATES[-1]].segment_names, runs["merged"].segment_names
    entry = manifest(runs["merged"].run_folder)["history"]
    assert len(entry["matches"]) + len(entry["vanished"]) == 4 and len(entry["matches"]) + len(entry["new"]) == 3
    assert entry["vanished"], "two behaviours in one segment cannot both keep their ids"
    targets = {m["segment"]: m["into_segment"] for m in entry["merges"]}
    assert set(targets) == {v["segment"] for v in entry["vanished"]} and set(targets.values()) <= set(merged)
    assert all(s > max(before) for s in merged if s not in before)  # a new id is never a reused one
    report = (Path(runs["merged"].run_folder) / "report.md").read_text()
    for vanished in entry["vanished"]:
        assert f"Vanished: {vanished['segment']} {vanished['name']}; most of its customers went to" in report
    for new in entry["new"]:
        sources = sorted(s for s, into in targets.items() if into == new["segment"])
        if len(sources) > 1:
            assert f"New: {new['segment']} {new['name']}; a merge of {sources[0]} " in report


def test_a_retrain_with_more_segments_gives_the_split_a_new_id(runs: dict[str, Any]) -> None:
    """k = 5 on 4 behaviours: one splits. A part that stays close to the behaviour keeps its id; a new id
    goes to the rest, and the report says which segment it split from."""
    before = runs[DATES[-1]].segment_names
    entry = manifest(runs["split"].run_folder)["history"]
    assert len(entry["matches"]) + len(entry["new"]) == 5 and len(entry["matches"]) >= 3
    assert entry["new"] and all(n["segment"] > max(before) for n in entry["new"])  # new ids, never reused ones
    origins = {o["segment"]: o for o in entry["origins"]}
    report = (Path(runs["split"].run_folder) / "report.md").read_text()
    for new in entry["new"]:
        origin = origins[new["segment"]]
        assert origin["from_segment"] in before
        if origin["kind"] == "split":
            assert f"New: {new['segment']} {new['name']}; split from {origin['from_segment']}" in report
    assert any(o["kind"] == "split" for o in origins.values())
    assert (Path(runs["split"].run_folder) / "report" / "transitions.png").stat().st_size > 10_000


def test_scoring_with_the_frozen_model_publishes_the_same_history_outputs(
    spark: SparkSession, runs: dict[str, Any]
) -> None:
    trained = runs[DATES[-1]]
    cfg = job_config(
        runs["tmp"], str(runs["log"]), f"features.as_of={DATES[-1]}", "output.run_id=scored",
        f"history.baseline={DATES[-1]}/main", output=str(runs["root"]),
    )  # fmt: skip
    scored = score.score(spark, cfg, trained.run_folder)
    entry = manifest(scored.run_folder)["history"]
    assert entry["method"] == "frozen model" and entry["baseline"]["run_id"] == "main"
    assert {(r["from_segment"], r["to_segment"]) for r in entry["migration"]} == {(s, s) for s in trained.segment_names}
    segments = spark.read.parquet(str(Path(scored.run_folder) / "segments"))
    assert segments.columns == spark.read.parquet(str(Path(trained.run_folder) / "segments")).columns
    assert segments.filter("previous_segment IS NULL OR previous_segment != segment").count() == 0
    assert (Path(scored.run_folder) / migration.MIGRATION).is_dir()


def expected_history(runs: dict[str, Any]) -> pd.DataFrame:
    """Customers per (date, segment) of the three dates of run id main, from each run's own result."""
    rows = [(dt.date.fromisoformat(d), s, n) for d in DATES for s, n in runs[d].segment_sizes.items()]
    return pd.DataFrame(rows, columns=["as_of_date", "segment", "customers"]).sort_values(["as_of_date", "segment"])


def test_history_across_three_dates_reads_from_spark_pandas_and_duckdb(
    spark: SparkSession, runs: dict[str, Any]
) -> None:
    root, expected = str(runs["root"]), expected_history(runs).reset_index(drop=True)

    frame = readers.read(spark, root, run_id="main")
    assert set(frame.columns) >= {"customer_id", "segment", "segment_name", "previous_segment", "as_of_date", "run_id"}
    from_spark = frame.groupBy("as_of_date", "segment").count().toPandas()
    from_spark = from_spark.rename(columns={"count": "customers"}).sort_values(["as_of_date", "segment"])
    pd.testing.assert_frame_equal(from_spark.reset_index(drop=True), expected, check_dtype=False)

    from_pandas = readers.read_pandas(root, run_id="main")
    counted = from_pandas.groupby(["as_of_date", "segment"]).size().reset_index(name="customers")
    pd.testing.assert_frame_equal(counted, expected, check_dtype=False)
    # a customer's previous_segment on one date is its segment on the date before
    wide = from_pandas.pivot_table(index="customer_id", columns="as_of_date", values="segment", aggfunc="first")
    second = from_pandas[from_pandas["as_of_date"] == dt.date.fromisoformat(DATES[1])].set_index("customer_id")
    first_date = dt.date.fromisoformat(DATES[0])
    assert (second["previous_segment"].astype("Int64") == wide.loc[second.index, first_date].astype("Int64")).all()

    duckdb = pytest.importorskip("duckdb")
    files = readers.parquet_files(root, "segments", run_id="main")
    counted = duckdb.sql(
        "SELECT CAST(as_of_date AS DATE) AS as_of_date, CAST(segment AS INTEGER) AS segment, count(*) AS customers "
        f"FROM read_parquet({files!r}, hive_partitioning = true) GROUP BY ALL ORDER BY ALL"
    ).df()
    counted["as_of_date"] = counted["as_of_date"].dt.date
    pd.testing.assert_frame_equal(counted, expected, check_dtype=False)


def test_all_run_ids_are_in_the_history(spark: SparkSession, runs: dict[str, Any]) -> None:
    ids = {r["run_id"] for r in readers.read(spark, str(runs["root"])).select("run_id").distinct().collect()}
    assert ids >= {"main", "reseeded", "merged", "split"}


def no_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the input was read before the baseline was checked")

    monkeypatch.setattr(sources, "read_raw", refuse)


@pytest.mark.parametrize(
    ("baseline", "overrides", "expected"),
    [
        ("2011-11-30/main", (), "no committed run of as-of date 2011-11-30, run id main"),
        ("2011-12-09/nobody", (), "no committed run of as-of date 2011-12-09, run id nobody"),
        ("2011-12-08/main", ("features.model_features=[recency_days,frequency,monetary]",), "other model inputs"),
        ("2011-12-08/main", ("privacy.pseudonymize_ids=true",), "privacy.pseudonymize_ids"),
    ],
)
def test_a_bad_baseline_is_refused_naming_it_before_any_work(
    spark: SparkSession,
    runs: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    baseline: str,
    overrides: tuple[str, ...],
    expected: str,
) -> None:
    no_reading(monkeypatch)
    monkeypatch.setenv("SEGMENTATION_ID_KEY", "k" * 32)
    cfg = job_config(
        runs["tmp"], str(runs["log"]), "features.as_of=2011-12-09", "output.run_id=refused",
        f"history.baseline={baseline}", *overrides, output=str(runs["root"]),
    )  # fmt: skip
    with pytest.raises(InputError, match=r"history\.baseline|privacy") as caught:
        segment.run(spark, cfg)
    assert expected in str(caught.value) and baseline.split("/")[0] in str(caught.value)
    assert not (runs["root"] / "runs" / "as_of_date=2011-12-09" / "run_id=refused").exists()


def test_a_named_baseline_that_is_this_run_itself_is_refused_once_the_as_of_date_is_known(
    spark: SparkSession, runs: dict[str, Any]
) -> None:
    # no features.as_of: the date comes from the data (2011-12-09), and run id main of that date is this run
    cfg = job_config(runs["tmp"], str(runs["log"]), "history.baseline=2011-12-09", output=str(runs["root"]))
    before = files.resolve_run(storage.for_root(None, str(runs["root"])), dt.date(2011, 12, 9), "main")
    with pytest.raises(InputError, match="'2011-12-09' is this run itself"):
        segment.run(spark, cfg)
    assert files.resolve_run(storage.for_root(None, str(runs["root"])), dt.date(2011, 12, 9), "main") == before


def test_a_baseline_that_was_never_committed_is_refused(
    spark: SparkSession, runs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_reading(monkeypatch)
    attempt = runs["root"] / "runs" / "as_of_date=2011-12-01" / "run_id=main" / "attempt=abc123"
    (attempt / "segments").mkdir(parents=True)  # a killed run's files: no commit names them
    cfg = job_config(
        runs["tmp"], str(runs["log"]), "features.as_of=2011-12-09", "output.run_id=refused",
        "history.baseline=2011-12-01", output=str(runs["root"]),
    )  # fmt: skip
    with pytest.raises(InputError, match="no committed attempt"):
        segment.run(spark, cfg)
