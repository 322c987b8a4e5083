"""Shared fixtures: one local SparkSession for the whole test session, and small config helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segmentation import config
from segmentation.input import sources

REPO = Path(__file__).resolve().parents[1]
# Spark's Python workers run this interpreter (the one with pyarrow and pandas), not whatever python3 is on PATH
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
WHEEL = "segmentation-0.1.0-py3-none-any.whl"
ONLINE_RETAIL = Path(os.environ.get("SEGMENTATION_ONLINE_RETAIL", REPO.parent / "shared/data/online_retail.csv.gz"))


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = (
        SparkSession.builder.master("local[2]")
        .appName("segmentation-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.log.level", "ERROR")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def artefacts() -> Path:
    """``make package``'s output folder: the wheel, segmentation.zip, conf/ and jobs/."""
    subprocess.run(["make", "-C", str(REPO), "package"], check=True, capture_output=True, timeout=600)
    dist = REPO / "dist"
    assert (dist / WHEEL).is_file() and (dist / "segmentation.zip").is_file()
    return dist


def job_config(tmp_path: Path, input_path: str, *overrides: str, **kwargs: str) -> config.JobConfig:
    """A validated config for ``input_path`` writing under ``tmp_path/out``, with ``--set`` overrides."""
    return config.load(
        [REPO / "conf/base.yaml"],
        overrides,
        input_path=input_path,
        output_path=kwargs.get("output", str(tmp_path / "out")),
    )


def raw_frame(spark: SparkSession, rows: list[tuple], columns: list[str], source: str = "file:/in.csv") -> DataFrame:
    """A frame shaped like ``sources.read_raw``'s: text columns, ``_corrupt_record``, source file, raw line.

    Each row gives the source columns' values followed by the corrupt-record text (or None).
    """
    schema = ", ".join(f"`{c}` string" for c in [*columns, sources.CORRUPT])
    frame = spark.createDataFrame(rows, schema).withColumn(sources.SOURCE_FILE, F.lit(source))
    return sources.with_raw_line(frame)
