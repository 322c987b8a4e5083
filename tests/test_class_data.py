"""Class-data sharing for a local session's JVM (``runtime.class_data``): the archive's name follows the Java
runtime and pyspark, a local session maps it once it is made, and the one ``make setup`` made really maps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from segmentation.config import SparkConfig
from segmentation.runtime import class_data, session

from .conftest import REPO


def java_options(conf: dict[str, str]) -> str:
    return conf["spark.driver.extraJavaOptions"]


def test_a_local_session_maps_the_archive_once_it_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(class_data.FOLDER_VARIABLE, str(tmp_path))
    archive = class_data.archive_path()
    assert archive is not None and archive.parent == tmp_path and archive.name.startswith("spark-classes-")
    _, conf = session.session_conf(SparkConfig(), under_spark_submit=False)
    assert "SharedArchiveFile" not in java_options(conf)  # not made yet: nothing to map
    archive.write_bytes(b"")
    _, conf = session.session_conf(SparkConfig(), under_spark_submit=False)
    assert f"-XX:SharedArchiveFile={archive}" in java_options(conf) and class_data.QUIET in java_options(conf)
    assert "-XX:+UseParallelGC" in java_options(conf)  # the local defaults stay
    assert class_data.build() == archive and archive.read_bytes() == b""  # made already: kept as it is
    # under spark-submit or with the config's own JVM options, the launcher's or the config's options stand
    assert "spark.driver.extraJavaOptions" not in session.session_conf(SparkConfig(), under_spark_submit=True)[1]
    own = SparkConfig(conf={"spark.driver.extraJavaOptions": "-XX:+UseG1GC"})
    assert java_options(session.session_conf(own, under_spark_submit=False)[1]) == "-XX:+UseG1GC"
    # off: no archive, no option, and nothing to make
    monkeypatch.setenv(class_data.FOLDER_VARIABLE, "off")
    assert class_data.archive_path() is None and class_data.sharing_options() == []
    with pytest.raises(RuntimeError, match="SEGMENTATION_CDS_DIR"):
        class_data.build()


def test_the_archive_is_named_after_the_java_runtime_and_the_cache_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    java = class_data.java_runner()
    assert java is not None and java.name == "java"
    other = tmp_path / "java"
    other.write_bytes(b"another runtime")
    assert class_data.archive_key(java) == class_data.archive_key(java)
    assert class_data.archive_key(other) != class_data.archive_key(java)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    assert class_data.java_runner() is None and class_data.archive_path(tmp_path) is None
    monkeypatch.delenv(class_data.FOLDER_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert class_data.archive_folder() == tmp_path / "cache" / "segmentation"


SMALL_WORKLOAD = """
from pyspark.sql import SparkSession

spark = SparkSession.builder.getOrCreate()
assert spark.range(7).count() == 7
spark.stop()
"""


@pytest.mark.extended  # keeps make test in its budget (make test-extended runs it)
def test_an_archive_build_makes_maps_into_a_local_session(tmp_path: Path) -> None:
    """``-Xshare:on`` makes a JVM that cannot map its archive fail to start: a session started with it counts.

    The archive is made the way ``make setup`` makes it, from a smaller workload (a count instead of the demo run).
    """
    archive = class_data.build(tmp_path, workload=SMALL_WORKLOAD, timeout=300)
    assert archive == class_data.archive_path(tmp_path) and archive.stat().st_size > 2**20
    assert [p.name for p in tmp_path.iterdir()] == [archive.name]  # no part file left
    script = (
        "from segmentation.config import SparkConfig\n"
        "from segmentation.runtime import session\n"
        "session.LOCAL_JAVA_OPTIONS = (*session.LOCAL_JAVA_OPTIONS, '-Xshare:on')\n"
        "spark = session.build_session(SparkConfig(master='local[1]'))\n"
        "print('counted', spark.range(7).count())\n"
        "spark.stop()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_GATEWAY", "SPARK_REMOTE"))}
    env[class_data.FOLDER_VARIABLE] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "counted 7" in done.stdout


def test_the_same_jars_in_another_folder_get_another_archive(tmp_path: Path) -> None:
    """The archive records the class path it was made with: pyspark in another virtual environment (another
    clone of the project) must not find an archive made for this one, even with the same version and jars."""
    java = class_data.java_runner()
    assert java is not None
    here = Path(class_data.pyspark.__file__).parent / "jars"
    elsewhere = tmp_path / "jars"
    elsewhere.mkdir()
    for jar in here.glob("*.jar"):
        (elsewhere / jar.name).symlink_to(jar)  # the same names and sizes
    assert class_data.archive_key(java) == class_data.archive_key(java, here)
    assert class_data.archive_key(java, elsewhere) != class_data.archive_key(java, here)
