"""Running one implementation as a subprocess: wall time, and peak memory of its whole process tree."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.1
TAIL_LINES = 30
TAIL_BYTES = 256 * 1024
PROGRESS_BAR = re.compile(r"\[Stage [^\]\n]*\]")


@dataclass(frozen=True)
class Measured:
    """What one subprocess did: exit code, wall seconds, peak resident memory of the tree, its output."""

    returncode: int
    wall_seconds: float
    peak_rss_bytes: int
    timed_out: bool
    stdout: str
    stderr_tail: str
    over_memory: bool = False  # stopped when its tree's resident memory passed the limit


def exe_of(process: psutil.Process) -> str | None:
    """The program a process runs (None when it cannot be read)."""
    try:
        return process.exe()
    except psutil.Error:
        return None


def unexecd_jvm_child(process: psutil.Process, exes: dict[int, str | None]) -> bool:
    """True for a child of a JVM still running the JVM's own program: caught between vfork and exec.

    The JVM starts helper programs (Hadoop runs ``chmod`` and ``ls`` when it writes local files) with vfork,
    and until the exec the child shares the JVM's address space and reports all of the JVM's memory.
    """
    try:
        parent = process.ppid()
    except psutil.Error:
        return False
    exe = exes.get(process.pid)
    return exe is not None and exe == exes.get(parent) and os.path.basename(exe) == "java"


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants (the JVM is a child of the Python driver).

    A JVM child caught between vfork and exec is not counted (see ``unexecd_jvm_child``), and neither is an
    exact copy of a memory reading already counted (a shared address space read twice).
    """
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    exes = {m.pid: exe_of(m) for m in members}
    seen: set[tuple[int, ...]] = set()
    total = 0
    for member in members:
        try:
            info = tuple(member.memory_info())
        except psutil.Error:  # it ended between listing and reading
            continue
        if info not in seen and not unexecd_jvm_child(member, exes):
            seen.add(info)
            total += info[0]
    return total


class PeakSampler(threading.Thread):
    """Samples the tree's resident memory every 0.1 s and keeps the largest sum."""

    def __init__(self, pid: int, limit_bytes: int | None = None) -> None:
        super().__init__(daemon=True)
        self.limit_bytes, self.over_limit = limit_bytes, False
        try:
            self.process: psutil.Process | None = psutil.Process(pid)
        except psutil.Error:  # it ended at once
            self.process = None
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while self.process is not None and not self.done.is_set():
            self.peak = max(self.peak, tree_rss(self.process))
            if self.limit_bytes is not None and self.peak > self.limit_bytes:
                self.over_limit = True  # stop it before the machine runs out (the kernel would kill at random)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                return
            self.done.wait(SAMPLE_SECONDS)

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.peak


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last lines of a log, without Spark's console progress bars (redrawn with carriage returns)."""
    start = max(0, path.stat().st_size - TAIL_BYTES)
    with open(path, "rb") as handle:
        handle.seek(start)
        text = handle.read().decode("utf-8", errors="replace")
    kept = PROGRESS_BAR.sub("", text.replace("\r", "\n")).splitlines()[1 if start else 0 :]  # a cut first line
    return "\n".join([line for line in kept if line.strip()][-lines:])


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """Stop the subprocess this module started and its descendants (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def wait_group_gone(pgid: int, limit: float = 60.0) -> None:
    """Wait (untimed) until every process of the group has ended, e.g. a JVM still shutting down."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.2)


def run_measured(
    command: Sequence[str],
    cwd: str,
    log_dir: Path,
    timeout: float,
    env: dict[str, str] | None = None,
    memory_limit_bytes: int | None = None,
) -> Measured:
    """Run ``command``, its stdout and stderr into ``log_dir``; measure wall time and peak tree memory.

    A tree whose resident memory passes ``memory_limit_bytes`` is killed and reported ``over_memory``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / "stdout.txt", log_dir / "stderr.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen(list(command), cwd=cwd, stdout=out, stderr=err, env=env, start_new_session=True)
        sampler = PeakSampler(proc.pid, memory_limit_bytes)
        sampler.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_tree(proc)
        wall = time.monotonic() - start
        peak = sampler.stop()
    wait_group_gone(proc.pid)
    returncode = proc.returncode if not timed_out else -9
    stdout, stderr = out_path.read_text(errors="replace"), tail(err_path)
    return Measured(returncode, wall, peak, timed_out, stdout, stderr, over_memory=sampler.over_limit)
