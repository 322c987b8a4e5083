"""The checks a run passes before it is published, as its jobs call them: clean lines with extreme values
(``input.plausibility``), and the drift measures against the baseline (``history.drift``) with the ``drift``
table that publishes them. Whether a run beyond a threshold becomes the current one is the publisher's, from the
manifest (``Manifest.held``)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from segmentation.history import drift
from segmentation.history.baseline import Baseline
from segmentation.input.plausibility import extreme_values
from segmentation.input.validate import Validated
from segmentation.publish.checks import DriftSection, Extreme
from segmentation.runtime.context import RunContext

log = logging.getLogger(__name__)

DRIFT = "drift"
DRIFT_SCHEMA = T.StructType(
    [
        T.StructField("measure", T.StringType(), False),
        T.StructField("subject", T.StringType(), False),
        T.StructField("value", T.DoubleType(), True),
        T.StructField("threshold", T.DoubleType(), True),
        T.StructField("direction", T.StringType(), False),
        T.StructField("threshold_from", T.StringType(), False),
        T.StructField("status", T.StringType(), False),
        T.StructField("severity", T.DoubleType(), False),
        T.StructField("baseline_as_of_date", T.DateType(), True),
        T.StructField("baseline_run_id", T.StringType(), True),
    ]
)


def extremes(job: RunContext, validated: Validated) -> list[Extreme]:
    """The clean lines read with a value over ``input.limits.extreme_factor`` times the log's median, logged
    as counts (never the values' lines)."""
    found = [Extreme(**e.as_dict()) for e in extreme_values(validated.lines, job.cfg.input)]
    for e in found:
        log.warning(
            "%d clean lines have a %s over %g times the log's median (%g); the largest is %g times it",
            e.lines,
            e.column,
            e.factor,
            e.median,
            e.largest / e.median,
        )
    return found


def drift_section(
    job: RunContext,
    validated: Validated,
    baseline: Baseline | None,
    *,
    segmented: DataFrame,
    features: Sequence[str],
    logged: Sequence[str],
    customers: int,
    flows: Sequence[Mapping[str, Any]],
) -> DriftSection | None:
    """The drift measures of this run against ``baseline`` (``history.drift``), logged; None with drift off."""
    if not job.cfg.history.enabled:
        return None
    window = job.cfg.features.window_days
    now = drift.RunNow(
        segmented=segmented,
        features=features,
        logged=logged,
        flows=flows,
        customers=customers,
        counts=validated.counts,
        by_day=validated.by_day,
        as_of=validated.as_of,
        first_day=validated.as_of - dt.timedelta(days=window - 1) if window else None,
    )
    section = drift.measure(job.cfg, now, baseline)
    if section is not None:
        beyond = section.beyond
        log.info(
            "drift against the baseline: %s (%d of %d measures beyond)",
            section.status,
            len(beyond),
            len(section.measures),
        )
        for m in beyond:
            log.warning("drift: %s of %s is %s (threshold %s)", m.measure, m.subject, m.value, m.threshold)
    return section


def drift_frame(spark: SparkSession, section: DriftSection | None) -> DataFrame:
    """The ``drift`` table: one row per measure, worst first (no rows without a baseline or with drift off)."""
    rows = []
    if section is not None and section.baseline is not None:
        base_day, base_id = dt.date.fromisoformat(section.baseline.as_of_date), section.baseline.run_id
        rows = [
            (
                m.measure,
                m.subject,
                m.value,
                m.threshold,
                m.direction,
                m.threshold_from,
                m.status,
                m.severity,
                base_day,
                base_id,
            )
            for m in section.measures
        ]
    return spark.createDataFrame(rows, DRIFT_SCHEMA).coalesce(1)
