"""Real Spark processes for tests: a standalone master and workers, a Spark Connect server, spark-submit.

Everything is started from pyspark's own installation (``SPARK_HOME`` is the pyspark package folder), bound
to 127.0.0.1 on free ports, in its own process group so that stopping it stops its children too. A Connect
server can be given a folder of its own: a private tmpfs over it, in its own mount namespace, so that what
the server writes there the test process cannot see, and the other way round (a remote cluster's disk).
"""

from __future__ import annotations

import json
import os
import shutil
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
CONNECT_SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
CONNECT_STARTED = "Spark Connect server started"
# run inside the new mount namespace: a tmpfs over the folder ($1), work there, then become the server ("$@")
PRIVATE_TMPFS = 'mount -t tmpfs tmpfs "$1" && cd "$1" && shift && exec "$@"'
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


def connect_server_argv(port: int, *conf: str, name: str = "segmentation-connect-test") -> list[str]:
    """spark-submit of pyspark's Connect server: local[2], gRPC on 127.0.0.1:``port``; ``conf`` as ``key=value``."""
    argv = [str(SPARK_HOME / "bin" / "spark-submit"), "--class", CONNECT_SERVER_CLASS]
    argv += ["--name", name, "--master", "local[2]", "--driver-memory", "2g"]
    settings = [
        "spark.connect.grpc.binding.address=127.0.0.1",
        f"spark.connect.grpc.binding.port={port}",
        "spark.ui.enabled=false",
        "spark.sql.shuffle.partitions=4",
        *conf,
    ]
    for setting in settings:
        argv += ["--conf", setting]
    return argv


def mount_namespace(probe: Path) -> list[str]:
    """The ``unshare`` prefix that runs a command in a mount namespace of its own where it may mount a tmpfs.

    ``unshare -m`` as root, else ``unshare -rm`` (a user namespace too, where an unprivileged user is root).
    Tried on ``probe`` (a folder; what it holds is left as it is) first; ``OSError`` saying why if neither works.
    """
    if shutil.which("unshare") is None:
        raise OSError("unshare (util-linux) is not installed")
    prefixes = [["unshare", "-m"], ["unshare", "-rm"]] if os.geteuid() == 0 else [["unshare", "-rm"]]
    failures = []
    for prefix in prefixes:
        argv = [*prefix, "--propagation", "private", "sh", "-c", PRIVATE_TMPFS, "sh", str(probe), "true"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if done.returncode == 0:
            return [*prefix, "--propagation", "private"]
        failures.append(f"{' '.join(prefix)}: {done.stderr.strip() or f'exit code {done.returncode}'}")
    raise OSError("cannot mount a tmpfs in a mount namespace of its own: " + "; ".join(failures))


def with_private_folder(folder: Path, argv: Sequence[str], unshare: Sequence[str]) -> list[str]:
    """``argv`` run in its own mount namespace with a fresh tmpfs over ``folder`` (its working directory).

    ``unshare`` and ``sh`` exec the command, so its process is the one started (same pid and process group:
    ``Processes.stop`` stops it). The tmpfs goes away with the namespace's last process.
    """
    return [*unshare, "sh", "-c", PRIVATE_TMPFS, "sh", str(folder), *argv]


def start_connect_server(
    processes: Processes,
    logs: Path,
    *conf: str,
    private: Path | None = None,
) -> tuple[str, subprocess.Popen]:
    """A Connect server started by ``processes`` (its log in ``logs``), once it listens; its URL and process.

    With ``private``, the server runs in its own mount namespace with a tmpfs over that folder (see
    ``with_private_folder``): its files there are its own. ``OSError`` if this machine cannot do that.
    """
    port = free_port()
    argv = connect_server_argv(port, *conf)
    if private is not None:
        private.mkdir(parents=True, exist_ok=True)
        argv = with_private_folder(private, argv, mount_namespace(private))
    log = logs / "server.log"
    server = processes.start(argv, log, spark_env(sys.executable, logs, SPARK_CONNECT_MODE="0"))
    wait_for(log, CONNECT_STARTED, server, timeout=180)
    return f"sc://127.0.0.1:{port}", server
