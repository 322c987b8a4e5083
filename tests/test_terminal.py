"""What a failed run leaves on the terminal: the job's own lines, with Spark's warnings and their stack traces
in a log file (``session.terminal_logging``, ``log4j2.properties``), and on the terminal only when asked."""

from __future__ import annotations

import getpass
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from segmentation.demo import generate
from segmentation.runtime import session

JAVA_FRAME = re.compile(r"^\s+at (org|java)\.", re.MULTILINE)
# a line of log4j2.properties' console pattern: "26/12/07 10:15:39 WARN TaskSetManager: Lost task ..."
LOG4J_CONSOLE_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (WARN|ERROR) \w+: ", re.MULTILINE)
TIMEOUT_S = 300


@dataclass(frozen=True)
class Run:
    """One finished command line: its exit code, its stderr, the Spark log it was given."""

    code: int
    stderr: str
    spark_log: Path


def truncated_log(folder: Path) -> Path:
    """A demo log cut to half its bytes: gzip that ends mid-stream."""
    bad = folder / "bad.csv.gz"
    generate.write(str(bad), customers=200, seed=3)
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    return bad


def start(bad: Path, folder: Path, *flags: str) -> subprocess.Popen:
    """The command line on ``bad`` in ``folder`` as a user types it (it sets where Spark logs itself; its temp
    folder is ``folder``), stderr to a file there."""
    folder.mkdir()
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "TMPDIR": str(folder)}
    for name in (
        "SPARK_REMOTE",
        "PYSPARK_GATEWAY_PORT",
        "PYSPARK_GATEWAY_SECRET",
        session.SPARK_LOG_VARIABLE,
        session.SPARK_CONSOLE_VARIABLE,
    ):
        env.pop(name, None)
    argv = [sys.executable, "-m", "segmentation.cli", "run", "--input", str(bad), "--output", str(folder / "out")]
    with open(folder / "stderr.txt", "w", encoding="utf-8") as stderr:  # the process has its own copy
        return subprocess.Popen([*argv, *flags], cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=stderr)


def finish(process: subprocess.Popen, folder: Path) -> Run:
    """Wait for ``process`` (started in ``folder``): what it left, and the Spark log its last line names."""
    code = process.wait(timeout=TIMEOUT_S)
    stderr = (folder / "stderr.txt").read_text(errors="replace")
    named = re.search(r"^Spark's log \(its warnings and stack traces\): (\S+)$", stderr, re.MULTILINE)
    return Run(code, stderr, Path(named[1]) if named else folder / "no-spark-log-named")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """The command line on a truncated gzip log twice, at once: Spark's console off (what the command line sets
    without -v) and at warn (with -v, which asks for it)."""
    tmp = tmp_path_factory.mktemp("terminal")
    bad = truncated_log(tmp)
    started = {"off": start(bad, tmp / "off"), "warn": start(bad, tmp / "warn", "-v")}
    try:
        return {name: finish(process, tmp / name) for name, process in started.items()}
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def test_a_bad_file_leaves_its_one_line_error_on_the_terminal_and_the_trace_in_the_log(runs: dict[str, Run]) -> None:
    run = runs["off"]
    assert run.code == 1, run.stderr[-4000:]
    lines = run.stderr.splitlines()
    assert any(line.startswith("error: ") and "bad.csv.gz" in line for line in lines), run.stderr
    assert not JAVA_FRAME.search(run.stderr), run.stderr[-4000:]
    assert not LOG4J_CONSOLE_LINE.search(run.stderr), run.stderr[-4000:]
    assert len(lines) < 15, run.stderr
    assert (
        run.spark_log.parent.name == f"segmentation-logs-{getpass.getuser()}" and run.spark_log.parents[1].name == "off"
    )
    assert run.spark_log.parent.stat().st_mode & 0o777 == 0o700  # Spark's messages can quote input values
    trace = run.spark_log.read_text()
    assert "Lost task" in trace and "bad.csv.gz" in trace and "EOFException" in trace
    assert JAVA_FRAME.search(trace)


def test_spark_console_at_warn_puts_the_trace_on_the_terminal_too(runs: dict[str, Run]) -> None:
    run = runs["warn"]
    assert run.code == 1, run.stderr[-4000:]
    assert re.search(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d WARN TaskSetManager: Lost task", run.stderr, re.MULTILINE)
    assert JAVA_FRAME.search(run.stderr)
    assert JAVA_FRAME.search(run.spark_log.read_text())  # the file has it either way


def test_terminal_logging_keeps_spark_off_the_terminal_unless_verbose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(session.SPARK_LOG_VARIABLE, raising=False)
    quiet = session.terminal_logging(False)
    loud = session.terminal_logging(True)
    assert quiet[session.SPARK_CONSOLE_VARIABLE] == "off" and loud[session.SPARK_CONSOLE_VARIABLE] == "warn"
    assert set(quiet) == {session.SPARK_LOG_VARIABLE, session.SPARK_CONSOLE_VARIABLE}
    assert session.SPARK_LOG_VARIABLE not in os.environ  # returned, not set


def test_terminal_logging_names_a_file_per_process_under_the_temp_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(session.SPARK_LOG_VARIABLE, raising=False)
    path = Path(session.terminal_logging(False, now=datetime(2026, 1, 2, 3, 4, 5))[session.SPARK_LOG_VARIABLE])
    assert path.parent == Path(tempfile.gettempdir()) / f"segmentation-logs-{getpass.getuser()}"
    assert path.name == f"spark-20260102-030405-{os.getpid()}.log"
    later = session.terminal_logging(False, now=datetime(2026, 1, 2, 3, 4, 6))[session.SPARK_LOG_VARIABLE]
    assert later != str(path)


def test_a_spark_log_the_user_set_stands_and_spark_log_path_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(session.SPARK_LOG_VARIABLE, raising=False)
    assert session.spark_log_path() is None
    monkeypatch.setenv(session.SPARK_LOG_VARIABLE, "")
    assert session.spark_log_path() is None
    monkeypatch.setenv(session.SPARK_LOG_VARIABLE, "/var/log/mine.log")
    assert session.terminal_logging(True)[session.SPARK_LOG_VARIABLE] == "/var/log/mine.log"
    assert session.spark_log_path() == "/var/log/mine.log"


def test_log4j_properties_read_the_variables_terminal_logging_sets() -> None:
    options = session.log4j_options()
    assert options, "log4j2.properties is installed as a file"
    text = (Path(session.__file__).parent / session.LOG4J_FILE).read_text()
    assert f"${{env:{session.SPARK_LOG_VARIABLE}:-${{sys:java.io.tmpdir}}/" in text
    assert f"${{env:{session.SPARK_CONSOLE_VARIABLE}:-warn}}" in text
    assert "rootLogger.appenderRef.file.ref = file" in text and "appender.file.append = true" in text
