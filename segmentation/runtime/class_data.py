"""Class-data sharing for the JVM of a local session: its start and first queries cost about 5 s less.

A local run starts Spark's JVM, which loads and verifies some 15,000 classes from Spark's jars before and during
its first queries. Java 17 can map the classes one run loaded from an archive instead (class-data sharing). The
archive is made once, by a small run of the job under ``spark-submit`` with ``-XX:ArchiveClassesAtExit``
(``make setup`` runs ``python -m segmentation.runtime.class_data``). From then on, every local session this job
builds maps it (``sharing_options``, used by ``session.session_conf``).

Safety rules:

- The archive is named by a key of the Java runtime (its path, size and modification time) and of pyspark (its
  version, the folder of its jars and their names and sizes), so another Java, Spark or virtual environment
  never finds it. The archive records the class path it was made with; a JVM whose class path differs (pyspark
  installed in another folder) cannot map it, and with ``-Xshare:on`` would not start.
- It is written under a temporary name and renamed only once the process that wrote it has exited with success,
  because Java 17 crashes on a truncated archive.
- ``SEGMENTATION_CDS_DIR`` says where archives go (default ``~/.cache/segmentation``, or under
  ``XDG_CACHE_HOME``); ``off`` turns sharing off.

Only a session this job starts in local mode uses it: under spark-submit or on a cluster the launcher's own JVM
options stand, and a config that sets ``spark.driver.extraJavaOptions`` replaces these options too.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pyspark

FOLDER_VARIABLE = "SEGMENTATION_CDS_DIR"
QUIET = "-Xlog:cds=off,cds+dynamic=off"  # the JVM's notes on classes it cannot archive (old or signed jars)
DUMP_COLLECTOR = "-XX:+UseParallelGC"  # the collector of a local session (session.LOCAL_JAVA_OPTIONS)
# What the archive is made from: the demo log of a few hundred customers, through the whole job (every stage)
WORKLOAD_CUSTOMERS = 300


def archive_folder() -> Path | None:
    """Where archives are kept (``SEGMENTATION_CDS_DIR``, else the user's cache folder); None when it is ``off``."""
    given = os.environ.get(FOLDER_VARIABLE)
    if given is not None:
        return None if given.strip().lower() in ("off", "") else Path(given)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "segmentation"


def java_runner() -> Path | None:
    """The ``java`` Spark's launcher runs: ``$JAVA_HOME/bin/java``, else the one on PATH (None: neither)."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    return Path(found).resolve() if found and Path(found).is_file() else None


def archive_key(java: Path, jars: Path | None = None) -> str:
    """A short digest of the Java runtime and of pyspark's jars (their folder, names and sizes): the archive is valid
    for exactly these, since the JVM checks the class path the archive was made with."""
    jars = (Path(pyspark.__file__).parent / "jars") if jars is None else jars
    digest = hashlib.sha256()
    stat = java.stat()
    digest.update(f"{java}|{stat.st_size}|{stat.st_mtime_ns}|{pyspark.__version__}|{jars.resolve()}|".encode())
    for jar in sorted(jars.glob("*.jar")):
        digest.update(f"{jar.name}:{jar.stat().st_size};".encode())
    return digest.hexdigest()[:16]


def archive_path(folder: Path | None = None) -> Path | None:
    """The archive for this Java and pyspark (it may not exist yet); None when sharing is off or Java is unknown."""
    folder = archive_folder() if folder is None else folder
    java = java_runner()
    if folder is None or java is None:
        return None
    return folder / f"spark-classes-{archive_key(java)}.jsa"


def sharing_options(folder: Path | None = None) -> list[str]:
    """The JVM options that map this Java's and pyspark's archive, when it has been made; none otherwise."""
    archive = archive_path(folder)
    if archive is None or not archive.is_file():
        return []
    return [f"-XX:SharedArchiveFile={archive}", QUIET]


def build(folder: Path | None = None, *, timeout: float = 600, workload: str | None = None) -> Path:
    """Make the archive, unless it is there: run the job on a small demo log under spark-submit (about 2 minutes),
    archiving the classes it loaded. ``workload`` replaces that run by another Python script (it gets a work folder
    as its argument).

    Raises ``RuntimeError`` (with the run's last lines) when it could not be made.
    """
    archive = archive_path(folder)
    if archive is None:
        raise RuntimeError(f"class-data sharing is off ({FOLDER_VARIABLE}) or no java was found")
    if archive.is_file():
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(f"{archive.name}.{os.getpid()}.part")
    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    try:
        with tempfile.TemporaryDirectory(prefix="segmentation-cds-") as work:
            script = Path(work) / "workload.py"
            script.write_text(_WORKLOAD if workload is None else workload)
            options = " ".join([DUMP_COLLECTOR, f"-XX:ArchiveClassesAtExit={partial}", QUIET])
            command = [str(submit), "--master", "local[2]", "--driver-java-options", options, str(script), work]
            environment = {**os.environ, "PYSPARK_PYTHON": sys.executable, FOLDER_VARIABLE: "off"}
            done = subprocess.run(
                command, env=environment, capture_output=True, text=True, timeout=timeout, check=False
            )
        if done.returncode != 0 or not partial.is_file():
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
            raise RuntimeError(f"the class-data archive was not made (exit code {done.returncode}): {tail}")
        os.replace(partial, archive)  # whole: the JVM that wrote it has exited
    finally:
        partial.unlink(missing_ok=True)  # a failed or timed-out run's part, never mapped: not left in the cache
    return archive


_WORKLOAD = f"""
import sys
from segmentation.cli import main

work = sys.argv[1]
log = work + "/log.csv.gz"
assert main(["generate", "--output", log, "--customers", "{WORKLOAD_CUSTOMERS}", "-q"]) == 0
assert main(["run", "--input", log, "--output", work + "/out", "-q", "--set", "model.k_max=4"]) == 0
"""


def main() -> int:
    """``python -m segmentation.runtime.class_data``: make the archive and say where it is (exit code 1: not)."""
    try:
        made = build()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"class-data sharing archive not made, local runs start a few seconds slower: {exc}", file=sys.stderr)
        return 1
    print(f"class-data sharing archive: {made} ({made.stat().st_size // 2**20} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
