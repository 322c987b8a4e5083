"""The checks before publishing, on whole runs in local mode: a baseline run, then the same input again, a day
delivered twice (held by ``drift.action: hold``, then promoted from the command line), and a retrain with one
more segment. Each is measured against the baseline, named in the report and published (or held) as it should."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from segmentation import cli
from segmentation.demo import generate
from segmentation.history import baseline as baselines
from segmentation.history import listing
from segmentation.jobs import score, segment
from segmentation.publish import files, for_root, publisher_for

from .conftest import job_config

pytestmark = pytest.mark.slow

DAY = dt.date(2011, 12, 8)  # the baseline's as-of date
NEXT = DAY + dt.timedelta(days=1)
SETTINGS = ("model.k=3", "value.enabled=false", "drift.action=hold")


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    lines, _ = generate.generate(customers=300, seed=11, dirty=False)
    return lines


def days_of(lines: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(lines["InvoiceDate"], format="%m/%d/%Y %H:%M").dt.date


@pytest.fixture(scope="module")
def baseline(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory, log: pd.DataFrame) -> Path:
    """A folder with ``upto.csv`` (the lines up to DAY), ``next.csv`` (NEXT's lines) and ``out``: the baseline run."""
    folder = tmp_path_factory.mktemp("drift")
    days = days_of(log)
    log[days <= DAY].to_csv(folder / "upto.csv", index=False)
    log[days == NEXT].to_csv(folder / "next.csv", index=False)
    cfg = job_config(folder, str(folder / "upto.csv"), *SETTINGS, f"features.as_of={DAY}", output=str(folder / "out"))
    result = segment.run(spark, cfg)
    assert result.drift is not None and result.drift.status == "no baseline"
    return folder


def root_from(baseline: Path, tmp_path: Path) -> Path:
    """A copy of the baseline's output root for one scenario."""
    root = tmp_path / "out"
    shutil.copytree(baseline / "out", root)
    return root


def latest(root: Path) -> str:
    return (root / "latest").read_text().strip()


def test_the_same_input_again_is_within_every_threshold(spark: SparkSession, baseline: Path, tmp_path: Path) -> None:
    root = root_from(baseline, tmp_path)
    cfg = job_config(tmp_path, str(baseline / "upto.csv"), *SETTINGS, f"features.as_of={NEXT}", output=str(root))
    result = segment.run(spark, cfg)
    drift = result.drift
    assert drift is not None and drift.status == "ok" and not result.held
    assert drift.baseline is not None and drift.baseline.as_of_date == DAY.isoformat()
    assert [m for m in drift.measures if m.status != "ok"] == []
    measured = {m.measure for m in drift.measures}
    assert measured == {
        *("feature_psi", "feature_js", "feature_mean_shift", "feature_median_shift"),
        *("segment_psi", "centroid_shift", "adjusted_rand", "customers", "lines_change"),
    }  # nothing quarantined in either run: no reason's share to compare
    by_key = {(m.measure, m.subject): m for m in drift.measures}
    for feature in ("frequency", "monetary", "avg_order_value"):  # one more day changes no purchase
        assert by_key[("feature_psi", feature)].value == 0.0
        assert by_key[("feature_mean_shift", feature)].value == 0.0
    assert by_key[("customers", "all")].value == 0.0 and by_key[("lines_change", "all lines")].value == 0.0
    assert by_key[("adjusted_rand", "customers in both runs")].value > 0.9  # a day older: a few move
    assert latest(root) == f"runs/as_of_date={NEXT}/run_id=main"  # within the thresholds: current, though hold is set

    run = Path(result.run_folder)
    table = spark.read.parquet(str(run / "drift"))
    assert table.count() == len(drift.measures)
    assert {r["status"] for r in table.collect()} == {"ok"}
    report = (run / "report.md").read_text()
    assert "## What changed" in report and "Every measure against the run of 2011-12-08" in report


def test_a_day_delivered_twice_is_held_and_promoted(spark: SparkSession, baseline: Path, tmp_path: Path) -> None:
    root = root_from(baseline, tmp_path)
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(baseline / "upto.csv", inputs / "a_upto.csv")
    shutil.copy(baseline / "next.csv", inputs / "b_next.csv")
    shutil.copy(baseline / "next.csv", inputs / "c_next_again.csv")  # the day's export delivered a second time
    header = (baseline / "next.csv").read_text().splitlines()[0]
    customer = (baseline / "next.csv").read_text().splitlines()[1].split(",")[6]
    typo = f"999999,20001,PRODUCT 001 GIFT ITEM,10000,12/9/2011 10:00,5000.0,{customer},United Kingdom"
    (inputs / "d_typo.csv").write_text(f"{header}\n{typo}\n")  # a value millions of times the median line
    argv = ["run", "--input", str(inputs), "--output", str(root), "--as-of", NEXT.isoformat()]
    argv += [part for setting in SETTINGS for part in ("--set", setting)]
    assert cli.main(argv) == cli.EXIT_HELD

    assert latest(root) == f"runs/as_of_date={DAY}/run_id=main"  # held: latest stays at the baseline
    store = for_root(None, str(root))
    manifest = files.read_manifest(store, files.resolve_run(store, NEXT, "main"))
    assert manifest.held and manifest.drift is not None and manifest.drift.status == "held"
    worst = manifest.drift.measures[0]
    assert (worst.measure, worst.subject, worst.status) == ("quarantine_share_change", "duplicate_line", "warn")
    day = len((baseline / "next.csv").read_text().splitlines()) - 1
    assert worst.value == pytest.approx(day / (2 * day + 1), abs=1e-6)  # the copies among the day's lines
    assert files.resolve_run(store) == files.resolve_run(store, DAY, "main")  # readers of the latest run
    report = Path(files.resolve_run(store, NEXT, "main"), "report.md").read_text()
    assert f"The share of lines quarantined as duplicate_line rose by {day / (2 * day + 1):.1%} points" in report
    assert "The run is held (drift.action: hold)" in report
    assert "Extreme values: 1 clean lines have a value over 1,000 times the log's median" in report
    assert [(r.as_of_date, r.drift) for r in listing.file_runs(store)] == [
        (DAY.isoformat(), "no baseline"),
        (NEXT.isoformat(), "held"),
    ]

    later = job_config(tmp_path, str(inputs), *SETTINGS, output=str(root))
    publisher = publisher_for(spark, later)
    found = baselines.find_baseline(publisher, later, as_of=NEXT + dt.timedelta(days=1))
    assert found is not None and found.as_of == DAY  # the next run is compared with the last run not held
    (root / "latest").unlink()
    assert files.resolve_run(store) == files.resolve_run(store, DAY, "main")  # without latest: the newest not held

    assert cli.main(["promote", NEXT.isoformat(), "main", "--output", str(root)]) == cli.EXIT_OK
    assert latest(root) == f"runs/as_of_date={NEXT}/run_id=main"
    assert [r.drift for r in listing.file_runs(store)] == ["no baseline", "promoted"]
    promoted = files.read_manifest(store, files.resolve_run(store, NEXT, "main"))
    assert not promoted.held and promoted.drift is not None and promoted.drift.promoted_utc
    assert cli.main(["promote", NEXT.isoformat(), "main", "--output", str(root)]) == cli.EXIT_FAILED  # not held now
    found = baselines.find_baseline(publisher, later, as_of=NEXT + dt.timedelta(days=1))
    assert found is not None and found.as_of == NEXT  # promoted: the next run's baseline

    # a held re-run of the current run: latest goes back to the newest run not held
    staging = files.begin(store, NEXT, "main")
    files.publish(staging, manifest)  # the held manifest of before
    assert latest(root) == f"runs/as_of_date={DAY}/run_id=main"
    assert files.resolve_run(store) == files.resolve_run(store, DAY, "main")


def test_a_retrain_with_one_more_segment_is_named(spark: SparkSession, baseline: Path, tmp_path: Path) -> None:
    root = root_from(baseline, tmp_path)
    settings = ("model.k=4", "value.enabled=false", "drift.action=warn", f"features.as_of={NEXT}")
    cfg = job_config(tmp_path, str(baseline / "upto.csv"), *settings, output=str(root))
    result = segment.run(spark, cfg)
    drift = result.drift
    assert drift is not None and drift.status == "warn" and not result.held
    beyond = {(m.measure, m.subject.split(" ")[0]) for m in drift.beyond}
    assert ("segment_psi", "all") in beyond
    new = json.loads((Path(result.run_folder) / "manifest.json").read_text())["history"]["new"]
    assert len(new) == 1  # the fourth segment is a behaviour the baseline did not have
    features_only = {m.measure for m in drift.beyond} & {"feature_psi", "feature_js", "feature_mean_shift"}
    assert not features_only  # the customers did not change: the model did
    assert latest(root) == f"runs/as_of_date={NEXT}/run_id=main"  # warn publishes as current
    report = (Path(result.run_folder) / "report.md").read_text()
    assert "The segments' sizes changed more than chance" in report


def test_a_scoring_run_is_measured_against_the_scoring_run_before(
    spark: SparkSession, baseline: Path, tmp_path: Path
) -> None:
    model = str(baseline / "out")
    scored = []
    for as_of in (DAY, NEXT):
        cfg = job_config(tmp_path, str(baseline / "upto.csv"), "value.enabled=false", f"features.as_of={as_of}")
        scored.append(score.score(spark, cfg, model))
    first, second = (result.drift for result in scored)
    assert first is not None and first.status == "no baseline"
    assert second is not None and second.status == "ok" and second.baseline is not None
    assert second.baseline.as_of_date == DAY.isoformat()
    by_key = {(m.measure, m.subject): m for m in second.measures}
    assert by_key[("feature_psi", "monetary")].value == 0.0
    assert by_key[("adjusted_rand", "customers in both runs")].value > 0.9  # the same model, a day older
    assert {m.measure for m in second.measures} >= {"segment_psi", "centroid_shift", "lines_change"}
    assert spark.read.parquet(str(Path(scored[1].run_folder) / "drift")).count() == len(second.measures)
