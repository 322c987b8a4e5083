"""Planted moves recovered: the two-period generated log (``generate.generate_periods``) run at its two as-of
dates with a 182-day window; the migration table, read through each segment's majority behaviour, must give
the planted moves, ids must stay with their behaviours, and period 2's new behaviour must get a new id.

Tolerance: every planted group's count is recovered within 10% of it or 5 customers, whichever is more. Customers are
assigned by KMeans, and a customer at the edge of its behaviour (few orders drawn, or its last order drawn
early) can land in the neighbouring segment; the generator's own check found an adjusted Rand index of 0.99
per period, i.e. about 1% of customers assigned elsewhere, and dirty lines (blank ids, bad dates) can remove a
customer's only line in a period.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from segmentation.demo import generate
from segmentation.history import migration
from segmentation.jobs import segment as segment_job

from .conftest import job_config

pytestmark = pytest.mark.slow
CUSTOMERS = 1000


@pytest.fixture(scope="module")
def two_periods(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("two_periods")
    log, truth_path = tmp / "two_periods.csv.gz", tmp / "truth.csv"
    generate.write_periods(str(log), customers=CUSTOMERS, seed=7, truth_path=str(truth_path))
    truth = pd.read_csv(truth_path, dtype=str, keep_default_na=False)
    found: dict[str, Any] = {"truth": truth}
    for name, as_of, k in (("first", generate.AS_OF_1, 4), ("second", generate.AS_OF_2, 5)):
        cfg = job_config(
            tmp, str(log), f"features.as_of={as_of.isoformat()}", f"features.window_days={generate.PERIOD_DAYS}",
            f"model.k={k}", "model.seeds=1",
        )  # fmt: skip
        found[name] = segment_job.run(spark, cfg)
        found[f"{name}_segments"] = spark.read.parquet(str(Path(found[name].run_folder) / "segments")).toPandas()
    found["migration"] = spark.read.parquet(str(Path(found["second"].run_folder) / migration.MIGRATION)).toPandas()
    found["manifest"] = json.loads((Path(found["second"].run_folder) / "manifest.json").read_text())
    return found


def behaviour_of_segments(segments: pd.DataFrame, truth: pd.DataFrame, period: int) -> dict[int, str]:
    """Segment id -> the behaviour most of its customers have in that period."""
    joined = segments.merge(truth, left_on="customer_id", right_on="CustomerID")
    return {
        int(segment): Counter(group[f"persona_{period}"]).most_common(1)[0][0]
        for segment, group in joined.groupby("segment")
    }


def test_ids_stay_with_their_behaviours_and_the_new_behaviour_gets_a_new_id(two_periods: dict[str, Any]) -> None:
    truth = two_periods["truth"]
    before = behaviour_of_segments(two_periods["first_segments"], truth, 1)
    after = behaviour_of_segments(two_periods["second_segments"], truth, 2)
    assert sorted(before.values()) == ["at_risk", "champions", "regulars", "starters"]  # one segment each
    assert sorted(after.values()) == ["at_risk", "big_spenders", "champions", "regulars", "starters"]
    for segment, behaviour in before.items():
        assert after[segment] == behaviour  # the same id for the same behaviour after the retrain
    (new,) = two_periods["manifest"]["history"]["new"]
    assert after[new["segment"]] == "big_spenders" and new["segment"] == max(before) + 1
    assert two_periods["second"].segment_names[new["segment"]] not in two_periods["first"].segment_names.values()


def recovered_moves(two_periods: dict[str, Any]) -> pd.DataFrame:
    """The migration table's customers per (behaviour before, behaviour after), through majority behaviours."""
    truth = two_periods["truth"]
    before = behaviour_of_segments(two_periods["first_segments"], truth, 1)
    after = behaviour_of_segments(two_periods["second_segments"], truth, 2)
    migration = two_periods["migration"]
    moves = pd.DataFrame(
        {
            "persona_1": [before[int(s)] if pd.notna(s) else "new" for s in migration["from_segment"]],
            "persona_2": [after[int(s)] if pd.notna(s) else "inactive" for s in migration["to_segment"]],
            "customers": migration["customers"],
        }
    )
    return moves.groupby(["persona_1", "persona_2"], as_index=False)["customers"].sum()


def test_the_migration_recovers_the_planted_moves(two_periods: dict[str, Any]) -> None:
    planted = generate.planted_moves(two_periods["truth"]).set_index(["persona_1", "persona_2"])["customers"]
    recovered = recovered_moves(two_periods).set_index(["persona_1", "persona_2"])["customers"]
    table = pd.concat({"planted": planted, "recovered": recovered}, axis=1).fillna(0).astype(int)
    print(table.to_string())  # the planted-versus-recovered table (pytest -s shows it)
    tolerance = (0.1 * table["planted"]).clip(lower=5)
    off = table[(table["planted"] - table["recovered"]).abs() > tolerance]
    assert off.empty, f"moves beyond 10% or 5 customers of the planted counts:\n{off}"
    # every customer of either period is in exactly one row of the migration
    assert table["recovered"].sum() == len(two_periods["truth"])


def test_the_report_shows_the_transitions_in_words(two_periods: dict[str, Any]) -> None:
    report = (Path(two_periods["second"].run_folder) / "report.md").read_text()
    assert f"Compared with the run of {generate.AS_OF_1.isoformat()}" in report
    assert "became inactive (no purchase in this run)" in report
    assert "customers new since the baseline joined" in report
    assert (Path(two_periods["second"].run_folder) / "report" / "transitions.png").is_file()
