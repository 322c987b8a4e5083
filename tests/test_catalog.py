"""Publishing runs as catalog tables: names and the runs row without Spark; the whole protocol over a real Hive
metastore (embedded Derby) in one driver process, ``tests/catalog_driver.py``, whose steps are checked here:
in a classic session. (The same tables over Spark Connect, written by the whole job: tests/test_connect_unseen.py.)"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import pytest

from segmentation.config import CatalogOutputConfig, JobConfig
from segmentation.errors import ConfigError
from segmentation.input.quarantine import LineCounts
from segmentation.publish import catalog, files
from segmentation.publish.manifest import SCORING, SEGMENTATION, HistorySection, Manifest, build
from segmentation.publish.storage import LocalStorage

from .catalog_driver import FEB, JAN, RUNS_COLUMNS, TABLES, run_rows
from .conftest import REPO

hive = pytest.mark.slow

# ---------------------------------------------------------------- without Spark


def test_table_name_quotes_each_part() -> None:
    assert catalog.table_name(CatalogOutputConfig(database="seg"), "runs") == "`seg`.`runs`"
    cfg = CatalogOutputConfig(database="seg", catalog="main")
    assert catalog.table_name(cfg, "segments") == "`main`.`seg`.`segments`"
    assert catalog.database_name(cfg) == "`main`.`seg`"


def test_table_name_refuses_what_is_not_an_identifier_and_a_missing_database() -> None:
    with pytest.raises(ValueError, match="not a table name"):
        catalog.table_name(CatalogOutputConfig(database="seg"), "x`; DROP TABLE y")
    with pytest.raises(ConfigError, match=r"output\.catalog\.database: not set"):
        catalog.table_name(CatalogOutputConfig(), "runs")


def test_sql_text_of_a_partition_is_quoted() -> None:
    assert catalog.partition_spec(JAN, "main") == "(as_of_date = DATE'2024-01-31', run_id = 'main')"
    assert catalog.partition_condition(JAN, "a'b") == "as_of_date = DATE'2024-01-31' AND run_id = 'a\\'b'"
    assert catalog.quote_identifier("odd`name") == "`odd``name`"


def test_helper_tables_are_stale_after_a_day_by_the_time_in_their_name() -> None:
    made = dt.datetime(2024, 3, 1, 12, 0, 5, tzinfo=dt.UTC)
    name = catalog.helper_table(catalog.STAGE_PREFIX, made, owner="0123456789ab", name="segments")
    assert name == "_segmentation_stage_20240301120005_0123456789ab_segments"
    assert not catalog.stale(name, made + dt.timedelta(hours=23))
    assert catalog.stale(name, made + dt.timedelta(hours=25))
    assert not catalog.stale("segments", made + dt.timedelta(days=9))  # not ours: never dropped
    with pytest.raises(ValueError):
        catalog.helper_table(catalog.WORK_PREFIX, made, owner="has_underscore", name="lines")


def _manifest(kind: Literal["segmentation", "scoring"]) -> Manifest:
    counts = LineCounts(
        lines_in=120, lines_clean=90, quarantined={"bad_quantity": 7, "no_customer": 3}, out_of_window=20
    )
    extra: dict[str, Any] = {"chosen_k": 4, "choice_reason": "k=4: best silhouette"} if kind == SEGMENTATION else {}
    return build(
        kind,
        JobConfig(),
        attempt=files.Staging(LocalStorage("/out"), as_of=JAN, run_id="main", attempt_id="0123456789ab", seen_commit=0),
        spark_version="4.3.0",
        counts={**counts.as_dict(), "customers": 42},
        mapping={0: 1, 1: 0},
        profile_rows=[],
        history=HistorySection(),
        **extra,
    )


def test_runs_row_of_a_segmentation_run() -> None:
    built = _manifest(SEGMENTATION)
    row = catalog.runs_row(built, model_path="/out/runs/as_of_date=2024-01-31/run_id=main/model")
    assert list(row) == [field.name for field in catalog.RUNS_SCHEMA.fields]
    assert isinstance(row.pop("committed_utc"), dt.datetime)
    assert row == {
        "attempt_id": "0123456789ab",
        "kind": "segmentation",
        "lines_in": 120,
        "lines_clean": 90,
        "lines_quarantined": 10,
        "lines_out_of_window": 20,
        "customers": 42,
        "chosen_k": 4,
        "choice_reason": "k=4: best silhouette",
        "model_path": "/out/runs/as_of_date=2024-01-31/run_id=main/model",
        "code_version": "0.1.0",
        "spark_version": "4.3.0",
        "config_json": json.dumps(JobConfig().to_dict()),
        "manifest_json": json.dumps(built.to_json(), default=str),
        "lines_read": 120,  # a full run reads every line and keeps no state
        "lines_in_state": None,
        "drift_status": None,  # no drift checks
        "held": False,
        "as_of_date": JAN,
        "run_id": "main",
    }


def test_runs_row_of_a_scoring_run_has_no_k() -> None:
    row = catalog.runs_row(_manifest(SCORING), model_path=None)
    assert (row["kind"], row["chosen_k"], row["choice_reason"], row["model_path"]) == ("scoring", None, None, None)


# ---------------------------------------------------------------- a real Hive metastore


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each step's JSON object from one run of the driver (one JVM, one Derby metastore)."""
    folder: Path = tmp_path_factory.mktemp("catalog")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYSPARK_PYTHON": sys.executable}
    env.pop("SPARK_REMOTE", None)
    argv = [sys.executable, "-m", "tests.catalog_driver", str(folder)]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {line.pop("step"): line for line in lines}


def published(*runs: tuple[dt.date, str, int]) -> dict[str, list[list[Any]]]:
    """What the five tables hold when the given (date, run id, version) runs are published, as the driver reads it."""
    held: dict[str, list[list[Any]]] = {table: [] for table in TABLES}
    for as_of, run_id, version in runs:
        for table, rows in run_rows(version).items():
            held[table] += [[*row, as_of.isoformat(), run_id] for row in rows]
    return {table: sorted(rows, key=json.dumps) for table, rows in held.items()}


def tables(step: dict[str, Any]) -> dict[str, Any]:
    return {table: step[table] for table in TABLES}


def runs(*rows: tuple[dt.date, str, str, int, str | None]) -> list[list[Any]]:
    """``runs`` rows as the driver reads them, of (date, run id, attempt, version, model path) segmentation runs."""
    made = [
        [d.isoformat(), r, a, "segmentation", 10 * v, 9 * v, v, 0, v + 2, 2, f"k=2 (version {v})", path, "0.1.0"]
        for d, r, a, v, path in rows
    ]
    assert all(len(row) == len(RUNS_COLUMNS) for row in made)
    return sorted(made, key=json.dumps)


@hive
def test_first_publish_makes_partitioned_tables_and_drops_only_stale_helper_tables(steps: dict) -> None:
    step = steps["first_publish"]
    assert tables(step) == published((JAN, "main", 1))
    assert step["runs"] == runs((JAN, "main", step["attempt"], 1, "/models/1"))
    # the killed run's day-old staging table is gone; the live job's work table stayed until that job dropped it
    assert len(step["helper_tables_before_drop"]) == 1
    assert step["helper_tables_before_drop"][0].startswith("_segmentation_work_")
    assert step["helper_tables_before_drop"][0].endswith("_live01_lines")
    assert step["work_rows"] == 3
    assert step["helper_tables"] == []


@hive
def test_second_date_is_added_beside_the_first(steps: dict) -> None:
    first, step = steps["first_publish"], steps["second_publish"]
    assert tables(step) == published((JAN, "main", 1), (FEB, "main", 2))
    assert step["runs"] == runs(
        (JAN, "main", first["attempt"], 1, "/models/1"), (FEB, "main", step["attempt"], 2, "/models/2")
    )


@hive
def test_rerun_replaces_exactly_its_partitions_and_readers_see_nothing_while_it_is_staged(steps: dict) -> None:
    first, second, step = steps["first_publish"], steps["second_publish"], steps["rerun"]
    assert step["seen_attempt"] == first["attempt"]
    staged = step["while_staged"]
    assert {k: v for k, v in staged.items() if k != "helper_tables"} == {
        k: v for k, v in second.items() if k in (*TABLES, "runs")
    }
    assert sorted(t.rsplit("_", 1)[1] for t in staged["helper_tables"]) == sorted(TABLES)
    assert all(f"_{step['attempt']}_" in t for t in staged["helper_tables"])
    # version 3 quarantined nothing: the Jan 31 quarantine partition is empty now, Feb 29's is untouched
    assert tables(step) == published((JAN, "main", 3), (FEB, "main", 2))
    assert step["runs"] == runs(
        (JAN, "main", step["attempt"], 3, "/models/3"), (FEB, "main", second["attempt"], 2, "/models/2")
    )
    assert step["helper_tables"] == []


@hive
def test_a_run_failing_while_staged_changes_no_table(steps: dict) -> None:
    step = steps["failed_run"]
    assert step["error"] == "SparkRuntimeException" and "injected failure" in step["message"]
    assert {k: v for k, v in step.items() if k not in ("error", "message", "seconds")} == {
        k: v for k, v in steps["rerun"].items() if k in (*TABLES, "runs", "helper_tables")
    }


@hive
def test_a_table_with_other_columns_stops_the_run_before_anything_changes(steps: dict) -> None:
    step = steps["other_columns"]
    assert step["error"] == "RunFailed"
    assert step["message"] == (
        "table `seg`.`segments` has the columns [customer_id string, segment int, segment_name string] but this "
        "run's segments has [customer_id string, segment int, label string]; this run was not published (drop or "
        "rename that table, or publish to another database)"
    )
    assert {k: v for k, v in step.items() if k not in ("error", "message", "seconds")} == {
        k: v for k, v in steps["rerun"].items() if k in (*TABLES, "runs", "helper_tables")
    }


@hive
def test_the_second_of_two_concurrent_publishes_is_refused_and_the_first_stays_whole(steps: dict) -> None:
    rerun, step = steps["rerun"], steps["concurrent_publish"]
    assert step["seen_attempt"] == steps["second_publish"]["attempt"]
    assert step["error"] == "RunFailed"
    assert step["message"] == (
        f"another job published as-of 2024-02-29, run id main at {step['committed_utc_a']} (attempt "
        f"{step['attempt_a']}) while this run was running; this run was not published; the tables hold the other "
        "run whole"
    )
    assert tables(step) == published((JAN, "main", 3), (FEB, "main", 6))
    assert step["runs"] == runs(
        (JAN, "main", rerun["attempt"], 3, "/models/3"), (FEB, "main", step["attempt_a"], 6, None)
    )
    assert step["helper_tables"] == []  # B's staging tables were dropped


@hive
def test_a_scoring_run_under_its_own_run_id(steps: dict) -> None:
    step = steps["scoring_run"]
    expected = published((JAN, "main", 3), (FEB, "main", 6))
    expected["segments"] = sorted(
        expected["segments"] + [[*row, "2024-01-31", "scores"] for row in run_rows(8)["segments"]], key=json.dumps
    )
    assert tables(step) == expected
    assert [
        JAN.isoformat(),
        "scores",
        step["attempt"],
        "scoring",
        80,
        72,
        8,
        0,
        10,
        None,
        None,
        "/models/8",
        "0.1.0",
    ] in (step["runs"])
    assert len(step["runs"]) == 3


@hive
def test_sql_across_dates_and_run_row(steps: dict) -> None:
    step = steps["queries"]
    assert step["by_segment"] == [
        ["2024-01-31", "loyal", 7],
        ["2024-01-31", "new", 8],
        ["2024-02-29", "loyal", 4],
        ["2024-02-29", "new", 4],
    ]
    assert step["joined"] == [
        ["2024-01-31", "main", "segmentation", 2, 5],
        ["2024-01-31", "scores", "scoring", None, 10],
        ["2024-02-29", "main", "segmentation", 2, 8],
    ]
    assert step["run_row_date_and_id"] == ["2024-01-31", "main", steps["rerun"]["attempt"]]
    assert step["run_row_date"] == ["2024-01-31", "scores", steps["scoring_run"]["attempt"]]  # last run id by name
    assert step["run_row_newest"] == ["2024-02-29", "main", steps["concurrent_publish"]["attempt_a"]]
    assert step["run_row_missing"] is None


@hive
def test_incremental_runs_over_a_table_with_an_ingest_date_column(steps: dict) -> None:
    """Rows past the ingest date read so far, state tables in the catalog: each run equals a full run's features
    and counts over the same rows (the driver compares them)."""
    step = steps["incremental_from_a_table"]
    first, second = step["first"], step["second"]
    assert (first["mode"], second["mode"]) == ("first", "incremental")
    assert (first["read_up_to"], second["read_up_to"]) == ("2024-04-03", "2024-04-06")
    assert first["lines_read"] == first["lines_in_state"] == first["lines_in"]
    assert second["lines_read"] == second["lines_in"] - first["lines_in"] > 0  # only the new days' rows
    assert second["lines_in_state"] == second["lines_in"]
    for run in (first, second):
        assert run["same_counts"] and run["same_as_of"] and run["same_customers"]
        assert run["largest_difference"] <= 1e-9
    assert {"state_counts", "state_days", "state_files", "state_lines", "features", "runs"} <= set(step["tables"])


@hive
def test_a_runs_table_of_an_earlier_version_gets_the_new_columns(steps: dict) -> None:
    step = steps["runs_table_of_an_earlier_version"]
    assert step["columns"][-6:] == ["lines_read", "lines_in_state", "drift_status", "held", "as_of_date", "run_id"]
    assert step["rows"] == [["old", None, None], ["main", 20, None]]  # a full run read its 20 lines, kept no state
    assert step["quarantine_columns"] == ["raw_line", "reason", "detail", "as_of_date", "run_id"]
    assert step["quarantine"] == [
        ["old", "line 1.0", None],
        ["main", "line 2.0", "input.limits.max_quantity (1e+06)"],
        ["main", "line 2.1", "input.limits.max_quantity (1e+06)"],
    ]


@hive
def test_a_held_run_is_not_current_until_promoted(steps: dict) -> None:
    step = steps["held_and_promoted"]
    assert step["held"] == {
        "current": "2024-01-31",  # readers of the current run skip the held one
        "rows": [["2024-01-31", None, False], ["2024-02-29", "held", True]],
        "listed": [["2024-01-31", "-"], ["2024-02-29", "held"]],
    }
    assert step["promoted"] == {
        "current": "2024-02-29",
        "rows": [["2024-01-31", None, False], ["2024-02-29", "held", False]],
        "listed": [["2024-01-31", "-"], ["2024-02-29", "promoted"]],
    }
    assert step["promoted_utc"] is True
    assert step["again"]["error"] == "InputError" and "is not held" in step["again"]["message"]
