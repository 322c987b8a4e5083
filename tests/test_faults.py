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

from segmentation import generate, outputs

from .conftest import REPO

pytestmark = pytest.mark.slow
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


def test_faults_never_damage_published_runs(spark: SparkSession, tmp_path: Path, fault_log: Path) -> None:
    out = tmp_path / "out"
    input_digest = sha256(fault_log)

    # 1. a clean run, in a driver process of its own
    clean = run("none", fault_log, out, "local[2,3]")
    assert clean.returncode == 0, clean.stderr[-3000:]
    main = out / "runs" / "as_of_date=2011-12-09" / "run_id=main"
    reference = published(spark, main)
    before = snapshot(main)
    latest = (out / "latest").read_text()

    # 2. a task fails on its first attempt; local[2,3] allows retries: success, same outputs
    retried = run("task-once", fault_log, out, "local[2,3]", "--run-id", "retried")
    assert retried.returncode == 0, retried.stderr[-3000:]
    assert "injected fault" in retried.stderr  # the failure happened and was retried
    assert published(spark, out / "runs" / "as_of_date=2011-12-09" / "run_id=retried") == reference

    # 3. the same fault without retries: a clear failure, nothing new published, the last run untouched
    failed = run("task-once", fault_log, out, "local[2]", "--run-id", "main")
    assert failed.returncode == 1
    assert "error: stage features failed" in failed.stderr
    assert "nothing was published and the runs already under" in failed.stderr
    assert snapshot(main) == before
    assert outputs.read_manifest(str(main))["run_id"] == "main"
    assert list((out / "_staging").iterdir()) == []  # the failed attempt removed its staging folder
    assert not (out / "_work").exists()  # ... and its work folder
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
    assert stale.parent == out / "_staging" and (stale / "segments").is_dir()  # partly written, in staging only
    assert snapshot(main) == before
    assert (out / "latest").read_text() == latest_now
    assert outputs.resolve_run(str(out), None, "main") == str(main)
    assert outputs.read_manifest(outputs.resolve_run(str(out)))["run_id"] == "retried"

    # 5. the next run cleans up the stale staging folder and replaces run "main": same answer as run 1
    again = run("none", fault_log, out, "local[2]", "--run-id", "main")
    assert again.returncode == 0, again.stderr[-3000:]
    assert not stale.exists() and list((out / "_staging").iterdir()) == []
    assert "removing stale staging folder" in again.stderr
    assert "removing work folder" in again.stderr and not (out / "_work").exists()  # the killed run's copy too
    assert published(spark, main) == reference  # determinism: same input, config and seed, another process
    assert (out / "latest").read_text() == latest  # main again, as after run 1

    assert sha256(fault_log) == input_digest  # the input was never modified
