"""A Spark Connect server whose disk the client cannot see: what a remote cluster (Databricks) is to a laptop.

The server runs in a mount namespace of its own with a private tmpfs over ``server_only/``: what it writes
there (Parquet, its warehouse's managed tables) the test process cannot see, and what the test process writes
there the server cannot read. One server for the whole module.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from pyspark.errors import AnalysisException
from pyspark.sql import Row, SparkSession

from segmentation.config import InputConfig
from segmentation.demo import generate
from segmentation.errors import ConfigError
from segmentation.input import sources
from segmentation.jobs import segment

from .conftest import job_config
from .spark_processes import Processes, mount_namespace, start_connect_server

pytestmark = [pytest.mark.slow, pytest.mark.connect, pytest.mark.extended]  # make test-extended


@dataclass(frozen=True)
class UnseenServer:
    """A Connect server's URL, its own folder (a tmpfs only it sees; its warehouse in it) and its pid."""

    url: str
    folder: Path
    pid: int
    shared: Path  # a folder both the server and the test process see


@pytest.fixture(scope="module")
def unseen_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UnseenServer]:
    """A Connect server in its own mount namespace, with a private tmpfs over ``<tmp>/server_only``."""
    base = tmp_path_factory.mktemp("connect_unseen")
    folder = base / "server_only"
    folder.mkdir()
    try:
        mount_namespace(folder)
    except OSError as exc:
        pytest.skip(str(exc))
    processes = Processes()
    try:
        url, server = start_connect_server(
            processes, base, f"spark.sql.warehouse.dir={folder / 'warehouse'}", private=folder
        )
        yield UnseenServer(url=url, folder=folder, pid=server.pid, shared=base)
    finally:
        processes.stop()


@pytest.fixture(scope="module")
def remote(unseen_server: UnseenServer) -> Iterator[SparkSession]:
    """A Connect session on ``unseen_server``."""
    mode_before = os.environ.get("SPARK_CONNECT_MODE_ENABLED")
    session = SparkSession.builder.remote(unseen_server.url).create()  # also active (Spark ML needs one)
    yield session
    session.stop()
    if mode_before is None:  # pyspark marks the process as Connect-only; later tests use the classic session
        os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)


def test_the_servers_folder_and_the_clients_are_not_the_same(remote: SparkSession, unseen_server: UnseenServer) -> None:
    folder = unseen_server.folder
    # the server's JVM is the process started (unshare and sh exec it), in a mount namespace of its own
    assert Path(f"/proc/{unseen_server.pid}/comm").read_text().strip() == "java"
    assert os.readlink(f"/proc/{unseen_server.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")

    probe = str(folder / "probe")
    remote.range(3).write.parquet(probe)
    assert sorted(r.id for r in remote.read.parquet(probe).collect()) == [0, 1, 2]
    assert not os.path.exists(probe)  # written on the server's disk only

    (folder / "client.txt").write_text("written by the test\n")
    with pytest.raises(AnalysisException, match="PATH_NOT_FOUND"):
        remote.read.text(str(folder / "client.txt")).collect()
    # the same file outside that folder is read: the server sees the rest of the disk
    (unseen_server.shared / "client.txt").write_text("written by the test\n")
    assert remote.read.text(str(unseen_server.shared / "client.txt")).collect() == [Row(value="written by the test")]


def test_managed_tables_live_in_the_servers_own_warehouse(remote: SparkSession, unseen_server: UnseenServer) -> None:
    warehouse = unseen_server.folder / "warehouse"
    remote.sql("CREATE TABLE t USING parquet AS SELECT 1 AS x")
    try:
        assert remote.table("t").collect() == [Row(x=1)]
        details = {r.col_name: r.data_type for r in remote.sql("DESCRIBE TABLE EXTENDED t").collect()}
        assert details["Location"] == f"file:{warehouse}/t"
        assert not warehouse.exists()
    finally:
        remote.sql("DROP TABLE IF EXISTS t")


def test_each_line_names_its_file_over_spark_connect(remote: SparkSession, unseen_server: UnseenServer) -> None:
    folder = unseen_server.shared / "logs"
    folder.mkdir()
    (folder / "a.csv").write_text('InvoiceNo,Quantity\n1,2\n2,"unclosed\n')
    pd.DataFrame({"InvoiceNo": ["3"], "Quantity": [4]}).to_parquet(folder / "b.parquet")
    for name, fmt in (("a.csv", "csv"), ("b.parquet", "parquet")):
        raw = sources.read_raw(remote, InputConfig(path=str(folder / name), format=fmt))
        assert {r[sources.SOURCE_FILE] for r in raw.collect()} == {(folder / name).as_uri()}


@pytest.fixture(scope="module")
def shared_log(unseen_server: UnseenServer) -> Path:
    """A small log where both the server and the test process can read it."""
    path = unseen_server.shared / "input" / "log.csv.gz"
    path.parent.mkdir()
    generate.write(str(path), customers=80, seed=43)
    return path


def test_a_files_output_the_client_cannot_reach_is_refused_before_any_work(
    remote: SparkSession, unseen_server: UnseenServer, shared_log: Path, tmp_path: Path
) -> None:
    root = unseen_server.folder / "files_out"
    cfg = job_config(tmp_path, str(shared_log), "model.k=3", output=str(root))
    with pytest.raises(ConfigError) as refused:
        segment.run(remote, cfg)
    assert str(refused.value).startswith(f"output.path: '{root}' cannot be reached from this Spark Connect client")
    assert "use catalog tables (output.catalog.database)" in str(refused.value)
    assert not root.exists()  # the client's probe is gone ...
    with pytest.raises(AnalysisException, match="PATH_NOT_FOUND"):
        remote.read.text(str(root)).collect()  # ... and the server has nothing there either


def test_catalog_tables_work_where_the_client_cannot_look(
    remote: SparkSession, unseen_server: UnseenServer, shared_log: Path, tmp_path: Path
) -> None:
    root = unseen_server.folder / "models"
    settings = ("model.k=3", "output.catalog.database=seg_unseen")
    result = segment.run(remote, job_config(tmp_path, str(shared_log), *settings, output=str(root)))
    assert not root.exists()  # the model went to the server's disk; the client wrote nothing there

    counts = remote.sql("SELECT as_of_date, segment_name, count(*) AS n FROM seg_unseen.segments GROUP BY 1, 2")
    assert {(r.as_of_date, r.segment_name): r.n for r in counts.collect()} == {
        (result.as_of, result.segment_names[s]): n for s, n in result.segment_sizes.items()
    }
    (run,) = remote.table("seg_unseen.runs").collect()
    assert (run.as_of_date, run.run_id, run.kind, run.chosen_k) == (result.as_of, "main", "segmentation", 3)
    assert (run.lines_in, run.customers) == (result.counts.lines_in, result.customers)
    assert (
        run.model_path
        == f"{root}/runs/as_of_date={result.as_of.isoformat()}/run_id=main/attempt={run.attempt_id}/model"
    )
    assert remote.read.text(f"{run.model_path}/metadata").count() == 1  # saved by Spark on the server
    report = {r.format: r.content for r in remote.table("seg_unseen.report").collect()}
    assert "**Chosen k = 3.**" in report["markdown"] and "<h1>Segmentation report" in report["html"]
    tables = {r.tableName for r in remote.sql("SHOW TABLES IN seg_unseen").collect()}
    assert tables == {
        "segments",
        "features",
        "profiles",
        "sweep",
        "quarantine",
        "report_sample",
        "report",
        "runs",
        "migration",
        "drift",
        *(("customer_value", "value_model") if json.loads(run.manifest_json)["value"]["status"] == "fitted" else ()),
    }
