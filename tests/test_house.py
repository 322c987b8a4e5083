"""The shape of the package: the typed, versioned manifest and its upgrade of earlier manifests, one publisher
interface the run context calls without asking which it has, no side effects on import, and the public API."""

from __future__ import annotations

import ast
import copy
import datetime as dt
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession

import segmentation
from segmentation.errors import InputError, RunFailed
from segmentation.publish.manifest import SCHEMA_VERSION, parse, upgrade
from segmentation.publish.publisher import ReportFiles, StoredRun, TableOutput
from segmentation.publish.storage import LocalStorage, Storage
from segmentation.runtime.context import RunContext
from segmentation.runtime.threads import executor_for

from .conftest import REPO, job_config
from .manifests import raw_manifest

PACKAGE = REPO / "segmentation"


@pytest.fixture(scope="module")
def tiny_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small CSV log: the run context checks its configuration's input exists."""
    path = tmp_path_factory.mktemp("house") / "log.csv"
    path.write_text("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n")
    return path


# ---------------------------------------------------------------- the manifest


@pytest.mark.parametrize("kind", ["segmentation", "scoring"])
def test_a_manifest_of_version_1_reads_and_writes_back_the_same_values(kind: str) -> None:
    """The fixtures are manifests as the untyped version 1 wrote them (published runs of the demo log)."""
    raw = raw_manifest(kind)
    assert "schema_version" not in raw
    read = parse(raw, "fixture")
    assert read.schema_version == SCHEMA_VERSION == 2
    written = read.to_json()
    assert written.pop("schema_version") == 2
    assert written == raw  # every key and value as version 1 wrote it: nothing lost, nothing added
    assert read.kind == kind and read.counts.customers == raw["counts"]["customers"]
    assert read.segment_names == {s["segment"]: s["name"] for s in raw["segments"]}
    assert read.mapping == {int(k): v for k, v in raw["cluster_to_segment"].items()}


def test_the_segmentation_fixture_is_read_by_attribute() -> None:
    read = parse(raw_manifest("segmentation"), "fixture")
    assert read.chosen_k == 5 and read.sweep is not None and [e.k for e in read.sweep] == list(range(2, 11))
    assert read.history is not None and read.history.baseline is None and read.history.max_segment_id == 5
    assert read.max_segment_id == 5 and read.model is None


def test_the_scoring_fixture_names_its_model() -> None:
    read = parse(raw_manifest("scoring"), "fixture")
    assert read.model is not None and read.model.as_of_date == "2011-12-09" and read.model.run_id == "main"
    assert read.sweep is None and read.chosen_k is None
    assert read.history is not None and read.history.baseline is None and read.history.method == "no baseline"


def test_the_upgrade_fills_what_earlier_manifests_lack() -> None:
    raw = raw_manifest("segmentation")
    for key in ("model_features", "history", "repeat_splits"):
        raw.pop(key)
    raw["counts"].pop("lines_out_of_window")
    upgraded = upgrade(raw)
    assert upgraded["model_features"] == raw["config"]["features"]["model_features"]
    assert "model_features" not in raw  # the file's content is not changed
    read = parse(raw, "old run")
    assert read.history is None and read.max_segment_id == max(s["segment"] for s in raw["segments"])
    assert read.counts.lines_out_of_window == 0


def test_a_later_version_is_read_for_what_this_one_knows() -> None:
    raw = {**raw_manifest("segmentation"), "schema_version": 3, "customer_value": {"model": "bgnbd"}}
    read = parse(raw, "later run")
    assert read.schema_version == 3 and read.chosen_k == 5


def test_a_broken_manifest_is_an_input_error_naming_the_run_and_the_key() -> None:
    raw = copy.deepcopy(raw_manifest("segmentation"))
    del raw["counts"]["lines_in"]
    with pytest.raises(InputError, match=r"runs/x: manifest.json is not a manifest this version reads \(counts"):
        parse(raw, "runs/x")
    with pytest.raises(InputError, match="not a JSON object"):
        parse([1, 2], "runs/y")


def test_manifests_are_built_in_one_place() -> None:
    """``Manifest(`` is called only by ``manifest.build`` (and read only through ``manifest.parse``)."""
    builders = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bManifest\((?!\))", line) or "Manifest.model_validate" in line
    ]
    assert builders and all(b.startswith("publish/manifest.py:") for b in builders)


# ---------------------------------------------------------------- one publisher interface


class RecordingPublisher:
    """A publisher that keeps everything in memory and records the calls the run context makes."""

    def __init__(self, root: str) -> None:
        self._storage = LocalStorage(root)
        self.calls: list[str] = []
        self.staged: dict[str, DataFrame] = {}

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def location(self) -> str:
        return "memory"

    def start_work(self) -> None:
        self.calls.append("start_work")

    def end_work(self) -> None:
        self.calls.append("end_work")

    def work_copy(self, frame: DataFrame, name: str) -> DataFrame:
        self.calls.append(f"work_copy {name}")
        return frame

    def begin(self, as_of: dt.date) -> object:
        self.calls.append(f"begin {as_of.isoformat()}")
        return type("Attempt", (), {"as_of": as_of, "run_id": "main", "attempt_id": "a1", "folder": "memory/a1"})()

    def stage(self, as_of: dt.date, tables: dict[str, TableOutput], model: object = None) -> None:
        self.calls.append(f"stage {sorted(tables)}")
        self.staged |= {name: table.frame for name, table in tables.items()}

    def stage_report(self, report: ReportFiles) -> None:
        self.calls.append("stage_report")

    def publish(self, manifest: object) -> str:
        self.calls.append("publish")
        return "memory/a1"

    def report_location(self) -> str | None:
        return "memory/a1/report.html" if "stage_report" in self.calls else None

    def discard(self) -> None:
        self.calls.append("discard")

    def committed_runs(self, run_id: str | None = None) -> list[tuple[dt.date, str]]:
        return []

    def manifests(self, run_id: str) -> list[object]:
        return []

    def manifest(self, as_of: dt.date, run_id: str) -> object:
        raise InputError("no runs in memory")

    def read_run(self, as_of: dt.date, run_id: str) -> StoredRun:
        raise InputError("no runs in memory")

    def promote(self, as_of: dt.date, run_id: str) -> str:
        raise InputError("no runs in memory")


def test_the_run_context_works_through_any_publisher(spark: SparkSession, tmp_path: Path, tiny_log: Path) -> None:
    publisher = RecordingPublisher(str(tmp_path))
    frame = spark.createDataFrame([(1, "a"), (2, None)], "id int, name string")
    cfg = job_config(tmp_path, str(tiny_log))
    with RunContext(spark, cfg, publisher=publisher) as run:  # type: ignore[arg-type]
        assert run.work_copy(frame, "lines") is frame
        attempt = run.stage_outputs(dt.date(2011, 12, 9), {"segments": TableOutput(frame)})
        assert attempt.attempt_id == "a1"
        run.stage_report(ReportFiles(html="<html/>", markdown="# r", charts={}))
        assert run.publish(parse(raw_manifest("segmentation"), "fixture")) == "memory/a1"
    assert publisher.calls == [
        "start_work",
        "work_copy lines",
        "begin 2011-12-09",
        "stage ['segments']",
        "stage_report",
        "publish",
        "end_work",
    ]
    assert sorted(r["id"] for r in publisher.staged["segments"].collect()) == [1, 2]


def test_a_failed_run_discards_its_attempt_through_the_publisher(
    spark: SparkSession, tmp_path: Path, tiny_log: Path
) -> None:
    publisher = RecordingPublisher(str(tmp_path))
    cfg = job_config(tmp_path, str(tiny_log))
    context = RunContext(spark, cfg, publisher=publisher)  # type: ignore[arg-type]
    with pytest.raises(RunFailed, match="stage features failed"), context as run, run.stage("features"):
        raise OSError("disk gone")
    assert publisher.calls == ["start_work", "discard", "end_work"]


def test_the_run_context_never_asks_which_publisher_it_has() -> None:
    source = (PACKAGE / "runtime" / "context.py").read_text()
    assert not re.search(r"\.catalog\b|reachable|isinstance\(self\.publisher|CatalogPublisher|FilePublisher", source)
    jobs = "".join((PACKAGE / "jobs" / name).read_text() for name in ("segment.py", "score.py"))
    assert not re.search(r"output\.catalog|\.reachable|CatalogPublisher|FilePublisher", jobs)


def test_shared_constants_and_helpers_live_once() -> None:
    defined = {
        name: [
            path.relative_to(PACKAGE).as_posix()
            for path in sorted(PACKAGE.rglob("*.py"))
            if re.search(rf"^(def _?{name}\(|_?{name} = )", path.read_text(), re.M)
        ]
        for name in ("STALE_SECONDS", "WRITE_PARALLELISM", "PARALLELISM", "all_at_once", "bind")
    }
    assert defined == {
        "STALE_SECONDS": ["publish/publisher.py"],
        "WRITE_PARALLELISM": ["publish/publisher.py"],
        "PARALLELISM": [],
        "all_at_once": ["publish/catalog.py"],  # a one-line name for runtime.threads.run_all
        "bind": [],
    }


# ---------------------------------------------------------------- no side effects


NO_SIDE_EFFECTS = """
import json, os, sys
import matplotlib
before_env = dict(os.environ)
before_backend = matplotlib.rcParams._get("backend")
import segmentation
light = not any(m in sys.modules for m in ("pyspark.ml", "segmentation.jobs.segment", "segmentation.report"))
import segmentation.cli, segmentation.report, segmentation.report.figures
from segmentation.report import render
print(json.dumps({
    "env_changed": sorted(k for k in set(os.environ) | set(before_env) if os.environ.get(k) != before_env.get(k)),
    "backend_same": matplotlib.rcParams._get("backend") == before_backend,
    "pyplot": "matplotlib.pyplot" in sys.modules,
    "light": light,
}))
"""


def test_importing_the_package_changes_nothing_in_the_process() -> None:
    done = subprocess.run(
        [sys.executable, "-c", NO_SIDE_EFFECTS], capture_output=True, text=True, cwd=REPO, check=True, timeout=300
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "env_changed": [],
        "backend_same": True,
        "pyplot": False,
        "light": True,  # the public names are imported when first used
    }


def test_no_library_module_sets_the_environment_or_the_plotting_backend() -> None:
    sets_env = re.compile(r"os\.environ\[[^\]]+\]\s*=|os\.environ\.(setdefault|update|pop)\(|os\.putenv\(")
    found = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if sets_env.search(line) or "matplotlib.use(" in line or re.search(r"import.*pyplot|pyplot\.|\bplt\.", line)
    ]
    # the command line owns its process: it sets PYSPARK_PYTHON there for a local session's workers
    assert [f.split(": ", 1)[1] for f in found if f.startswith("cli/main.py:")] == [
        "os.environ.setdefault(name, value)"
    ]
    assert [f for f in found if not f.startswith("cli/main.py:")] == []


def test_the_garbage_collector_runs_in_one_place() -> None:
    found = [
        f"{path.relative_to(PACKAGE)}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if re.search(r"\bgc\.collect\(", path.read_text())
    ]
    assert found == ["runtime/context.py"]


class _ConnectLike:
    """Stands in for a Spark Connect DataFrame: ``executor_for`` knows one by its module."""


_ConnectLike.__module__ = "pyspark.sql.connect.dataframe"


def test_a_parallelism_that_cannot_take_effect_over_spark_connect_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="segmentation.runtime.threads"):
        with executor_for(_ConnectLike(), 4, setting="model.sweep_parallelism") as pool:
            assert pool.submit(lambda: 7).result() == 7
        with executor_for(_ConnectLike(), 1, setting="model.sweep_parallelism"):
            pass
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        "model.sweep_parallelism=4 has no effect over Spark Connect: its Spark jobs run one after the other"
    ]


# ---------------------------------------------------------------- the public API


def test_the_public_api_names_what_a_notebook_calls() -> None:
    assert {"run", "score", "load_config", "read_history", "JobConfig", "RunFailed"} <= set(segmentation.__all__)
    missing = [name for name in segmentation.__all__ if not hasattr(segmentation, name)]
    assert missing == []
    assert segmentation.run.__module__ == "segmentation.jobs.segment" and segmentation.load_config.__name__ == "load"
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = segmentation.nothing_here


def test_the_readme_python_examples_use_only_the_public_api() -> None:
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    blocks = [block for page in pages for block in re.findall(r"```python\n(.*?)```", page.read_text(), re.S)]
    assert blocks
    imported = []
    for block in blocks:
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("segmentation"):
                imported += [(node.module, alias.name) for alias in node.names]
            elif isinstance(node, ast.Import):
                imported += [(alias.name, "") for alias in node.names if alias.name.startswith("segmentation")]
    assert imported, "the README and the docs show the library in use"
    assert [(m, n) for m, n in imported if m != "segmentation" or n not in segmentation.__all__] == []
