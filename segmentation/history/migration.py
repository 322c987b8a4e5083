"""Who moved where since the baseline: the baseline's segment of each customer, the customers and revenue that
flowed between segments (an aggregation of at most (k+1)^2 rows), the migration table, and the run's history
section of the manifest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segmentation.history.baseline import Baseline
from segmentation.history.identity import Identity, explain_changes
from segmentation.history.relation import Judged
from segmentation.model.pipeline import SEGMENT
from segmentation.publish import protect
from segmentation.publish.manifest import HistorySection, RunRef
from segmentation.publish.tables import PREVIOUS_SEGMENT

MIGRATION = "migration"
EXPECTED_VALUE = "expected_value"  # this run's expected value of a customer (segmentation.value)
NEW, INACTIVE = "new", "inactive"
UP, DOWN, SAME, ACROSS = "up", "down", "same", "across"  # across: to a segment of equal value
MIGRATION_SCHEMA = T.StructType(
    [
        T.StructField("from_segment", T.IntegerType(), True),
        T.StructField("from_name", T.StringType(), False),
        T.StructField("to_segment", T.IntegerType(), True),
        T.StructField("to_name", T.StringType(), False),
        T.StructField("customers", T.LongType(), False),
        T.StructField("share_of_from", T.DoubleType(), False),
        T.StructField("revenue_before", T.DoubleType(), True),
        T.StructField("revenue_after", T.DoubleType(), True),
        T.StructField("expected_value", T.DoubleType(), True),
        T.StructField("direction", T.StringType(), False),
        T.StructField("baseline_as_of_date", T.DateType(), False),
        T.StructField("baseline_run_id", T.StringType(), False),
    ]
)


def previous_segments(baseline: Baseline | None) -> DataFrame | None:
    """``customer_id``, ``previous_segment`` of the baseline's customers (ids as the baseline published them)."""
    if baseline is None:
        return None
    return baseline.features.select("customer_id", F.col(SEGMENT).cast("int").alias(PREVIOUS_SEGMENT))


def migration_flows(current: DataFrame, baseline: Baseline, revenue: str | None) -> list[dict[str, Any]]:
    """Customers, revenue and this run's expected value per (baseline segment, this run's segment), ``None`` for
    new / inactive customers.

    ``current`` has ``customer_id`` (as published: pseudonymised if the baseline's are), ``segment``, the
    ``revenue`` column and, when value was computed, ``expected_value``; a full outer join on the customer, then
    one aggregation of at most (k+1)^2 rows.
    """
    money = (lambda c: F.col(c).cast("double")) if revenue else (lambda c: F.lit(None).cast("double"))
    worth = F.col(EXPECTED_VALUE) if EXPECTED_VALUE in current.columns else F.lit(None).cast("double")
    after = current.select(
        "customer_id", F.col(SEGMENT).alias("_to"), money(revenue or "").alias("_after"), worth.alias("_worth")
    )
    before = baseline.features.select(
        "customer_id", F.col(SEGMENT).alias("_from"), money(revenue or "").alias("_before")
    )
    joined = after.join(before, "customer_id", "full_outer")
    rows = (
        joined.groupBy("_from", "_to")
        .agg(
            F.count(F.lit(1)).alias("customers"),
            F.sum("_before").alias("before"),
            F.sum("_after").alias("after"),
            F.sum("_worth").alias("worth"),
        )
        .collect()
    )
    flows = [
        {
            "from_segment": None if r["_from"] is None else int(r["_from"]),
            "to_segment": None if r["_to"] is None else int(r["_to"]),
            "customers": int(r["customers"]),
            "revenue_before": None if r["before"] is None else round(float(r["before"]), 2),
            "revenue_after": None if r["after"] is None else round(float(r["after"]), 2),
            "expected_value": None if r["worth"] is None else round(float(r["worth"]), 2),
        }
        for r in rows
    ]
    return sorted(flows, key=_flow_order)


def _flow_order(flow: Mapping[str, Any]) -> tuple:
    return (
        flow["from_segment"] is None,
        flow["from_segment"] or 0,
        flow["to_segment"] is None,
        flow["to_segment"] or 0,
    )


def migration_rows(
    flows: Sequence[Mapping[str, Any]],
    *,
    names: Mapping[int, str],
    baseline_names: Mapping[int, str],
    values: Mapping[int, float],
) -> list[dict[str, Any]]:
    """The migration table's rows: names, each flow's share of its from-group, and its direction.

    ``values`` rank the segments (the mean of the ordering feature, this run's value where the segment exists
    in it, else the baseline's): a move to a segment of higher value is ``up``, lower ``down``; staying is
    ``same``; customers new to this run are ``new`` and baseline customers not in it ``inactive``.
    """
    totals: dict[int | None, int] = {}
    for f in flows:
        totals[f["from_segment"]] = totals.get(f["from_segment"], 0) + f["customers"]
    rows = []
    for f in flows:
        source, target = f["from_segment"], f["to_segment"]
        if source is None:
            direction = NEW
        elif target is None:
            direction = INACTIVE
        elif source == target:
            direction = SAME
        else:
            higher, lower = values.get(target, 0.0), values.get(source, 0.0)
            direction = UP if higher > lower else DOWN if higher < lower else ACROSS
        rows.append(
            {
                "from_segment": source,
                "from_name": NEW if source is None else baseline_names.get(source, names.get(source, str(source))),
                "to_segment": target,
                "to_name": INACTIVE if target is None else names.get(target, str(target)),
                "customers": f["customers"],
                "share_of_from": f["customers"] / totals[source],
                "revenue_before": f["revenue_before"],
                "revenue_after": f["revenue_after"],
                "expected_value": f.get("expected_value"),
                "direction": direction,
            }
        )
    return rows


def migration_frame(spark: SparkSession, comparison: Comparison) -> DataFrame:
    """The migration rows as a one-partition DataFrame with ``MIGRATION_SCHEMA``; no rows without a baseline
    (every run has the table, so a re-run without a baseline replaces an earlier run's rows)."""
    baseline = comparison.baseline
    extra = {"baseline_as_of_date": baseline.as_of, "baseline_run_id": baseline.run_id} if baseline else {}
    data = [tuple({**r, **extra}[f.name] for f in MIGRATION_SCHEMA.fields) for r in comparison.rows]
    return spark.createDataFrame(data, MIGRATION_SCHEMA).coalesce(1)


def segment_values(frame: DataFrame, group: str, order_by: str | None) -> dict[int, float]:
    """Each group's mean of the ordering feature (0 for all without one), one aggregation."""
    if not order_by:
        return {}
    rows = frame.groupBy(group).agg(F.avg(order_by).alias("v")).collect()
    return {int(r[group]): float(r["v"] or 0.0) for r in rows if r[group] is not None}


@dataclass(frozen=True)
class Comparison:
    """A run against its baseline: the baseline's segment per customer, and the migration table's rows."""

    baseline: Baseline | None
    previous: DataFrame | None  # customer_id, previous_segment (for the segments table)
    rows: list[dict[str, Any]]
    changes: dict[str, list[dict[str, Any]]]


def compare(
    segmented: DataFrame,
    baseline: Baseline | None,
    *,
    identity: Identity,
    revenue: str | None,
    order_by: str | None,
    key: bytes | None,
    values: Mapping[int, float] | None = None,
    worth: DataFrame | None = None,
) -> Comparison:
    """This run against its baseline. ``segmented`` has ``customer_id``, ``segment`` and the features; ids are
    compared as published (pseudonymised with ``key`` when the run is), so pseudonyms meet pseudonyms.

    Segments are ranked by their mean ``order_by`` value: ``values`` (this run's, when known), else measured
    here; a vanished segment by its value in the baseline. ``worth`` (``customer_id``, ``expected_value``) gives
    each flow the expected value of its customers in this run.
    """
    if baseline is None:
        return Comparison(None, None, [], {})
    own = dict(values) if values is not None else segment_values(segmented, SEGMENT, order_by)
    ranked = {**segment_values(baseline.features, SEGMENT, order_by), **own}
    columns = ["customer_id", SEGMENT, *([revenue] if revenue else [])]
    current = segmented.select(*columns)
    if worth is not None:
        current = current.join(worth.select("customer_id", EXPECTED_VALUE), "customer_id", "left")
    flows = migration_flows(protect(current, key), baseline, revenue)
    baseline_names = baseline.manifest.segment_names
    rows = migration_rows(flows, names=identity.names, baseline_names=baseline_names, values=ranked)
    return Comparison(baseline, previous_segments(baseline), rows, explain_changes(identity, flows))


def history_section(
    comparison: Comparison,
    identity: Identity,
    *,
    method: str,
    match_distance: float | None,
    judged: Judged | None = None,
) -> HistorySection:
    """The manifest's ``history``: the baseline, whether it was taken (``judged``, ``history.relation``), how ids
    were kept, the matching and the migration."""
    baseline = comparison.baseline
    return HistorySection(
        baseline=RunRef(as_of_date=baseline.as_of.isoformat(), run_id=baseline.run_id, where=baseline.where)
        if baseline
        else None,
        **(judged.as_dict() if judged else {}),
        method=method if baseline else "no baseline",
        match_distance=match_distance,
        **identity.as_dict(),
        **comparison.changes,
        migration=comparison.rows,
    )
