"""The segmentation run's value stage: what each customer and segment is worth next (``segmentation.value``), the
tables it publishes, its manifest section and each segment's value for the profiles and the report."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame

from segmentation.features.state import days_after, days_in_window, value_lines
from segmentation.input.clean import clean_lines, later_lines
from segmentation.input.validate import Validated
from segmentation.model.pipeline import SEGMENT
from segmentation.model.profiles import SegmentProfiles
from segmentation.publish import TableOutput
from segmentation.publish.manifest import ValueFitEntry, ValueSection
from segmentation.publish.privacy import protect
from segmentation.runtime.context import RunContext
from segmentation.value import models
from segmentation.value.calibration import CALIBRATION, Calibration, calibrate
from segmentation.value.stage import (
    CUSTOMER_VALUE,
    VALUE_MODEL,
    VALUE_PROFILE_COLUMNS,
    Fitted,
    model_frame,
    segment_values,
    value_of_customers,
    with_segment_values,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValueRun:
    """The stage's manifest section, each segment's value (k rows, empty when not fitted) and its tables."""

    section: ValueSection
    segment_rows: list[dict[str, Any]] = field(default_factory=list)
    tables: dict[str, TableOutput] = field(default_factory=dict)
    calibration: Calibration | None = None
    values: DataFrame | None = None  # VALUE_COLUMNS and the segment per customer (ids as read), when there are values


def value_run(
    job: RunContext,
    validated: Validated,
    segmented: DataFrame,
    *,
    key: bytes | None,
    trained: ValueSection | None = None,
    state: DataFrame | None = None,
) -> ValueRun:
    """Fit, score and profile customer value when the run asks for it and the data can support it; a scoring run
    passes its model's ``trained`` section and applies those fits (no holdout). An incremental run passes its
    per-day ``state``, which gives the same purchase days as its lines."""
    cfg = job.cfg
    if cfg.input.kind != "transactions":
        return skipped_value("a customer table has no purchase history to model")
    if not cfg.value.enabled:
        return skipped_value("value.enabled is false")
    fits = None
    if trained is not None:
        fits = trained.fitted()
        if fits is None:
            return skipped_value(f"the model's run has no fitted value models ({trained.status}: {trained.reason})")
    if state is None:
        clean = clean_lines(validated.lines, cfg.input)
    else:
        clean = value_lines(days_in_window(state, validated.as_of, cfg.features.window_days))
    outcome = value_of_customers(
        job.spark, clean, as_of=validated.as_of, settings=cfg.value, keep=job.keep, trained=fits
    )
    if outcome.fitted is None or outcome.values is None or outcome.summary is None:
        section = ValueSection(
            status="not fitted", reason=outcome.reason, spend_left_out=outcome.spend_left_out, **_settings(job)
        )
        return ValueRun(section)
    segments = segmented.select("customer_id", SEGMENT)
    values = job.keep(outcome.values.join(segments, "customer_id", "left"))  # joined once: profiles and table
    by_segment = segment_values(values)
    calibration = None
    if cfg.value.holdout and fits is None:
        if state is None:
            holdout = later_lines(validated.lines, cfg.input)
        else:
            holdout = value_lines(days_after(state, validated.as_of))
        calibration = calibrate(
            job.spark,
            outcome.summary,
            holdout,
            fitted=outcome.fitted,
            as_of=validated.as_of,
            days=cfg.value.holdout_days,
            tuples=outcome.tuples,
        )
    settings = _settings(job) if fits is None else _trained_settings(outcome.fitted)
    section = ValueSection(
        status="fitted" if fits is None else "applied",
        purchases=_fit_entry(outcome.fitted.purchases),
        spend=_fit_entry(outcome.fitted.spend),
        customers=sum(int(r["valued_customers"]) for r in by_segment),
        longest_T=max((float(r["_longest_T"]) for r in by_segment), default=None),
        spend_left_out=outcome.spend_left_out,
        expected_purchases=round(sum(float(r["_purchases"] or 0.0) for r in by_segment), 4),
        expected_value=round(sum(float(r["expected_value"] or 0.0) for r in by_segment), 2),
        clv=round(sum(float(r["_clv"] or 0.0) for r in by_segment), 2),
        calibration=calibration.as_dict() if calibration else None,
        **settings,
    )
    tables = value_tables(job, values, outcome.fitted, key=key)
    if calibration is not None:
        tables[CALIBRATION] = TableOutput(calibration.frame(job.spark).coalesce(1))
    return ValueRun(section, by_segment, tables, calibration, values)


def value_tables(job: RunContext, values_df: DataFrame, fitted: Fitted, *, key: bytes | None) -> dict[str, TableOutput]:
    """``customer_value`` (ids pseudonymised if keyed, partitioned by segment) and ``value_model``."""
    return {
        CUSTOMER_VALUE: TableOutput(protect(values_df, key).repartition(SEGMENT), (SEGMENT,)),
        VALUE_MODEL: TableOutput(model_frame(job.spark, fitted).coalesce(1)),
    }


def skipped_value(reason: str) -> ValueRun:
    """The stage skipped, for ``reason``."""
    log.info("value: skipped: %s", reason)
    return ValueRun(ValueSection(status="skipped", reason=reason))


def _settings(job: RunContext) -> dict[str, Any]:
    value = job.cfg.value
    return {
        "model": value.model,
        "time_unit": value.time_unit,
        "horizon_days": value.horizon_days,
        "discount_rate": value.discount_rate,
    }


def _trained_settings(fitted: Fitted) -> dict[str, Any]:
    return {
        "model": fitted.purchases.model,
        "time_unit": fitted.time_unit,
        "horizon_days": fitted.horizon_days,
        "discount_rate": fitted.discount_rate,
    }


def _fit_entry(fit: models.Fit) -> ValueFitEntry:
    return ValueFitEntry(
        model=fit.model,
        estimates=fit.params,
        standard_errors={n: e if math.isfinite(e) else None for n, e in zip(fit.names, fit.standard_errors)},  # noqa: B905
        log_likelihood=fit.log_likelihood,
        customers=round(fit.customers),
        tuples=fit.tuples,
        penalty=fit.penalty,
    )


def with_value(job: RunContext, profiled: SegmentProfiles, valued: ValueRun) -> SegmentProfiles:
    """The profiles with each segment's value columns (null throughout when value was not fitted)."""
    frame = with_segment_values(job.spark, profiled.frame, valued.segment_rows)
    by_segment = {int(r[SEGMENT]): r for r in valued.segment_rows}
    empty = dict.fromkeys(VALUE_PROFILE_COLUMNS)
    rows = tuple({**row, **empty, **by_segment.get(int(row[SEGMENT]), {})} for row in profiled.rows)
    return SegmentProfiles(frame, rows)
