"""spark-submit of the packaged job to a real Spark standalone cluster (a master and two workers on 127.0.0.1).

Only the artefacts of ``make package`` reach the cluster: the wheel on ``--py-files``, ``conf/base.yaml`` and
``jobs/segment.py``. Driver and executors run a Python that has the third-party packages but cannot import
``segmentation`` from this source tree. The published run must equal a local-mode run of the same input.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from segmentation.demo import generate
from segmentation.jobs import segment
from segmentation.publish import files, storage

from .conftest import WHEEL, job_config
from .spark_processes import SPARK_HOME, Processes, free_port, published, runtime_python, spark_env, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
SETTINGS = ("model.k_min=2", "model.k_max=4", "model.seeds=2")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A master and two workers (1 core, 1 GB each), stopped at the end even when a test fails."""
    folder = tmp_path_factory.mktemp("cluster")
    python = runtime_python(folder / "node-python")
    env = spark_env(python, folder / "logs", SPARK_WORKER_DIR=str(folder / "work"))
    processes = Processes()
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    port = free_port()
    try:
        master_log = folder / "master.log"
        master_argv = [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1"]
        master_argv += ["--port", str(port), "--webui-port", str(free_port())]
        master = processes.start(master_argv, master_log, env)
        wait_for(master_log, "I have been elected leader", master)
        url = f"spark://127.0.0.1:{port}"
        for i in range(2):
            worker = [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "1"]
            worker += ["--memory", "1g", "--webui-port", str(free_port()), "--work-dir", str(folder / f"work{i}"), url]
            processes.start(worker, folder / f"worker{i}.log", env)
        wait_for(master_log, "Registering worker", master, count=2)
        yield {"url": url, "python": python, "env": env, "folder": folder}
    finally:
        processes.stop()


def test_the_runtime_python_cannot_import_the_source_tree(cluster: dict[str, object]) -> None:
    probe = subprocess.run([cluster["python"], "-c", "import segmentation"], capture_output=True, cwd="/")
    assert probe.returncode != 0 and b"No module named 'segmentation'" in probe.stderr
    assert subprocess.run([cluster["python"], "-c", "import pyspark, pandas, pyarrow, yaml"]).returncode == 0


def test_spark_submit_to_a_standalone_cluster_equals_local_mode(
    spark: SparkSession, tmp_path: Path, artefacts: Path, cluster: dict[str, object]
) -> None:
    log = tmp_path / "log.csv.gz"
    generate.write(str(log), customers=200, seed=9)
    out = tmp_path / "cluster_out"
    submit = [str(SPARK_HOME / "bin" / "spark-submit"), "--master", str(cluster["url"]), "--deploy-mode", "client"]
    submit += [
        "--name",
        "segmentation-cluster-test",
        "--py-files",
        str(artefacts / WHEEL),
    ]
    submit += ["--files", str(artefacts / "conf" / "base.yaml")]
    submit += ["--driver-memory", "1g", "--executor-memory", "1g", "--total-executor-cores", "2"]
    submit += ["--conf", "spark.executor.cores=1", "--conf", "spark.sql.shuffle.partitions=4"]
    submit += ["--conf", "spark.ui.enabled=false", "--conf", "spark.sql.session.timeZone=UTC"]
    submit += [str(artefacts / "jobs" / "segment.py"), "--config", str(artefacts / "conf" / "base.yaml")]
    submit += ["--input", str(log), "--output", str(out)]
    for setting in SETTINGS:
        submit += ["--set", setting]
    done = subprocess.run(
        submit,
        env=cluster["env"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,  # type: ignore[arg-type]
    )
    assert done.returncode == 0, done.stderr[-4000:]
    output = done.stdout + done.stderr  # spark-submit passes the Python driver's stderr on to its stdout
    assert "stage sweep: started" in output and "timings:" in output  # the driver logs each stage and its time
    assert "published      " in output
    executors = list(Path(cluster["folder"]).glob("work*/app-*/*/stderr"))  # type: ignore[arg-type]
    assert len({p.parent.parent.parent for p in executors}) == 2  # both workers ran executors for the job

    local = segment.run(spark, job_config(tmp_path, str(log), *SETTINGS, output=str(tmp_path / "local_out")))
    run = Path(files.resolve_run(storage.for_root(None, str(out))))
    assert published(spark, run) == published(spark, Path(local.run_folder))
