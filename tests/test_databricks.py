"""Databricks: the notebook runs top to bottom on the test session with a stand-in for dbutils.widgets; the
asset bundle parses and names an entry point that the built wheel has; conf/databricks.yaml is valid."""

from __future__ import annotations

import zipfile
from configparser import ConfigParser
from pathlib import Path

import pytest
import yaml
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from segmentation import config
from segmentation.cli.parser import build_parser
from segmentation.demo import generate
from segmentation.jobs import segment
from segmentation.publish import files, storage

from .conftest import REPO, WHEEL

NOTEBOOK = REPO / "notebooks" / "segment_customers.py"


class FakeWidgets:
    """``dbutils.widgets`` as a job sees it: ``text`` declares a widget, ``get`` returns the value passed."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values, self.declared = values, {}

    def text(self, name: str, default: str, label: str | None = None) -> None:
        self.declared[name] = default

    def get(self, name: str) -> str:
        return self.values.get(name, self.declared[name])


class FakeDbutils:
    def __init__(self, values: dict[str, str]) -> None:
        self.widgets = FakeWidgets(values)


def test_the_notebook_runs_top_to_bottom_on_the_given_session(spark: SparkSession, tmp_path: Path) -> None:
    source = NOTEBOOK.read_text()
    assert source.startswith("# Databricks notebook source\n") and "# COMMAND ----------" in source
    assert "SparkSession" not in source and ".stop()" not in source  # it uses the notebook's session only

    log = tmp_path / "log.csv.gz"
    generate.write(str(log), customers=120, seed=31)
    widgets = {
        "input_path": str(log),
        "output_path": str(tmp_path / "out"),
        "config": str(REPO / "conf" / "base.yaml"),
        "k_min": "2",
        "k_max": "4",
        "catalog": "",
        "database": "",  # files (the widgets' defaults name Unity Catalog's main.segmentation)
    }
    shown: list[DataFrame] = []
    namespace = {"spark": spark, "dbutils": FakeDbutils(widgets), "display": shown.append}
    exec(compile(source, str(NOTEBOOK), "exec"), namespace)

    declared = namespace["dbutils"].widgets.declared
    assert set(declared) >= {"input_path", "output_path", "catalog", "database", "k_min", "k_max", "run_id"}
    assert (declared["input_table"], declared["where"]) == ("", "")  # files unless a table is given
    assert declared["output_path"].startswith("/Volumes/") and declared["input_path"].startswith("/Volumes/")
    result = namespace["result"]
    assert files.committed_runs(storage.for_root(None, str(tmp_path / "out"))) == [(result.as_of, "main")]
    assert spark.range(1).count() == 1  # the session is still alive

    # the notebook's run equals the library's on the same input and settings, and it shows that run's tables
    cfg = config.load(
        [REPO / "conf" / "base.yaml"],
        ["model.k_min=2", "model.k_max=4"],
        input_path=str(log),
        output_path=str(tmp_path / "library"),
    )
    library = segment.run(spark, cfg)
    assert (result.choice, result.segment_sizes, result.segment_names) == (
        library.choice,
        library.segment_sizes,
        library.segment_names,
    )
    for table in ("segments", "profiles", "sweep"):
        ours = spark.read.parquet(f"{result.run_folder}/{table}")
        theirs = spark.read.parquet(f"{library.run_folder}/{table}")
        assert_df_equality(ours, theirs, ignore_row_order=True, ignore_column_order=True)
    sweep, profiles = shown
    assert_df_equality(sweep, spark.read.parquet(f"{library.run_folder}/sweep").orderBy("k"))
    assert_df_equality(profiles, spark.read.parquet(f"{library.run_folder}/profiles").orderBy("segment"))
    assert [r["k"] for r in sweep.collect()] == [2, 3, 4]


def test_the_bundle_names_an_entry_point_of_the_built_wheel(artefacts: Path) -> None:
    bundle = yaml.safe_load((REPO / "databricks.yml").read_text())
    assert set(bundle["targets"]) == {"dev", "prod"}
    assert bundle["artifacts"]["segmentation_wheel"]["type"] == "whl"
    (task,) = bundle["resources"]["jobs"]["segmentation_nightly"]["tasks"]
    wheel_task = task["python_wheel_task"]
    with zipfile.ZipFile(artefacts / WHEEL) as wheel:
        entry_points = wheel.read("segmentation-0.1.0.dist-info/entry_points.txt").decode()
        metadata = wheel.read("segmentation-0.1.0.dist-info/METADATA").decode()
    parser = ConfigParser()
    parser.read_string(entry_points)
    assert f"Name: {wheel_task['package_name']}" in metadata
    target = parser["console_scripts"][wheel_task["entry_point"]]
    assert target == "segmentation.cli:main"
    parameters = wheel_task["parameters"]
    assert parameters[0] == "run" and parameters[parameters.index("--config") + 1].endswith("conf/databricks.yaml")
    assert task["libraries"] == [{"whl": "./dist/*.whl"}]
    (nightly,) = bundle["resources"]["jobs"]["segmentation_score_nightly"]["tasks"]  # docs/nightly.md
    scoring = nightly["python_wheel_task"]
    assert scoring["entry_point"] == wheel_task["entry_point"] and nightly["libraries"] == task["libraries"]
    arguments = scoring["parameters"]
    assert arguments[0] == "score" and "--incremental" in arguments
    assert arguments[arguments.index("--model") + 1] == "${var.output_path}"  # the retrain job's output root
    build_parser().parse_args([a.replace("${", "").replace("}", "") for a in arguments])  # the command line takes them


@pytest.mark.parametrize("name", ["databricks.yaml", "demo.yaml"])
def test_environment_configs_are_valid(name: str) -> None:
    cfg = config.load([REPO / "conf" / name], check_paths=False)
    if name == "databricks.yaml":
        assert cfg.input.path.startswith("/Volumes/") and cfg.output.path.startswith("/Volumes/")
        assert cfg.spark.master is None and cfg.privacy.secret_scope == "segmentation"
