"""The whole job with catalog tables as its output, on a real metastore (Hive support, Derby in a temporary
folder) in a driver process of its own: two as-of dates, a re-run of one, and a run that fails half-way
through writing. After each step the tables hold exactly the runs that were published, whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from segmentation.demo import generate

from .conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.extended]  # make test-extended, not make test
TABLES = ["drift", "features", "migration", "profiles", "quarantine", "report", "report_sample", "runs", "segments"]
TABLES += ["sweep"]
VALUE_TABLES = ["customer_value", "value_model"]  # once a run could fit the value models (120 customers may not)


def test_catalog_tables_across_dates_reruns_and_a_failure(tmp_path: Path) -> None:
    log = tmp_path / "log.csv.gz"
    generate.write(str(log), customers=120, seed=23)
    done = subprocess.run(
        [sys.executable, str(REPO / "tests" / "drivers" / "catalog_job.py"), str(tmp_path), str(log)],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=tmp_path,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable},
    )
    printed = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    steps = {s["step"]: s for s in printed if "step" in s}
    assert list(steps) == ["first", "second_date", "rerun", "failed"], done.stderr[-4000:]
    assert [s["code"] for s in steps.values()] == [0, 0, 0, 1]

    first, second, rerun, failed = (steps[name]["tables"] for name in steps)
    assert [(r["as_of_date"], r["run_id"], r["chosen_k"]) for r in first["runs"]] == [("2011-12-09", "main", 3)]
    assert [(r["as_of_date"], r["chosen_k"]) for r in second["runs"]] == [("2011-11-30", 2), ("2011-12-09", 3)]
    assert [(r["as_of_date"], r["chosen_k"]) for r in rerun["runs"]] == [("2011-11-30", 2), ("2011-12-09", 4)]
    valued = False
    for state in (first, second, rerun):
        valued = valued or any(r["value_status"] == "fitted" for r in state["runs"])
        expected = sorted([*TABLES, *(VALUE_TABLES if valued else [])])
        assert state["tables"] == expected  # no staging or work table left behind (migration: rows with a baseline)
        for run in state["runs"]:
            day, customers = run["as_of_date"], run["customers"]
            assert state["rows_per_date"]["features"][day] == state["rows_per_date"]["segments"][day] == customers
            assert state["rows_per_date"]["profiles"][day] == run["chosen_k"]
            assert state["rows_per_date"]["report"][day] == 2  # the Markdown and the HTML
            names = [(n, c) for d, n, c in state["segment_counts"] if d == day]
            assert len(names) == run["chosen_k"] and sum(c for _, c in names) == customers
            assert [day, customers] in state["joined"]  # a reader joining on runs sees every row of the run
            assert Path(run["model_path"]).parent.name == f"attempt={run['attempt_id']}"
    for run in rerun["runs"]:  # the models the runs table names now (replaced attempts' folders are removed)
        assert (Path(run["model_path"]) / "metadata").is_dir()

    # the re-run replaced 2011-12-09 only: 2011-11-30 is exactly as it was
    def of_day(state: dict, day: str) -> tuple:
        run = next(r for r in state["runs"] if r["as_of_date"] == day)
        rows = {table: per[day] for table, per in state["rows_per_date"].items() if day in per}
        return run, [c for c in state["segment_counts"] if c[0] == day], rows

    assert of_day(rerun, "2011-11-30") == of_day(second, "2011-11-30")
    reran, before = of_day(rerun, "2011-12-09")[0], of_day(second, "2011-12-09")[0]
    assert reran["attempt_id"] != before["attempt_id"] and reran["customers"] == before["customers"]
    assert rerun["rows_per_date"]["sweep"]["2011-12-09"] == 1  # model.k=4: the re-run's sweep, not appended

    # segments over time through SQL: 2011-11-30 is earlier than the first run, so it had no baseline; the
    # re-run of 2011-12-09 compared with it, and every customer's previous_segment is its segment there
    assert first["followed"] == second["followed"] == [] and second["rows_per_date"]["migration"] == {}
    ((day, customers, consistent, baseline),) = rerun["followed"]
    assert (day, baseline, consistent) == ("2011-12-09", "2011-11-30", customers)
    earlier = of_day(rerun, "2011-11-30")[0]["customers"]
    assert customers <= rerun["migration_customers"]["2011-12-09"] <= customers + earlier  # everyone, once

    # the run that failed half-way through writing changed nothing
    assert failed == rerun

    # `segmentation runs --catalog seg`: the committed runs, oldest first, each with its k, customers and report
    (listed,) = [p for p in printed if "listed" in p]
    assert listed["code"] == 0
    assert [(r["as_of_date"], r["run_id"], r["kind"], r["chosen_k"], r["customers"]) for r in listed["listed"]] == [
        (r["as_of_date"], r["run_id"], "segmentation", r["chosen_k"], r["customers"]) for r in rerun["runs"]
    ]
    assert all(r["report"].endswith("'") and "`report` WHERE as_of_date" in r["report"] for r in listed["listed"])
    assert "stage write failed" in done.stderr and "injected" in done.stderr
