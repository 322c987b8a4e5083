"""The storage layer: one module touches the output root; paths resolve as Spark resolves them; the commit
primitive is exclusive; and a whole run works the same given a relative path, an absolute one or a file: URI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession

from segmentation.demo import generate
from segmentation.jobs import segment
from segmentation.publish import files, storage
from segmentation.publish.storage import HadoopStorage, LocalStorage

from .conftest import REPO, job_config

# File access that reads or writes a path: only publish/storage.py may aim it at the output root. The config
# loader (config files, the input's existence), input/sources.py (the input) and the demo generators (the
# generated log) never touch it.
FILE_ACCESS = re.compile(
    r"\bopen\(|shutil\.|os\.(path|makedirs|remove|rename|replace|listdir|rmdir|link|scandir|walk|unlink)\b"
    r"|pd\.read_|\.to_parquet\(|\.to_csv\(|glob\.|\bPath\("
)
NOT_ON_THE_OUTPUT_ROOT = {
    "publish/storage.py",
    "config/loader.py",
    "config/paths.py",
    "input/sources.py",
    "demo/generate.py",
    "demo/deliveries.py",  # planted daily files for incremental runs (tests, the benchmark)
    "cli/main.py",  # Spark's own log file of the process (its folder, whether it was written)
    "cli/reference.py",  # the docs' generated reference pages
    "runtime/class_data.py",  # the JVM's class archive, in the user's cache folder
}
PACKAGE = REPO / "segmentation"


def test_only_the_storage_module_touches_files() -> None:
    found = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).as_posix() not in NOT_ON_THE_OUTPUT_ROOT
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if FILE_ACCESS.search(line)
    ]
    assert found == []


def test_local_create_new_is_exclusive_and_whole(tmp_path: Path) -> None:
    store = LocalStorage(str(tmp_path))
    path = store.join(str(tmp_path), "run", "_commits", "00000001.json")
    assert store.create_new(path, b'{"attempt_id": "a"}') is True  # parent folders are made, as Hadoop does
    assert store.create_new(path, b'{"attempt_id": "b"}') is False
    assert store.read_json(path) == {"attempt_id": "a"}
    assert sorted(os.listdir(tmp_path / "run" / "_commits")) == ["00000001.json"]  # no temporary file left
    store.write_text(path, "replaced")
    assert store.read_text(path) == "replaced"
    assert [(e.name, e.is_dir) for e in store.list(str(tmp_path / "run"))] == [("_commits", True)]
    assert store.list(str(tmp_path / "missing")) == []
    store.remove_if_empty(str(tmp_path / "run"))  # not empty: stays
    assert (tmp_path / "run").is_dir()
    store.delete(str(tmp_path / "run"))
    store.delete(str(tmp_path / "run"))  # nothing there: nothing happens
    assert not (tmp_path / "run").exists()
    with pytest.raises(FileNotFoundError):
        store.read_bytes(path)


def test_hadoop_storage_on_a_file_uri(spark: SparkSession, tmp_path: Path) -> None:
    """The JVM path (what HDFS, viewfs and object stores use) on Hadoop's local file system."""
    root = f"file:{tmp_path}/root"
    store = HadoopStorage(spark, root)
    commit = store.join(root, "_commits", "00000001.json")
    assert store.create_new(commit, b'{"n": 1}') is True
    assert store.create_new(commit, b'{"n": 2}') is False
    assert store.read_json(commit) == {"n": 1}
    store.write_bytes(store.join(root, "latest"), b"runs/x\n")
    store.write_bytes(store.join(root, "latest"), b"runs/y\n")  # replaced whole
    assert store.read_text(store.join(root, "latest")) == "runs/y\n"
    listed = {(e.name, e.is_dir) for e in store.list(root) if not e.name.startswith(".")}
    assert listed == {("_commits", True), ("latest", False)}
    assert store.list(store.join(root, "missing")) == []
    with pytest.raises(FileNotFoundError):
        store.read_bytes(store.join(root, "missing"))
    store.remove_if_empty(store.join(root, "_commits"))
    assert store.exists(commit)
    store.delete(store.join(root, "_commits"))
    assert not store.exists(commit) and not (tmp_path / "root" / "_commits").exists()
    assert store.qualified(str(tmp_path / "root")) == f"file:{tmp_path}/root"


def test_roots_resolve_as_spark_resolves_them(spark: SparkSession, tmp_path: Path) -> None:
    relative = os.path.relpath(tmp_path / "out", os.getcwd())  # relative to the driver's working folder
    for given in (str(tmp_path / "out"), f"file://{tmp_path}/out", f"file:{tmp_path}/out", relative):
        store = storage.for_root(spark, given)
        assert isinstance(store, LocalStorage) and store.root == str(tmp_path / "out"), given
    assert storage.for_root(None, relative).root == str(tmp_path / "out")  # without a session: local paths only
    with pytest.raises(Exception, match="a hdfs: path needs a Spark session"):
        storage.for_root(None, "hdfs://namenode/out")


@pytest.mark.extended  # keeps make test in its budget (make test-extended runs it)
def test_relative_absolute_and_file_uri_paths_give_identical_runs(spark: SparkSession, tmp_path: Path) -> None:
    log = tmp_path / "in" / "log.csv.gz"
    log.parent.mkdir()
    generate.write(str(log), customers=60, seed=11)
    given = {
        "absolute": (str(log), str(tmp_path / "absolute")),
        "file_uri": (f"file://{log}", f"file://{tmp_path}/file_uri"),
        "relative": (os.path.relpath(log, os.getcwd()), os.path.relpath(tmp_path / "relative", os.getcwd())),
    }
    runs = {
        name: segment.run(spark, job_config(tmp_path, inp, "model.k=3", "model.seeds=1", output=out))
        for name, (inp, out) in given.items()
    }
    folders = {name: Path(result.run_folder) for name, result in runs.items()}
    for name, folder in folders.items():
        as_of = runs["absolute"].as_of.isoformat()
        assert folder.parent == tmp_path / name / "runs" / f"as_of_date={as_of}" / "run_id=main"
        assert (tmp_path / name / "latest").read_text() == f"runs/as_of_date={as_of}/run_id=main\n"
    manifests = {name: json.loads((folder / "manifest.json").read_text()) for name, folder in folders.items()}
    reference = folders["absolute"]
    for name, folder in folders.items():
        assert manifests[name]["centroids"] == manifests["absolute"]["centroids"]
        assert manifests[name]["counts"] == manifests["absolute"]["counts"]
        for table in ("segments", "features", "profiles", "quarantine"):
            ours, theirs = (spark.read.parquet(str(f / table)) for f in (folder, reference))
            columns = [c for c in theirs.columns if c != "source_file"]  # the quarantine names its input file
            assert_df_equality(ours.select(columns), theirs.select(columns), ignore_row_order=True)
        assert (folder / "report.md").read_text() == (reference / "report.md").read_text()
    assert files.committed_runs(storage.for_root(spark, given["relative"][1])) == [(runs["relative"].as_of, "main")]


@pytest.mark.extended
def test_a_default_file_system_that_is_not_the_local_disk(tmp_path: Path) -> None:
    """viewfs:// (a real Hadoop file system that pyspark ships) as the default file system, mounting
    ``/<name>`` on a temporary folder: the run is published there, and only there."""
    log = tmp_path / "log.csv.gz"
    generate.write(str(log), customers=60, seed=11)
    mounted, name = tmp_path / "cluster", f"segmentation-viewfs-{uuid.uuid4().hex[:8]}"
    mounted.mkdir()
    driver = REPO / "tests" / "drivers" / "viewfs.py"
    done = subprocess.run(
        [sys.executable, str(driver), str(mounted), name, str(log)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable},
    )
    assert done.stdout.strip().splitlines()[-1:] == ["[0, 0, 0]"], done.stderr[-4000:]
    assert not Path(f"/{name}").exists()  # nothing at the same path on the local disk
    assert f"published      viewfs://cluster/{name}/out/runs/as_of_date=" in done.stdout
    out, scored = mounted / "out", mounted / "scored"

    def listed(folder: Path) -> list[str]:  # without Hadoop's .crc checksum files
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))

    assert listed(out) == ["latest", "runs"]  # the work folder is cleaned on that file system
    (run,) = (out / "runs").glob("as_of_date=*/run_id=main")
    (attempt,) = run.glob("attempt=*")
    commit = json.loads((run / "_commits" / "00000001.json").read_text())
    assert attempt.name == f"attempt={commit['attempt_id']}"
    for table in ("segments", "features", "profiles", "sweep", "quarantine", "model"):
        assert (attempt / table).is_dir(), table
    assert (attempt / "report.html").is_file() and (attempt / "report" / "sweep.png").is_file()
    manifest = json.loads((attempt / "manifest.json").read_text())
    assert manifest["chosen_k"] == 3
    # score read the model from there and published there
    (scored_run,) = (scored / "runs").glob("as_of_date=*/run_id=main/attempt=*")
    scored_manifest = json.loads((scored_run / "manifest.json").read_text())
    assert (
        scored_manifest["model"]["run_folder"] == f"viewfs://cluster/{name}/out/{run.relative_to(out)}/{attempt.name}"
    )
    assert scored_manifest["counts"] == manifest["counts"]
    assert [s["customers"] for s in scored_manifest["segments"]] == [s["customers"] for s in manifest["segments"]]
    assert listed(scored) == ["latest", "runs"]
    assert "report         viewfs://cluster/" in done.stdout  # report re-rendered through the session
