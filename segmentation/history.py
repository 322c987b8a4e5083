"""Segments over time: a run's baseline, its segments' identity against it, who moved where, and history.

A run's *baseline* is the published run it is compared with: the one ``history.baseline`` names
(``DATE`` or ``DATE/RUN_ID``, the CLI's ``--baseline``), else the latest earlier as-of date of the same run id
under the same output (files or catalog tables). With a baseline a run

- keeps the baseline's segment ids for the same behaviours (``identity``; a frozen model's run keeps them by
  construction), measured in the baseline model's space;
- adds ``previous_segment`` (the customer's segment in the baseline; null for a customer new to it) to its
  segments table;
- publishes a ``migration`` table: from segment (``new`` for customers not in the baseline) to segment
  (``inactive`` for baseline customers not in this run), customers, share of the from-segment, revenue in
  both periods, and the direction of the move.

Membership history is every committed run's segments table read as one table with ``as_of_date`` and
``run_id`` columns: ``read`` (Spark), ``read_pandas`` (pyarrow) and ``parquet_files`` (for DuckDB or any
Parquet reader). Only committed attempts are read, never a half-written or replaced one. With catalog
tables it is the ``segments`` table itself, joined on ``runs``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segmentation import catalog, outputs, privacy, storage
from segmentation.config import InputConfig, JobConfig, unavailable_features
from segmentation.errors import InputError
from segmentation.identity import Identity, explain_changes
from segmentation.model import CLUSTER, SEGMENT, VECTOR
from segmentation.storage import Storage

log = logging.getLogger(__name__)

PREVIOUS_SEGMENT = outputs.PREVIOUS_SEGMENT
MIGRATION = "migration"
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
        T.StructField("direction", T.StringType(), False),
        T.StructField("baseline_as_of_date", T.DateType(), False),
        T.StructField("baseline_run_id", T.StringType(), False),
    ]
)
_BASELINE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:/(.+))?$")


@dataclass(frozen=True)
class Baseline:
    """A published run to compare with: where it is, its manifest, the model that defines its segments'
    space, and its features table (``customer_id``, the features, ``segment``)."""

    as_of: dt.date
    run_id: str
    where: str
    manifest: dict[str, Any]
    model_path: str
    features: DataFrame
    model: PipelineModel | None = None  # loaded by ``find_baseline``
    used_up_to: int = 0  # the highest segment id any published run of this run id, or the baseline, used

    def as_dict(self) -> dict[str, Any]:
        return {"as_of_date": self.as_of.isoformat(), "run_id": self.run_id, "where": self.where}


# ---------------------------------------------------------------- finding the baseline


def parse_baseline(text: str, run_id: str) -> tuple[dt.date, str]:
    """``DATE`` or ``DATE/RUN_ID`` (the run id defaults to this run's)."""
    problem = InputError(f"history.baseline: expected YYYY-MM-DD or YYYY-MM-DD/RUN_ID, got {text!r}")
    match = _BASELINE.match(text.strip())
    if match is None:
        raise problem
    try:
        return dt.date.fromisoformat(match.group(1)), match.group(2) or run_id
    except ValueError:
        raise problem from None


def before_reading(spark: SparkSession, cfg: JobConfig, store: Storage) -> Baseline | None:
    """The baseline when it can be found before the input is read: one named, or with ``features.as_of`` set."""
    if cfg.history.baseline is None and cfg.features.as_of is None:
        return None
    return find_baseline(spark, cfg, store, as_of=cfg.features.as_of)


def after_reading(
    spark: SparkSession, cfg: JobConfig, store: Storage, *, found: Baseline | None, as_of: dt.date
) -> Baseline | None:
    """The baseline once the as-of date is known: the one found before reading (checked to be earlier than
    this run, now that its date is known), else the latest earlier run."""
    if cfg.history.baseline is None and cfg.features.as_of is None:
        return find_baseline(spark, cfg, store, as_of=as_of)
    if found is not None:
        check_order(cfg, (found.as_of, found.run_id), as_of)
    return found


def check_order(cfg: JobConfig, named: tuple[dt.date, str], as_of: dt.date) -> None:
    """Raise InputError when a named baseline is this run itself or later than it."""
    run_id = cfg.output.run_id
    if named[0] > as_of or named == (as_of, run_id):
        raise InputError(
            f"history.baseline: {cfg.history.baseline!r} is {'this run itself' if named[0] == as_of else 'later'} "
            f"(this run is as-of {as_of.isoformat()}, run id {run_id}); name an earlier published run"
        )


def find_baseline(spark: SparkSession, cfg: JobConfig, store: Storage, *, as_of: dt.date | None) -> Baseline | None:
    """The run to compare with (see the module), checked to be comparable; None when there is none.

    With ``history.baseline`` it must exist and be committed; without, a run needs ``as_of`` to find the
    latest earlier one. Raises InputError naming the baseline when it is missing, not committed, later than
    this run, or trained on other features or id settings.
    """
    if not cfg.history.enabled:
        return None
    run_id = cfg.output.run_id
    named = parse_baseline(cfg.history.baseline, run_id) if cfg.history.baseline else None
    if named is None and as_of is None:
        return None
    if named is not None and as_of is not None:
        check_order(cfg, named, as_of)
    if cfg.output.catalog.enabled:
        baseline = _catalog_baseline(spark, cfg, named, as_of, run_id)
    else:
        baseline = _files_baseline(spark, store, named, as_of, run_id)
    if baseline is None:
        log.info("no earlier published run of run id %s: this run has no baseline", run_id)
        return None
    check_comparable(baseline, cfg)
    window = (baseline.manifest["config"].get("features") or {}).get("window_days")
    if cfg.input.kind == "transactions" and window != cfg.features.window_days:
        log.warning(
            "the baseline's features.window_days is %s and this run's %s: segments are matched, but their values "
            "measure periods of different lengths",
            window,
            cfg.features.window_days,
        )
    try:
        model = PipelineModel.load(baseline.model_path)
    except Exception as exc:  # a missing or unreadable folder: Spark's errors differ by version and mode
        raise InputError(
            f"history.baseline: cannot load the model of the baseline run (as-of {baseline.as_of.isoformat()}, run "
            f"id {baseline.run_id}) from {baseline.model_path} ({type(exc).__name__})"
        ) from None
    used = max(max_segment_id(baseline.manifest), *_ids_used(spark, cfg, store, run_id), 0)
    log.info("baseline: as-of %s, run id %s", baseline.as_of.isoformat(), baseline.run_id)
    return dataclasses.replace(baseline, model=model, used_up_to=used)


def _ids_used(spark: SparkSession, cfg: JobConfig, store: Storage, run_id: str) -> list[int]:
    """The highest segment id of every published run of ``run_id`` (so a backfill or an older baseline never
    hands out an id a later run already gave)."""
    if cfg.output.catalog.enabled:
        runs = catalog.table_name(cfg.output.catalog, catalog.RUNS)
        rows = spark.table(runs).where(F.col(catalog.RUN_ID) == run_id).select("manifest_json").collect()
        return [max_segment_id(json.loads(r["manifest_json"])) for r in rows]
    found = []
    for as_of, rid in outputs.published_runs(store):
        if rid == run_id:
            found.append(max_segment_id(outputs.read_manifest(store, outputs.resolve_run(store, as_of, rid))))
    return found


def _files_baseline(
    spark: SparkSession, store: Storage, named: tuple[dt.date, str] | None, as_of: dt.date | None, run_id: str
) -> Baseline | None:
    if named is None:
        assert as_of is not None
        earlier = [(d, r) for d, r in outputs.published_runs(store) if r == run_id and d < as_of]
        if not earlier:
            return None
        named = max(earlier)
    folder = outputs.run_folder(store.root, *named)
    try:
        attempt = outputs.resolve_run(storage.for_root(spark, folder))
    except InputError as exc:
        published = ", ".join(f"{d.isoformat()}/{r}" for d, r in outputs.published_runs(store)) or "none"
        raise InputError(
            f"history.baseline: no committed run of as-of date {named[0].isoformat()}, run id {named[1]} under "
            f"{store.root} ({exc}); published runs there: {published}"
        ) from None
    manifest = outputs.read_manifest(store, attempt)
    return Baseline(
        named[0],
        named[1],
        attempt,
        manifest,
        _model_path(manifest, outputs.table_path(attempt, outputs.MODEL)),
        spark.read.parquet(outputs.table_path(attempt, "features")),
    )


def _catalog_baseline(
    spark: SparkSession, cfg: JobConfig, named: tuple[dt.date, str] | None, as_of: dt.date | None, run_id: str
) -> Baseline | None:
    settings = cfg.output.catalog
    runs_table = catalog.table_name(settings, catalog.RUNS)
    if named is None:
        assert as_of is not None
        if not spark.catalog.tableExists(runs_table):
            return None
        earlier = (
            spark.table(runs_table)
            .where((F.col(catalog.RUN_ID) == run_id) & (F.col(catalog.AS_OF_DATE) < F.lit(as_of)))
            .agg(F.max(catalog.AS_OF_DATE).alias("d"))
            .first()
        )
        if earlier is None or earlier["d"] is None:
            return None
        named = (earlier["d"], run_id)
    row = catalog.run_row(spark, settings, as_of=named[0], run_id=named[1])
    if row is None:
        raise InputError(
            f"history.baseline: no committed run of as-of date {named[0].isoformat()}, run id {named[1]} in "
            f"{runs_table}"
        )
    manifest = json.loads(row["manifest_json"])
    features = spark.table(catalog.table_name(settings, "features")).where(catalog.partition_condition(*named))
    features = features.drop(catalog.AS_OF_DATE, catalog.RUN_ID)
    return Baseline(named[0], named[1], runs_table, manifest, _model_path(manifest, row["model_path"]), features)


def _model_path(manifest: Mapping[str, Any], own: str | None) -> str:
    """The model whose space a run's segments live in: its own, or for a scoring run the model it used."""
    if manifest.get("kind") == "scoring":
        return outputs.table_path(manifest["model"]["run_folder"], outputs.MODEL)
    if own is None:
        raise InputError("history.baseline: the baseline run names no model")
    return own


def model_inputs(settings: Mapping[str, Any]) -> dict[str, Any]:
    """What a run's model was fitted on, from its configuration (as in a manifest's ``config``)."""
    kind = settings["input"]["kind"]
    if kind == "customers":
        c = settings["input"]["customers"]
        columns = ("numeric_columns", "categorical_columns", "log_columns")
        return {"kind": kind, **{name: list(c[name]) for name in columns}}
    f, left_out = settings["features"], unavailable_features(InputConfig.model_validate(settings["input"]))
    used = [name for name in f["model_features"] if name not in left_out]  # as model.feature_spec uses them
    return {"kind": kind, "model_features": used, "log_features": list(f["log_features"])}


def check_comparable(baseline: Baseline, cfg: JobConfig) -> None:
    """Raise InputError unless the baseline's model used this run's features and id settings."""
    name = f"the baseline run (as-of {baseline.as_of.isoformat()}, run id {baseline.run_id}, in {baseline.where})"
    theirs, mine = model_inputs(baseline.manifest["config"]), model_inputs(cfg.to_dict())
    if theirs != mine:
        differ = ", ".join(k for k in sorted(set(theirs) | set(mine)) if theirs.get(k) != mine.get(k))
        raise InputError(
            f"history.baseline: {name} was trained on other model inputs ({differ}: {theirs} against this run's "
            f"{mine}); segments of different features cannot be matched. Name a comparable baseline, or set "
            "history.enabled=false to start a new line of runs (a new output.run_id keeps both)"
        )
    pseudonymised = bool(baseline.manifest["config"].get("privacy", {}).get("pseudonymize_ids"))
    if pseudonymised != cfg.privacy.pseudonymize_ids:
        raise InputError(
            f"privacy.pseudonymize_ids: {name} has {'pseudonymised' if pseudonymised else 'plain'} customer ids "
            "and this run would not, so its customers cannot be followed; use the same privacy settings"
        )


def max_segment_id(manifest: Mapping[str, Any]) -> int:
    """The highest segment id a run or any run before it used (new behaviours are numbered after it)."""
    recorded = (manifest.get("history") or {}).get("max_segment_id") or 0
    return max([int(recorded), *(int(s["segment"]) for s in manifest.get("segments", []))])


# ---------------------------------------------------------------- measuring and matching


def centroids_in(space: PipelineModel, frame: DataFrame, group: str) -> dict[int, list[float]]:
    """The mean of each ``group``'s customers in the space of ``space`` (a fitted model: every step before its
    KMeans), one aggregation."""
    preprocessing = PipelineModel(stages=space.stages[:-1])
    width = len(space.stages[-1].clusterCenters()[0])
    vectors = preprocessing.transform(frame).select(group, vector_to_array(VECTOR).alias("_v"))
    means = vectors.groupBy(group).agg(*[F.avg(F.col("_v")[i]).alias(f"_c{i}") for i in range(width)]).collect()
    return {int(r[group]): [float(r[f"_c{i}"]) for i in range(width)] for r in means}


def baseline_centroids(baseline: Baseline, assigned: DataFrame, mapping: Mapping[int, int]) -> tuple[dict, dict]:
    """The centroids of this run's segments (by provisional id, from cluster labels) and of the baseline's
    segments, both in the baseline model's space."""
    space = baseline.model or PipelineModel.load(baseline.model_path)
    by_cluster = centroids_in(space, assigned, CLUSTER)
    current = {mapping[c]: v for c, v in by_cluster.items() if c in mapping}
    return current, centroids_in(space, baseline.features, SEGMENT)


# ---------------------------------------------------------------- previous segment and migration


def previous_segments(baseline: Baseline | None) -> DataFrame | None:
    """``customer_id``, ``previous_segment`` of the baseline's customers (ids as the baseline published them)."""
    if baseline is None:
        return None
    return baseline.features.select("customer_id", F.col(SEGMENT).cast("int").alias(PREVIOUS_SEGMENT))


def migration_flows(current: DataFrame, baseline: Baseline, revenue: str | None) -> list[dict[str, Any]]:
    """Customers and revenue per (baseline segment, this run's segment), ``None`` for new / inactive customers.

    ``current`` has ``customer_id`` (as published: pseudonymised if the baseline's are), ``segment`` and the
    ``revenue`` column; a full outer join on the customer, then one aggregation of at most (k+1)^2 rows.
    """
    money = (lambda c: F.col(c).cast("double")) if revenue else (lambda c: F.lit(None).cast("double"))
    after = current.select("customer_id", F.col(SEGMENT).alias("_to"), money(revenue or "").alias("_after"))
    before = baseline.features.select(
        "customer_id", F.col(SEGMENT).alias("_from"), money(revenue or "").alias("_before")
    )
    joined = after.join(before, "customer_id", "full_outer")
    rows = (
        joined.groupBy("_from", "_to")
        .agg(F.count(F.lit(1)).alias("customers"), F.sum("_before").alias("before"), F.sum("_after").alias("after"))
        .collect()
    )
    flows = [
        {
            "from_segment": None if r["_from"] is None else int(r["_from"]),
            "to_segment": None if r["_to"] is None else int(r["_to"]),
            "customers": int(r["customers"]),
            "revenue_before": None if r["before"] is None else round(float(r["before"]), 2),
            "revenue_after": None if r["after"] is None else round(float(r["after"]), 2),
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
) -> Comparison:
    """This run against its baseline. ``segmented`` has ``customer_id``, ``segment`` and the features; ids are
    compared as published (pseudonymised with ``key`` when the run is), so pseudonyms meet pseudonyms.

    Segments are ranked by their mean ``order_by`` value: ``values`` (this run's, when known), else measured
    here; a vanished segment by its value in the baseline.
    """
    if baseline is None:
        return Comparison(None, None, [], {})
    own = dict(values) if values is not None else segment_values(segmented, SEGMENT, order_by)
    ranked = {**segment_values(baseline.features, SEGMENT, order_by), **own}
    columns = ["customer_id", SEGMENT, *([revenue] if revenue else [])]
    flows = migration_flows(privacy.protect(segmented.select(*columns), key), baseline, revenue)
    baseline_names = {int(s["segment"]): str(s["name"]) for s in baseline.manifest["segments"]}
    rows = migration_rows(flows, names=identity.names, baseline_names=baseline_names, values=ranked)
    return Comparison(baseline, previous_segments(baseline), rows, explain_changes(identity, flows))


def manifest_entry(comparison: Comparison, identity: Identity, *, method: str, match_distance: float | None) -> dict:
    """The manifest's ``history``: the baseline, how ids were kept, the matching and the migration."""
    return {
        "baseline": comparison.baseline.as_dict() if comparison.baseline else None,
        "method": method if comparison.baseline else "no baseline",
        "match_distance": match_distance,
        **identity.as_dict(),
        **comparison.changes,
        "migration": comparison.rows,
    }


# ---------------------------------------------------------------- reading history


@dataclass(frozen=True)
class PublishedRun:
    """One committed run under an output root."""

    as_of: dt.date
    run_id: str
    folder: str  # its committed attempt folder


def published(store: Storage, run_id: str | None = None) -> list[PublishedRun]:
    """Every committed run under the root (of ``run_id`` if given), oldest first."""
    found = []
    for as_of, rid in outputs.published_runs(store):
        if run_id in (None, rid):
            folder = outputs.resolve_run(store, as_of, rid)
            found.append(PublishedRun(as_of, rid, folder))
    return found


def read(spark: SparkSession, root: str, table: str = "segments", *, run_id: str | None = None) -> DataFrame:
    """One table of every committed run under ``root`` as one DataFrame, with ``as_of_date`` and ``run_id``.

    The committed attempts' table folders, each read as Parquet, as one union; runs without that table are
    skipped (and columns a run lacks are null).
    """
    store = outputs.open_run(spark, root)
    runs = [r for r in published(store, run_id) if store.exists(outputs.table_path(r.folder, table))]
    if not runs:
        raise InputError(f"{root}: no published run has a {table} table")
    frames = [
        spark.read.parquet(outputs.table_path(r.folder, table)).withColumns(
            {"as_of_date": F.lit(r.as_of), "run_id": F.lit(r.run_id)}
        )
        for r in runs
    ]
    # one read per run: Spark infers partition columns (``segment=…``) below one root per read
    return functools.reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)


def parquet_files(root: str, table: str = "segments", *, run_id: str | None = None) -> list[str]:
    """The Parquet files of one table of every committed run under a local ``root`` (for DuckDB, pyarrow...).

    Their paths hold ``as_of_date=…/run_id=…`` (and ``segment=…`` for segments), so a reader with Hive
    partitioning (``duckdb.read_parquet(files, hive_partitioning=True)``) gets those as columns.
    """
    store = storage.for_root(None, root)
    files = []
    for run in published(store, run_id):
        files += _parquet_under(store, outputs.table_path(run.folder, table))
    return files


def _parquet_under(store: Storage, folder: str) -> list[str]:
    found = []
    for entry in store.list(folder):
        path = store.join(folder, entry.name)
        if entry.is_dir and "=" in entry.name:
            found += _parquet_under(store, path)
        elif entry.name.endswith(".parquet") and not entry.name.startswith(("_", ".")):
            found.append(path)
    return sorted(found)


def read_pandas(root: str, table: str = "segments", *, run_id: str | None = None) -> pd.DataFrame:
    """One table of every committed run under a local ``root`` as one pandas frame, with ``as_of_date`` and
    ``run_id`` (and the table's own partition columns), read with pyarrow."""
    import pyarrow.dataset as ds

    store = storage.for_root(None, root)
    frames = []
    for run in published(store, run_id):
        folder = outputs.table_path(run.folder, table)
        if not store.exists(folder):
            continue
        frame = ds.dataset(folder, format="parquet", partitioning="hive").to_table().to_pandas()
        frames.append(frame.assign(as_of_date=run.as_of, run_id=run.run_id))
    if not frames:
        raise InputError(f"{root}: no published run has a {table} table")
    return pd.concat(frames, ignore_index=True)
