"""Incremental runs (issue 35): thirty planted daily deliveries absorbed one at a time give, after each, what a full
run over the same files gives; the jobs' incremental path end to end; absorbed files that change or vanish."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segmentation.demo import deliveries
from segmentation.errors import InputError
from segmentation.features.state import features_from_state
from segmentation.features.table import customer_features
from segmentation.input import increments, sources, validate
from segmentation.input.clean import clean_lines
from segmentation.input.quarantine import counts_at
from segmentation.jobs import incremental, score, segment
from segmentation.runtime.timing import today_in

from .conftest import REPO, job_config
from .incremental_steps import as_sorted, full_run, publish_state

DAYS = 30
INJECT = REPO / "tests" / "faults" / "inject.py"
WINDOW = 7


@pytest.fixture(scope="module", autouse=True)
def small_data_settings(spark: SparkSession) -> Iterator[None]:
    """Tiny deliveries: Spark's code generation and adaptive plans cost more than they save here."""
    settings = {"spark.sql.codegen.wholeStage": "false", "spark.sql.adaptive.enabled": "false"}
    before = {key: spark.conf.get(key) for key in settings}
    spark.conf.set("spark.sql.codegen.wholeStage", "false")
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    yield
    for key, value in before.items():
        spark.conf.set(key, value)


@pytest.fixture(scope="module")
def daily(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return deliveries.write_daily(tmp_path_factory.mktemp("daily") / "all", days=DAYS, customers=60, seed=11)


def absorb(spark: SparkSession, cfg, path: Path, state: dict[str, DataFrame] | None, folder: Path):
    """One delivery through the steps of ``incremental.read_increment`` (without a publisher): read, copy, label
    against the state's lines, the state after it (written as a run publishes it, and read back)."""
    raw = sources.read_raw(spark, cfg.input, files=[str(path)])
    copy_path = folder / f"{path.stem}-copy"
    validate.lines_for_copy(raw, cfg.input).write.parquet(str(copy_path))
    absorbed = state[incremental.STATE_LINES] if state else None
    new = validate.label_new_lines(
        spark.read.parquet(str(copy_path)), cfg, today=today_in("UTC"), keep=lambda f: f.cache(), absorbed_df=absorbed
    )
    files = increments.files_frame(spark, [], None)
    tables = incremental.merged(state, incremental.delta_tables(cfg, new, files, keep=lambda f: f.cache()))
    for name, frame in tables.items():
        frame.write.parquet(str(folder / f"{path.stem}-{name}"))
    return new, {name: spark.read.parquet(str(folder / f"{path.stem}-{name}")) for name in tables}


def test_thirty_daily_deliveries_give_a_full_runs_features_and_counts(
    spark: SparkSession, tmp_path: Path, daily: list[Path]
) -> None:
    """After each delivery (same-day duplicates, returns, an overlap with the previous file, late lines, dirty
    lines): every feature of every customer and the counts by reason equal a full run's over the same files, at
    the same as-of date; with a window too."""
    cfg = job_config(tmp_path, str(daily[0].parent), "input.incremental=true")
    windowed = cfg.model_copy(update={"features": cfg.features.model_copy(update={"window_days": WINDOW})})
    state, copies, late_days, as_of = None, 0, [], None
    for day, path in enumerate(daily):
        new, state = absorb(spark, cfg, path, state, tmp_path)
        copies += new.copies
        if as_of is not None:  # valid new lines dated up to the last as-of date: the planted late lines only
            dated = F.to_date(new.lines["_ts"])
            if new.lines.filter(F.col("reason").isNull() & (dated <= F.lit(as_of))).count():
                late_days.append(day)
        rows, as_of, counts = incremental.view_at(cfg, state[incremental.STATE_COUNTS], today=today_in("UTC"))
        expected, full_counts, full_as_of = full_run(spark, cfg, tmp_path, [str(p) for p in daily[: day + 1]])
        assert (as_of, counts) == (full_as_of, full_counts)  # lines in, clean, by reason, out of window: exact
        got = as_sorted(features_from_state(state[incremental.STATE_DAYS], as_of))
        pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=0, atol=1e-9)
        if day % 5 == 4:  # a window: the same state answers it
            expected_w, counts_w, _ = full_run(spark, windowed, tmp_path, [str(p) for p in daily[: day + 1]])
            assert counts_at(rows, as_of, WINDOW) == counts_w
            assert counts_w.out_of_window > 0 or day < WINDOW
            got_w = as_sorted(features_from_state(state[incremental.STATE_DAYS], as_of, window_days=WINDOW))
            pd.testing.assert_frame_equal(got_w, expected_w, check_exact=False, rtol=0, atol=1e-9)
    assert late_days == [d for d in range(DAYS) if d % 5 == 4]  # the planted late lines, and nothing else
    assert copies >= 2 * DAYS  # the planted copies were there
    assert counts.quarantined["duplicate_line"] >= 3 * DAYS
    assert {"missing_customer_id", "invalid_number", "malformed_row", "invalid_timestamp"} <= set(counts.quarantined)


def test_exact_copies_kept_count_once_as_in_a_full_run(spark: SparkSession, tmp_path: Path, daily: list[Path]) -> None:
    """``input.exact_copies: keep``: copies stay purchases and are counted once each, within a delivery and across
    deliveries (each delivery repeats lines of the one before and some of its own), as a full run counts them."""
    cfg = job_config(tmp_path, str(daily[0].parent), "input.incremental=true", "input.exact_copies=keep")
    state, copies = None, 0
    for day, path in enumerate(daily[:3]):
        new, state = absorb(spark, cfg, path, state, tmp_path)
        copies += new.copies
        _, as_of, counts = incremental.view_at(cfg, state[incremental.STATE_COUNTS], today=today_in("UTC"))
        validated_copies, expected, full_counts = full_copies(spark, cfg, tmp_path, daily[: day + 1])
        assert copies == validated_copies > 0
        assert counts == full_counts and "duplicate_line" not in counts.quarantined
        got = as_sorted(features_from_state(state[incremental.STATE_DAYS], as_of))
        pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=0, atol=1e-9)


def full_copies(spark: SparkSession, cfg, folder: Path, paths: list[Path]):
    """A full run's exact copies, features and counts over ``paths``."""
    raw = sources.read_raw(spark, cfg.input, files=[str(p) for p in paths])
    copy_path = folder / f"keep-copy-{len(paths)}"
    validate.lines_for_copy(raw, cfg.input).write.parquet(str(copy_path))
    validated = validate.validate(spark.read.parquet(str(copy_path)), cfg, today=today_in("UTC"), keep=lambda f: f)
    features = as_sorted(customer_features(clean_lines(validated.lines, cfg.input), validated.as_of))
    return validated.exact_copies, features, validated.counts


def test_an_absorbed_file_that_changed_or_vanished_is_refused(
    spark: SparkSession, tmp_path: Path, daily: list[Path]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for path in daily[:2]:
        shutil.copy(path, folder / path.name)
    cfg = job_config(tmp_path, str(folder), "input.incremental=true")
    publish_state(spark, cfg)
    changed = folder / daily[1].name
    changed.write_text(changed.read_text() + daily[2].read_text().split("\n", 1)[1])
    with pytest.raises(InputError, match=rf"input.path: file:{changed} has changed since the state of the run of "):
        publish_state(spark, cfg)
    changed.unlink()
    with pytest.raises(InputError, match=rf"input.path: file:{changed} was absorbed .* and is no longer there"):
        publish_state(spark, cfg)
    rebuild = cfg.model_copy(update={"input": cfg.input.model_copy(update={"rebuild_state": True})})
    rebuilt = publish_state(spark, rebuild).increment
    assert (rebuilt.section.mode, rebuilt.section.files_in_state, rebuilt.section.base) == ("rebuild", 1, None)


def table_rows(spark: SparkSession, folder: str, name: str, columns: list[str]) -> list[tuple]:
    return sorted(tuple(r) for r in spark.read.parquet(f"{folder}/{name}").select(*columns).collect())


def run_manifest(folder: str) -> dict:
    return json.loads((Path(folder) / "manifest.json").read_text())


def test_incremental_jobs_end_to_end(spark: SparkSession, tmp_path: Path, daily: list[Path]) -> None:
    """The weekly retrain and the nightly score, incrementally: each nightly score over a growing folder gives
    the segments, features, values and counts of a full score of the same files; its quarantine holds its own
    new lines; a night without new files reads none; the next retrain adds to its own state."""
    folder = tmp_path / "in"
    folder.mkdir()
    for path in daily[:10]:
        shutil.copy(path, folder / path.name)
    fixed = ("model.k=3", "model.seeds=2")
    train = job_config(tmp_path, str(folder), *fixed, "input.incremental=true", output=str(tmp_path / "m"))
    trained = segment.run(spark, train)
    assert trained.incremental is not None and trained.incremental.mode == "first"
    nightly = job_config(tmp_path, str(folder), "input.incremental=true", output=str(tmp_path / "scored"))
    full = job_config(tmp_path, str(folder), output=str(tmp_path / "full"))
    reads = []
    for new_files in (daily[10:12], daily[12:15], []):
        for path in new_files:
            shutil.copy(path, folder / path.name)
        inc = score.score(spark, nightly, trained.output_root)
        if new_files:  # a night without new files: the last full score still holds
            ref = score.score(spark, full, trained.output_root)
        assert (inc.as_of, inc.counts, inc.segment_sizes) == (ref.as_of, ref.counts, ref.segment_sizes)
        columns = ["customer_id", "segment", "segment_name"]
        assert table_rows(spark, inc.run_folder, "segments", columns) == table_rows(
            spark, ref.run_folder, "segments", columns
        )
        got = as_sorted(spark.read.parquet(f"{inc.run_folder}/features"))
        want = as_sorted(spark.read.parquet(f"{ref.run_folder}/features"))
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=0, atol=1e-9)
        if Path(ref.run_folder, "customer_value").exists():
            value_columns = ["customer_id", "p_alive", "expected_purchases", "clv"]
            got_v = spark.read.parquet(f"{inc.run_folder}/customer_value").select(*value_columns).toPandas()
            want_v = spark.read.parquet(f"{ref.run_folder}/customer_value").select(*value_columns).toPandas()
            pd.testing.assert_frame_equal(
                got_v.sort_values("customer_id", ignore_index=True),
                want_v.sort_values("customer_id", ignore_index=True),
                check_exact=False,
                rtol=1e-9,
                atol=1e-9,
            )
        section = inc.incremental
        assert section is not None
        parts = list(Path(inc.run_folder, "quarantine").rglob("*.parquet"))  # none when no line was quarantined
        quarantined = spark.read.parquet(*map(str, parts)).count() if parts else 0
        assert quarantined == sum(section.new_quarantined.values())  # its own new lines, not the state's
        manifest = run_manifest(inc.run_folder)
        assert manifest["incremental"]["lines_read"] == section.lines_read
        assert manifest["incremental"]["lines_in_state"] == ref.counts.lines_in
        reads.append((section.mode, section.files_read, section.lines_read))
    assert [(mode, files) for mode, files, _ in reads] == [("first", 12), ("incremental", 3), ("incremental", 0)]
    assert reads[2][2] == 0 and reads[1][2] == sum(len(deliveries_lines(p)) for p in daily[12:15])

    retrain = segment.run(spark, train)
    assert retrain.incremental is not None
    assert (retrain.incremental.mode, retrain.incremental.files_read) == ("incremental", 5)
    report = (Path(retrain.run_folder) / "report.md").read_text()
    assert f"New lines read: {retrain.incremental.lines_read} from 5 new files" in report  # what was new
    assert f"The state holds {ref.counts.lines_in} lines of 15 files" in report
    got = as_sorted(spark.read.parquet(f"{retrain.run_folder}/features").drop("segment", "segment_name"))
    want = want.drop(columns=["segment", "segment_name"])
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=0, atol=1e-9)


def deliveries_lines(path: Path) -> list[str]:
    """The data lines of a delivery file (no header)."""
    return path.read_text().splitlines()[1:]


def start_score(fault: str, folder: Path, model: str, out: Path, env: dict[str, str]) -> subprocess.Popen:
    """``segmentation score --incremental`` in a driver process (and process group) of its own, ``fault`` injected
    (``tests/faults/inject.py``)."""
    argv = [sys.executable, str(INJECT), fault, "score", "--model", model, "--input", str(folder)]
    argv += ["--output", str(out), "--incremental", "--set", "spark.master=local[1]"]
    argv += ["--set", "spark.conf={spark.ui.enabled: 'false', spark.sql.shuffle.partitions: '2'}"]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    return subprocess.Popen(argv, **pipes, text=True, start_new_session=True, env={**os.environ, **env})


def committed_runs(out: Path) -> list[tuple[str, list[str]]]:
    """Each run folder under ``out`` with its commit files."""
    return sorted(
        (str(run.relative_to(out)), sorted(p.name for p in (run / "_commits").iterdir()))
        for run in out.glob("runs/*/*")
        if (run / "_commits").is_dir()  # a killed run's folder holds its attempt, never a commit
    )


@pytest.mark.extended  # three driver processes of their own, as the fault tests (make test-extended)
def test_a_killed_or_concurrent_incremental_run_leaves_the_state_whole(
    spark: SparkSession, tmp_path: Path, daily: list[Path]
) -> None:
    """A nightly score killed (SIGKILL) while it writes leaves the previous runs and state as they were, and the
    next night adds to that state; two nightly scores at once: one publishes its state, the other fails saying so."""
    folder, out = tmp_path / "in", tmp_path / "scored"
    folder.mkdir()
    for path in daily[:6]:
        shutil.copy(path, folder / path.name)
    trained = segment.run(spark, job_config(tmp_path, str(folder), "model.k=3", "model.seeds=1"))
    nightly = job_config(tmp_path, str(folder), "input.incremental=true", output=str(out))
    first = score.score(spark, nightly, trained.output_root)
    before = committed_runs(out)

    shutil.copy(daily[6], folder / daily[6].name)
    marker = tmp_path / "writing"
    killed = start_score("hang-in-write", folder, trained.output_root, out, {"FAULT_MARKER": str(marker)})
    deadline = time.monotonic() + 300
    while not marker.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert marker.exists(), killed.communicate()[1][-3000:]
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=60)
    assert committed_runs(out) == before  # the killed run's attempt was never committed
    after_kill = score.score(spark, nightly, trained.output_root)
    assert after_kill.incremental is not None and after_kill.incremental.base is not None
    assert after_kill.incremental.base.as_of_date == first.as_of.isoformat()  # built on the last committed state
    assert after_kill.incremental.files_read == 1
    assert after_kill.incremental.lines_in_state == first.incremental.lines_in_state + after_kill.incremental.lines_read

    shutil.copy(daily[7], folder / daily[7].name)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    jobs = [start_score("commit-together", folder, trained.output_root, out, {"BARRIER": str(barrier)}) for _ in "ab"]
    finished = [job.communicate(timeout=600) for job in jobs]
    codes = sorted(job.returncode for job in jobs)
    assert codes == [0, 1], [err[-3000:] for _, err in finished]
    loser = next(err for job, (_, err) in zip(jobs, finished, strict=True) if job.returncode == 1)
    assert "another job published as-of date 2024-03-08, run id main while this run was running" in loser
    state = score.score(spark, nightly, trained.output_root)  # the next night: nothing new, the winner's state
    assert state.incremental is not None and state.incremental.lines_read == 0
    assert state.incremental.files_in_state == 8
    assert state.counts.lines_in == state.incremental.lines_in_state
