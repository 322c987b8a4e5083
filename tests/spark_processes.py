"""Real Spark processes for tests: a standalone master and workers, a Spark Connect server, spark-submit.

Everything is started from pyspark's own installation (``SPARK_HOME`` is the pyspark package folder), bound
to 127.0.0.1 on free ports, in its own process group so that stopping it stops its children too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyspark
import pytest

SPARK_HOME = Path(pyspark.__file__).parent
TABLES = ("segments", "features", "profiles", "sweep", "quarantine")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spark_env(python: str, logs: Path, **extra: str) -> dict[str, str]:
    """Environment for Spark's scripts: pyspark's SPARK_HOME, loopback only, the given Python for workers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
    env.pop("PYTHONPATH", None)
    return {
        **env,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(logs),
        "PYSPARK_PYTHON": python,
        "PYSPARK_DRIVER_PYTHON": python,
        **extra,
    }


@dataclass
class Processes:
    """Processes started for a test; ``stop`` kills each one's whole process group."""

    started: list[subprocess.Popen] = field(default_factory=list)

    def start(self, argv: Sequence[str], log: Path, env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen:
        handle = open(log, "w", encoding="utf-8")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            list(argv), stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
        self.started.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.started):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.started:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def wait_for(log: Path, text: str, process: subprocess.Popen, timeout: float = 120, count: int = 1) -> None:
    """Wait until ``text`` appears ``count`` times in ``log``; fail with the log's tail if it does not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text(errors="replace") if log.exists() else ""
        if content.count(text) >= count:
            return
        if process.poll() is not None:
            break
        time.sleep(0.5)
    tail = (log.read_text(errors="replace") if log.exists() else "")[-3000:]
    pytest.fail(f"{text!r} did not appear in {log.name} (exit code {process.poll()}):\n{tail}")


def runtime_python(folder: Path) -> str:
    """A Python with this environment's third-party packages but without ``segmentation`` importable.

    A venv whose one ``.pth`` line adds this interpreter's site-packages: packages there are importable, but the
    ``.pth`` files inside it (the editable install of this repository) are not run. What a cluster node has
    before the job's artefacts arrive.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "cluster_node_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return str(python)


def _significant(value: object) -> object:
    """Floats to 10 significant digits: sums over other partitionings differ in the last bits, nothing more."""
    return float(f"{value:.10g}") if isinstance(value, float) else value


def published(spark, folder: Path) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """What a run published that must not depend on where it ran: tables' rows, centroids, metrics, counts."""
    manifest = json.loads((folder / "manifest.json").read_text())
    tables = {
        name: sorted(tuple(map(_significant, r)) for r in spark.read.parquet(str(folder / name)).collect())
        for name in TABLES
    }
    return {
        **tables,
        "centroids": manifest["centroids"],
        "sweep": manifest["sweep"],
        "chosen_k": manifest["chosen_k"],
        "segments_manifest": manifest["segments"],
        "counts": manifest["counts"],
    }
