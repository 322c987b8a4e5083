"""The whole job over a real Spark Connect server (what Databricks serverless, shared clusters and Databricks
Connect give a notebook or a laptop), compared with a classic local run of the same input and config."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from segmentation.demo import generate
from segmentation.jobs import segment
from segmentation.publish import files, storage

from .conftest import REPO, job_config
from .spark_processes import Processes, published, start_connect_server

pytestmark = [pytest.mark.slow, pytest.mark.connect]
SETTINGS = ("model.k_min=2", "model.k_max=4", "model.seeds=2", "privacy.pseudonymize_ids=true")
KEY = "connect-test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Spark Connect server from pyspark's installation on 127.0.0.1:<free port>; its URL."""
    processes = Processes()
    try:
        url, _ = start_connect_server(processes, tmp_path_factory.mktemp("connect"))
        yield url
    finally:
        processes.stop()


def test_the_whole_job_over_spark_connect_equals_a_classic_run(
    spark: SparkSession, tmp_path: Path, connect_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "log.csv.gz"
    generate.write(str(log), customers=200, seed=12)
    out = tmp_path / "connect_out"
    argv = [sys.executable, "-m", "segmentation.cli", "run", "--remote", connect_server]
    argv += ["--input", str(log), "--output", str(out)]
    for setting in SETTINGS:
        argv += ["--set", setting]
    env = {**os.environ, "SEGMENTATION_ID_KEY": KEY}
    env.pop("SPARK_REMOTE", None)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "over Spark Connect" in done.stderr and connect_server not in done.stderr  # the URL is not logged

    monkeypatch.setenv("SEGMENTATION_ID_KEY", KEY)
    local = segment.run(spark, job_config(tmp_path, str(log), *SETTINGS, output=str(tmp_path / "local_out")))
    run = Path(files.resolve_run(storage.for_root(None, str(out))))
    assert published(spark, run) == published(spark, Path(local.run_folder))


@pytest.mark.extended
def test_spark_remote_environment_variable_selects_connect(tmp_path: Path, connect_server: str) -> None:
    # SPARK_REMOTE is how Databricks Connect and many platforms say "use Connect"; scoring works over it too
    log = tmp_path / "log.csv.gz"
    generate.write(str(log), customers=60, seed=13)
    env = {**os.environ, "SPARK_REMOTE": connect_server}
    base = [sys.executable, "-m", "segmentation.cli"]
    trained = subprocess.run(
        [*base, "run", "--input", str(log), "--output", str(tmp_path / "m"), "--set", "model.k=3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert trained.returncode == 0, trained.stderr[-4000:]
    scored = subprocess.run(
        [*base, "score", "--model", str(tmp_path / "m"), "--input", str(log), "--output", str(tmp_path / "s")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert scored.returncode == 0, scored.stderr[-4000:]
    assert "over Spark Connect" in scored.stderr
    assert list((tmp_path / "s" / "runs").glob("as_of_date=*/run_id=main/attempt=*/_SUCCESS"))

    # segments over time over Connect: a retrain matched to the first run in its model's space, with migration
    retrained = subprocess.run(
        [*base, "run", "--input", str(log), "--output", str(tmp_path / "m"), "--run-id", "retrain", *RETRAIN],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert retrained.returncode == 0, retrained.stderr[-4000:]
    folder = files.resolve_run(storage.for_root(None, str(tmp_path / "m")), run_id="retrain")
    entry = json.loads((Path(folder) / files.MANIFEST).read_text())["history"]
    assert entry["baseline"]["run_id"] == "main" and entry["method"] == "centroid matching"
    assert len(entry["matches"]) + len(entry["new"]) == 3 and (Path(folder) / "migration").is_dir()


CATALOG_INPUT = """
import sys
from pyspark.sql import SparkSession
from segmentation import load_config, run

url, log, out = sys.argv[1:4]
spark = SparkSession.builder.remote(url).getOrCreate()
spark.read.csv(log, header=True).createOrReplaceTempView("connect_lines")  # a view in the server's catalog
settings = ["input.table=connect_lines", "input.where=Country = 'United Kingdom'", "model.k=3"]
print(run(spark, load_config([], settings, output_path=out)).run_folder)
"""


@pytest.mark.extended
def test_a_catalog_view_with_a_predicate_over_spark_connect_equals_the_files(
    spark: SparkSession, tmp_path: Path, connect_server: str
) -> None:
    log_frame, _ = generate.generate(customers=80, seed=14)  # no malformed lines: a view cannot hold them
    log = tmp_path / "in" / "log.csv"
    log.parent.mkdir()
    log_frame.to_csv(log, index=False)
    env = {k: v for k, v in os.environ.items() if k != "SPARK_REMOTE"}
    done = subprocess.run(
        [sys.executable, "-c", CATALOG_INPUT, connect_server, str(log), str(tmp_path / "view_out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    over_connect = Path(done.stdout.strip().splitlines()[-1])
    where = "input.where=Country = 'United Kingdom'"
    local = segment.run(spark, job_config(tmp_path, str(log), where, "model.k=3", output=str(tmp_path / "files_out")))
    for name in ("segments", "features", "profiles"):  # sums in another order differ in their last bits
        connect_rows, local_rows = [
            sorted(spark.read.parquet(str(f / name)).collect()) for f in (over_connect, Path(local.run_folder))
        ]
        assert len(connect_rows) == len(local_rows), name
        for theirs, ours in zip(connect_rows, local_rows, strict=True):
            expected = [pytest.approx(v, rel=1e-9) if isinstance(v, float) else v for v in ours]
            assert list(theirs) == expected, name
    uk = int((log_frame["Country"] == "United Kingdom").sum())
    assert json.loads((over_connect / "manifest.json").read_text())["counts"]["lines_in"] == uk


RETRAIN = ("--baseline", "2011-12-09/main", "--set", "model.k=3", "--set", "model.seed=5")
FORBIDDEN = re.compile(r"\.rdd\b|sparkContext|SparkContext|\._jvm|\._jdf|\._jsc|(?:import|from) py4j|\.toJSON\(")


def test_the_library_uses_nothing_spark_connect_lacks() -> None:
    """Nothing Connect lacks, but in ``storage.HadoopStorage``, which ``storage.for_root`` uses only in a
    classic session (over Connect a root goes through the probe instead)."""
    found = [
        f"{path.relative_to(REPO / 'segmentation').as_posix()}:{number}: {line.strip()}"
        for path in sorted((REPO / "segmentation").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    source = (REPO / "segmentation" / "publish" / "storage.py").read_text()
    hadoop = source[source.index("class HadoopStorage") : source.index("class UnreachableStorage")]
    assert [f for f in found if not (f.startswith("publish/storage.py:") and f.split(": ", 1)[1] in hadoop)] == []
    assert "return _classic(spark, path)" in source and "if is_classic(spark):" in source
