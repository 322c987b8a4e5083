"""What an incremental run does up to its state, published as a run of its own (no model, no segments), and a full
run's features and counts over the same input: shared by ``tests/test_incremental.py`` and the catalog driver."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from segmentation.config import JobConfig
from segmentation.features.state import features_from_state
from segmentation.features.table import customer_features
from segmentation.input import sources, validate
from segmentation.input.clean import clean_lines
from segmentation.input.quarantine import LineCounts
from segmentation.jobs import incremental
from segmentation.publish import TableOutput
from segmentation.publish.manifest import SCORING, HistorySection, build
from segmentation.runtime.context import RunContext
from segmentation.runtime.timing import today_in


@dataclass(frozen=True)
class Absorbed:
    """An incremental run's increment, its features at its as-of date for each window asked, its state's counts."""

    increment: incremental.Increment
    features: dict[int | None, pd.DataFrame]
    count_rows: list[tuple[dt.date | None, str | None, int]]


def as_sorted(features: DataFrame) -> pd.DataFrame:
    return features.toPandas().sort_values("customer_id").reset_index(drop=True)


def publish_state(spark: SparkSession, cfg: JobConfig, windows: tuple[int | None, ...] = ()) -> Absorbed:
    """``incremental.read_increment`` in a run context, its state tables and features published with a manifest."""
    with RunContext(spark, cfg) as job:
        increment = incremental.read_increment(job)
        as_of = increment.validated.as_of
        features = {w: as_sorted(features_from_state(increment.days, as_of, window_days=w)) for w in windows}
        rows = [(r["day"], r["reason"], r["lines"]) for r in increment.tables["state_counts"].frame.collect()]
        features_table = TableOutput(features_from_state(increment.days, as_of))  # every run has one
        attempt = job.stage_outputs(as_of, {**increment.tables, "features": features_table})
        manifest = build(
            SCORING,
            cfg,
            attempt=attempt,
            spark_version=spark.version,
            counts={**increment.validated.counts.as_dict(), "customers": 0},
            mapping={},
            profile_rows=[],
            history=HistorySection(),
            incremental=increment.section,
        )
        incremental.check_still_newest(job, increment)
        job.publish(manifest)
    return Absorbed(increment, features, rows)


def full_run(
    spark: SparkSession, cfg: JobConfig, folder: Path, files: list[str] | None = None
) -> tuple[pd.DataFrame, LineCounts, dt.date]:
    """A full run's features, counts and as-of date over ``files`` (or the whole input), as
    ``RunContext.read_validate`` gets them; its work copy goes into ``folder``."""
    raw = sources.read_raw(spark, cfg.input, files=files)
    copy_path = folder / f"copy-{len(files or [])}-{cfg.features.window_days}-{dt.datetime.now().timestamp()}"
    validate.lines_for_copy(raw, cfg.input).write.parquet(str(copy_path))
    validated = validate.validate(
        spark.read.parquet(str(copy_path)), cfg, today=today_in("UTC"), keep=lambda frame: frame.cache()
    )
    features = customer_features(clean_lines(validated.lines, cfg.input), validated.as_of)
    return as_sorted(features), validated.counts, validated.as_of
