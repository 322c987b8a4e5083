"""The skeleton every run shares: the session's own settings come back, failures map to the right error, a bug
surfaces as a bug, and the house rules of the library's signatures and imports hold."""

from __future__ import annotations

import ast
import datetime as dt
import inspect
import json
import pkgutil
import re
import urllib.parse
from pathlib import Path

import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from py4j.protocol import Py4JError
from pyspark.sql import DataFrame, SparkSession

import segmentation
from segmentation import cli
from segmentation.config import SparkConfig
from segmentation.demo import generate
from segmentation.errors import InputError, RunFailed
from segmentation.jobs import segment
from segmentation.runtime import session
from segmentation.runtime.context import RunContext as JobRun

from .conftest import REPO, job_config

POLICY, NANOS = "spark.sql.legacy.timeParserPolicy", "spark.sql.legacy.parquet.nanosAsLong"


@pytest.fixture(scope="module")
def tiny_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("execution") / "log.csv.gz"
    generate.write(str(path), customers=60, seed=17)
    return path


@pytest.fixture
def notebook_settings(spark: SparkSession):  # type: ignore[no-untyped-def]
    """A session as a notebook may have it: one of the job's keys set to its own value, the other not set."""
    spark.conf.set(POLICY, "EXCEPTION")
    spark.conf.unset(NANOS)
    yield
    spark.conf.unset(POLICY)


def settings_now(spark: SparkSession) -> tuple[str | None, str | None]:
    return spark.conf.get(POLICY, None), spark.conf.get(NANOS, None)


def test_job_settings_hold_during_the_body_and_are_restored_after(spark: SparkSession, notebook_settings) -> None:  # type: ignore[no-untyped-def]
    with session.job_settings(spark):
        assert settings_now(spark) == ("CORRECTED", "true")
    assert settings_now(spark) == ("EXCEPTION", None)
    with pytest.raises(ZeroDivisionError), session.job_settings(spark):
        assert settings_now(spark) == ("CORRECTED", "true")
        _ = 1 / 0
    assert settings_now(spark) == ("EXCEPTION", None)


@pytest.mark.slow
def test_a_run_gives_the_session_its_own_settings_back(
    spark: SparkSession, tmp_path: Path, tiny_log: Path, notebook_settings
) -> None:  # type: ignore[no-untyped-def]
    result = segment.run(spark, job_config(tmp_path, str(tiny_log), "model.k=2"))
    assert result.choice.k == 2
    assert settings_now(spark) == ("EXCEPTION", None)
    with pytest.raises(InputError, match=r"quality\.max_quarantine_share"):  # a failed run restores them too
        segment.run(spark, job_config(tmp_path, str(tiny_log), "model.k=2", "quality.max_quarantine_share=0.0"))
    assert settings_now(spark) == ("EXCEPTION", None)


@pytest.mark.parametrize(
    ("raised", "expected", "message"),
    [
        (OSError("No space left on device"), RunFailed, "stage features failed (OSError: No space left on device)"),
        (
            Py4JError("An error occurred while calling o12.count.\n: java.lang.OutOfMemoryError: Java heap space"),
            RunFailed,
            "stage features failed (Py4JError: Java heap space); nothing was published",
        ),
        (InputError("input.path: holds no data lines"), InputError, "input.path: holds no data lines"),
        (KeyError("segment"), KeyError, "segment"),  # a bug in our code stays a bug, not "your input is wrong"
        (TypeError("unsupported operand"), TypeError, "unsupported operand"),
    ],
)
def test_a_failed_stage_cleans_up_and_raises_the_right_error(
    spark: SparkSession, tmp_path: Path, tiny_log: Path, raised: Exception, expected: type, message: str
) -> None:
    cfg = job_config(tmp_path, str(tiny_log))
    frame = spark.range(5)
    with pytest.raises(expected) as caught, JobRun(spark, cfg) as run, run.stage("features"):
        kept = run.keep(frame)
        assert kept.is_cached
        run.stage_outputs(dt.date(2011, 12, 9), {})
        raise raised
    assert message in str(caught.value)
    assert not kept.is_cached  # unpersisted
    out = tmp_path / "out"
    assert not (out / "_work").exists() and not (out / "runs").exists()  # the attempt's folder is removed


def test_a_bug_surfaces_as_a_bug_on_the_command_line(
    spark: SparkSession, tmp_path: Path, tiny_log: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    def broken(spark: SparkSession, cfg: object) -> None:
        raise KeyError("cluster_to_segment")

    monkeypatch.setattr(segment, "run", broken)
    argv = ["run", "--input", str(tiny_log), "--output", str(tmp_path / "out")]
    assert cli.main(argv) == cli.EXIT_BUG
    error = capsys.readouterr().err
    assert "internal error: KeyError" in error and "a bug in segmentation" in error and "Traceback" not in error
    assert cli.main([*argv, "-v"]) == cli.EXIT_BUG
    assert "Traceback (most recent call last)" in capsys.readouterr().err  # -v: the traceback, for the bug report


def test_a_failed_setup_gives_the_session_its_settings_back(
    spark: SparkSession, tmp_path: Path, tiny_log: Path, notebook_settings
) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "_work").write_text("a file where the work folders go")
    with (
        pytest.raises(RunFailed, match=r"stage setup failed \(NotADirectoryError"),
        JobRun(spark, job_config(tmp_path, str(tiny_log))),
    ):
        pass
    assert settings_now(spark) == ("EXCEPTION", None)


def test_the_error_family_sets_the_exit_codes(
    spark: SparkSession, tmp_path: Path, tiny_log: Path, capsys: pytest.CaptureFixture
) -> None:
    score = ["score", "--model", str(tmp_path / "none"), "--input", str(tiny_log), "--output", str(tmp_path / "o")]
    assert cli.main([*score, "--model-date", "2011-13-01"]) == cli.EXIT_USAGE
    assert "configuration error: --model-date: expected a date like 2011-12-09" in capsys.readouterr().err
    assert cli.main(score) == cli.EXIT_FAILED  # no published run there: the input's fault, said plainly
    assert f"error: --model: {tmp_path / 'none'}: no published run here" in capsys.readouterr().err
    assert cli.main(["generate", "--output", str(tmp_path / "g.csv.gz"), "--planted", "9"]) == cli.EXIT_USAGE
    assert "configuration error: --planted: expected 1 to 6 segments, got 9" in capsys.readouterr().err
    (tmp_path / "taken.csv.gz").mkdir()
    assert cli.main(["generate", "--output", str(tmp_path / "taken.csv.gz")]) == cli.EXIT_FAILED  # a folder
    assert "error: [Errno 21] Is a directory" in capsys.readouterr().err
    assert cli.main(["generate", "--output", str(tmp_path / "log.parquet")]) == cli.EXIT_USAGE  # the name: CSV
    assert "--output: name the file .csv, .csv.gz, .jsonl or .jsonl.gz" in capsys.readouterr().err
    assert cli.main(["generate", "--periods", "2", "--output", str(tmp_path / "two.jsonl")]) == cli.EXIT_USAGE
    assert "JSON lines only for the demo log" in capsys.readouterr().err


def public_functions() -> list[tuple[str, object]]:
    found = []
    for info in pkgutil.walk_packages(segmentation.__path__, "segmentation."):
        module = __import__(info.name, fromlist=["_"])
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(value):
                found.append((f"{module.__name__}.{name}", value))
            elif inspect.isclass(value):
                methods = inspect.getmembers(value, inspect.isfunction)
                own = [(m, f) for m, f in methods if f.__qualname__.startswith(f"{name}.") and not m.startswith("_")]
                found += [(f"{module.__name__}.{name}.{m}", f) for m, f in own]
    return found


def test_public_functions_take_at_most_three_positional_parameters() -> None:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    crowded = []
    for name, function in public_functions():
        positional = [p for p in inspect.signature(function).parameters.values() if p.kind in kinds]
        if len([p for p in positional if p.name != "self"]) > 3:
            crowded.append(name)
    assert crowded == []


def test_scoring_shares_steps_with_the_job_through_the_modules_that_own_them() -> None:
    importers = []
    package = REPO / "segmentation"
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "segmentation.jobs" and node.names:
                if any(alias.name == "segment" for alias in node.names):
                    importers.append(path.relative_to(package).as_posix())
            elif isinstance(node, ast.ImportFrom) and node.module == "segmentation.jobs.segment":
                importers.append(path.relative_to(package).as_posix())
    # only the command line and the public API run the job; nothing borrows its helpers
    assert importers == ["__init__.py", "cli/main.py"]


def test_no_input_file_functions_unity_catalog_lacks() -> None:
    # Unity Catalog (Databricks Runtime 17.3+) has no input_file_name(); sources.source_file reads _metadata instead
    lacking = re.compile(r"input_file_(name|block_start|block_length)", re.IGNORECASE)
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in sorted((REPO / "segmentation").rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts  # every source and data file of the package
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if lacking.search(line)
    ]
    assert found == []


def test_without_persist_the_job_caches_nothing_and_gives_identical_results(
    spark: SparkSession, tmp_path: Path, tiny_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``spark.persist: false`` (serverless compute allows no cache): frames go to the work folder instead."""
    settings = ("model.k_min=2", "model.k_max=4", "model.seeds=2")
    cached = segment.run(spark, job_config(tmp_path, str(tiny_log), *settings, output=str(tmp_path / "cached")))
    persisted: list[str] = []
    for method in ("persist", "cache"):
        original = getattr(DataFrame, method)
        monkeypatch.setattr(
            DataFrame, method, lambda self, *a, _m=method, _o=original, **k: persisted.append(_m) or _o(self, *a, **k)
        )
    uncached = segment.run(
        spark, job_config(tmp_path, str(tiny_log), *settings, "spark.persist=false", output=str(tmp_path / "plain"))
    )
    assert persisted == []
    assert (uncached.choice, uncached.counts, uncached.segment_sizes) == (
        cached.choice,
        cached.counts,
        cached.segment_sizes,
    )
    for table in ("segments", "features", "profiles", "sweep", "quarantine"):
        ours, theirs = (spark.read.parquet(f"{result.run_folder}/{table}") for result in (uncached, cached))
        if table in ("profiles", "sweep"):  # sums over another partitioning: equal but for the last bits
            assert_approx_df_equality(ours, theirs, precision=1e-9, ignore_row_order=True)
        else:
            assert_df_equality(ours, theirs, ignore_row_order=True)
    manifests = [json.loads(Path(r.run_folder, "manifest.json").read_text()) for r in (uncached, cached)]
    assert manifests[0]["centroids"] == manifests[1]["centroids"] and manifests[0]["sweep"] == manifests[1]["sweep"]
    assert not (tmp_path / "plain" / "_work").exists()  # the copies went with the work folder


def test_a_process_without_a_master_gets_local_mode_with_the_local_defaults() -> None:
    master, conf = session.session_conf(SparkConfig(), under_spark_submit=False)
    assert master == "local[*]"
    assert (conf["spark.sql.shuffle.partitions"], conf["spark.ui.enabled"]) == ("8", "false")
    assert conf["spark.driver.memory"] == session.local_driver_memory(session.physical_memory())
    assert "spark.log.level" not in conf  # the log4j file sets it, without Spark's notice
    options = conf["spark.driver.extraJavaOptions"]
    assert "-XX:+UseParallelGC" in options and "blas.allowNative=false" in options
    uri = re.search(r"-Dlog4j2\.configurationFile=(\S+)", options).group(1)  # type: ignore[union-attr]
    log4j = Path(urllib.parse.unquote(urllib.parse.urlparse(uri).path))
    assert uri.startswith("file:/") and log4j.parent == Path(segmentation.__file__).parent / "runtime"
    assert "rootLogger.level = warn" in log4j.read_text()
    # an explicit local master gets the same; the config's own settings win over every default
    given = SparkConfig(master="local[2]", conf={"spark.driver.memory": "8g", "spark.sql.shuffle.partitions": 3})
    master, conf = session.session_conf(given, under_spark_submit=False)
    assert (master, conf["spark.driver.memory"], conf["spark.sql.shuffle.partitions"]) == ("local[2]", "8g", "3")
    # the config's own JVM options replace the defaults' (the log4j file with them): Spark's level is WARN then
    own = SparkConfig(conf={"spark.driver.extraJavaOptions": "-XX:+UseG1GC"})
    _, conf = session.session_conf(own, under_spark_submit=False)
    assert (conf["spark.driver.extraJavaOptions"], conf["spark.log.level"]) == ("-XX:+UseG1GC", "WARN")


def test_under_spark_submit_or_on_a_cluster_master_the_cluster_settings_stand() -> None:
    master, conf = session.session_conf(SparkConfig(), under_spark_submit=True)
    assert master is None
    assert conf == session.SESSION_DEFAULTS
    for cluster in ("spark://127.0.0.1:7077", "local-cluster[2,1,1024]", "yarn"):
        master, conf = session.session_conf(SparkConfig(master=cluster), under_spark_submit=False)
        assert master == cluster and conf == session.SESSION_DEFAULTS


def test_a_local_driver_gets_4g_or_half_the_machine() -> None:
    assert session.local_driver_memory(32 * 2**30) == "4g"
    assert session.local_driver_memory(8 * 2**30) == "4g"
    assert session.local_driver_memory(6 * 2**30) == "3072m"
    assert session.local_driver_memory(2**29) == "512m"  # never under 512m
    assert session.local_driver_memory(None) == "4g"
