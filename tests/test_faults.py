"""Faults, in separate driver processes: a task that fails once (with and without task retries), a driver
killed while writing, and the run after it. Published runs must survive every one of them."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from segmentation.demo import generate
from segmentation.publish import files, storage

from .conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.extended]  # make test-extended, not make test
INJECT = REPO / "tests" / "faults" / "inject.py"
SETTINGS = ["--set", "model.k_min=2", "--set", "model.k_max=4", "--set", "model.seeds=2"]
TABLES = ("segments", "features", "profiles", "sweep", "quarantine")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*"))


def start(fault: str, log: Path, out: Path, master: str, *extra: str, env: dict[str, str] | None = None):
    """Start ``segmentation run`` in its own process group, with ``fault`` injected."""
    argv = [sys.executable, str(INJECT), fault, "run", "--input", str(log), "--output", str(out)]
    argv += [*SETTINGS, "--set", f"spark.master={master}", "--set", "spark.conf={spark.ui.enabled: 'false'}", *extra]
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )


def run(fault: str, log: Path, out: Path, master: str, *extra: str) -> subprocess.CompletedProcess:
    process = start(fault, log, out, master, *extra)
    stdout, stderr = process.communicate(timeout=600)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def published(spark: SparkSession, folder: Path) -> dict[str, object]:
    """What a run published that must not depend on how it got there: tables' rows, centroids, metrics."""
    manifest = json.loads((folder / "manifest.json").read_text())
    tables = {name: sorted(tuple(r) for r in spark.read.parquet(str(folder / name)).collect()) for name in TABLES}
    return {
        **tables,
        "centroids": manifest["centroids"],
        "sweep": manifest["sweep"],
        "chosen_k": manifest["chosen_k"],
        "segments_manifest": manifest["segments"],
        "counts": manifest["counts"],
    }


@pytest.fixture(scope="module")
def fault_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "log.csv.gz"
    generate.write(str(path), customers=300, seed=5)
    return path


def committed(out: Path, run_id: str) -> Path:
    """The committed attempt folder of as-of 2011-12-09 and ``run_id`` under ``out``."""
    run = out / "runs" / "as_of_date=2011-12-09" / f"run_id={run_id}"
    return Path(files.resolve_run(storage.for_root(None, str(run))))


def test_faults_never_damage_published_runs(spark: SparkSession, tmp_path: Path, fault_log: Path) -> None:
    out = tmp_path / "out"
    input_digest = sha256(fault_log)

    # 1. a clean run, in a driver process of its own
    clean = run("none", fault_log, out, "local[2,3]")
    assert clean.returncode == 0, clean.stderr[-3000:]
    main = out / "runs" / "as_of_date=2011-12-09" / "run_id=main"
    published_main = committed(out, "main")
    reference = published(spark, published_main)
    before = snapshot(main)
    latest = (out / "latest").read_text()

    # 2. a task fails on its first attempt; local[2,3] allows retries: success, same outputs
    retried = run("task-once", fault_log, out, "local[2,3]", "--run-id", "retried", "-v")  # Spark's log too
    assert retried.returncode == 0, retried.stderr[-3000:]
    assert "injected fault" in retried.stderr  # the failure happened and was retried
    assert published(spark, committed(out, "retried")) == reference

    # 3. the same fault without retries: a clear failure, nothing new published, the last run untouched
    failed = run("task-once", fault_log, out, "local[2]", "--run-id", "main")
    assert failed.returncode == 1
    assert "error: stage features failed" in failed.stderr
    assert "nothing was published and the runs already under" in failed.stderr
    assert snapshot(main) == before  # no attempt folder left beside the published one, no new commit
    assert not (out / "_work").exists()  # the failed run's work folder is gone too
    latest_now = (out / "latest").read_text()
    assert latest_now == "runs/as_of_date=2011-12-09/run_id=retried\n"  # moved by run 2, not by run 3

    # 4. the driver is killed (SIGKILL) half-way through writing the outputs
    marker = tmp_path / "writing"
    killed = start("hang-in-write", fault_log, out, "local[2]", "--run-id", "main", env={"FAULT_MARKER": str(marker)})
    deadline = time.monotonic() + 300
    while not marker.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert marker.exists(), killed.communicate()[1][-3000:]
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=60)
    stale = Path(marker.read_text())
    assert stale.parent == main and (stale / "segments").is_dir()  # partly written, in its own attempt folder
    assert [p for p in snapshot(main) if not p[0].startswith(stale.name)] == before  # never committed
    assert (out / "latest").read_text() == latest_now
    assert committed(out, "main") == published_main  # readers still get the published run, whole
    store = storage.for_root(None, str(out))
    assert files.read_manifest(store, files.resolve_run(store)).run_id == "retried"

    # 5. the next run removes the killed attempt and replaces run "main": same answer as run 1
    again = run("none", fault_log, out, "local[2]", "--run-id", "main")
    assert again.returncode == 0, again.stderr[-3000:]
    assert not stale.exists() and not published_main.exists()  # the killed attempt and the replaced one
    assert f"removing attempt folder {stale} left by a killed job" in again.stderr
    assert "removing work folder" in again.stderr and not (out / "_work").exists()  # the killed run's copy too
    assert sorted(p.name for p in main.iterdir()) == ["_commits", committed(out, "main").name]
    assert published(spark, committed(out, "main")) == reference  # determinism: same input, config and seed
    assert (out / "latest").read_text() == latest  # main again, as after run 1

    assert sha256(fault_log) == input_digest  # the input was never modified


def test_two_jobs_publishing_the_same_run_at_once(spark: SparkSession, tmp_path: Path, fault_log: Path) -> None:
    """Two driver processes write the same as-of date and run id, then commit at the same moment (each waits
    for the other to be ready): one wins whole, the other fails saying so and leaves nothing behind."""
    out, barrier = tmp_path / "out", tmp_path / "barrier"
    barrier.mkdir()
    jobs = {
        k: start("commit-together", fault_log, out, "local[1]", "--set", f"model.k={k}", env={"BARRIER": str(barrier)})
        for k in (2, 3)
    }
    finished = {k: job.communicate(timeout=600) for k, job in jobs.items()}
    codes = {k: job.returncode for k, job in jobs.items()}
    assert sorted(codes.values()) == [0, 1], {k: err[-3000:] for k, (_, err) in finished.items()}
    winner = next(k for k, code in codes.items() if code == 0)
    loser = 5 - winner
    error = finished[loser][1]
    assert "another job published as-of date 2011-12-09, run id main while this run was running" in error
    assert "this run was not published (its files are removed)" in error
    assert f"published      {out}/runs/as_of_date=2011-12-09/run_id=main/attempt=" in finished[winner][0]

    main = out / "runs" / "as_of_date=2011-12-09" / "run_id=main"
    assert sorted(p.name for p in (main / "_commits").iterdir()) == ["00000001.json"]
    folder = committed(out, "main")
    assert sorted(p.name for p in main.iterdir()) == ["_commits", folder.name]  # the loser's files are gone
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["chosen_k"] == winner and manifest["attempt_id"] == folder.name.removeprefix("attempt=")
    # every table is the winner's: never a mix of the two runs
    segments = {r["segment"] for r in spark.read.parquet(str(folder / "segments")).collect()}
    assert segments == set(range(1, winner + 1))
    assert spark.read.parquet(str(folder / "profiles")).count() == winner
    assert [r["k"] for r in spark.read.parquet(str(folder / "sweep")).collect()] == [winner]
    assert len(manifest["centroids"]) == winner
    assert (out / "latest").read_text() == "runs/as_of_date=2011-12-09/run_id=main\n"
