"""The segmentation job: read and validate, features, sweep over k, choose k, final model, profiles, history,
write, report, publish.

``run`` takes a session it is handed (it never creates one, sets its master or stops it) and a validated
configuration; ``runtime.context.RunContext`` gives it the skeleton every run shares, so ``run`` reads as its
stages.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from pyspark.ml import PipelineModel
from pyspark.ml.clustering import KMeansModel
from pyspark.sql import DataFrame, SparkSession

from segmentation.config import JobConfig
from segmentation.errors import InputError, RunFailed, summary
from segmentation.history import baseline as baselines
from segmentation.history import identity as identities
from segmentation.history import relation
from segmentation.history.migration import MIGRATION, compare, history_section, migration_frame
from segmentation.input.validate import Validated
from segmentation.jobs import checks, incremental
from segmentation.jobs.value import value_run, with_value
from segmentation.model import pipeline, selection, sweep
from segmentation.model.local_kmeans import DRIVER_MAX_ROWS
from segmentation.model.metrics import KResult
from segmentation.model.profiles import RepeatSplit, SegmentProfiles, profile_segments
from segmentation.model.profiles import repeat_splits as find_repeat_splits
from segmentation.model.sweep_text import metrics_table
from segmentation.publish import Publisher, TableOutput, load_key, read_manifest
from segmentation.publish.checks import DriftSection, Extreme
from segmentation.publish.manifest import (
    SEGMENTATION,
    HistorySection,
    Manifest,
    ReportInfo,
    SweepSample,
    ValueSection,
    build,
)
from segmentation.publish.tables import run_tables
from segmentation.report import RFM, SAMPLE_TABLE, render, report_inputs
from segmentation.report.sample import CustomerSample, customer_sample
from segmentation.runtime import tracking
from segmentation.runtime.context import RunContext, RunSummary, releasing_models

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RunResult(RunSummary):
    """What a segmentation run published: its sweep and the choice of k besides the common fields."""

    run_id: str
    sweep: list[KResult]
    choice: selection.Choice


@dataclass(frozen=True)
class SweptK:
    """The sweep stage's results: the fitted preprocessing, every customer's vector, the metrics and the choice."""

    preprocessing: PipelineModel
    vectors: DataFrame
    results: list[KResult]
    fitted: dict[int, KMeansModel]  # the sweep's MLlib models by k (none from the driver engine)
    choice: selection.Choice
    sample_size: int  # customers the sweep ran on (all of them, or a seeded sample)
    on_sample: bool


@dataclass(frozen=True)
class FinalModel:
    """The final model from features to cluster, its KMeans step, every customer's segment, and the segments'
    identity against the baseline (with each segment's mean of the ordering feature, which ranks them)."""

    full_model: PipelineModel
    clusterer: KMeansModel
    mapping: dict[int, int]
    names: dict[int, str]
    segmented: DataFrame
    identity: identities.Identity
    values: dict[int, float]


@releasing_models
def run(spark: SparkSession, cfg: JobConfig) -> RunResult:
    """Run the whole job on ``spark`` and publish its outputs under ``cfg.output.path`` (see ``RunContext``); the
    run's models are released on the way out, also after a failure."""
    key = load_key(cfg.privacy)
    tracking.check_available(cfg.mlflow)
    spec = pipeline.feature_spec(cfg)
    with RunContext(spark, cfg) as job:
        baseline = baselines.before_reading(job.publisher, cfg)
        validated, increment = incremental.read_input(job)
        baseline = baselines.after_reading(job.publisher, cfg, found=baseline, as_of=validated.as_of)
        with job.stage("features"):
            extremes = checks.extremes(job, validated)
            table = incremental.feature_table_of(validated, cfg, increment)
            feature_df = job.keep(table.frame)
            customers = feature_df.count()
            _check_enough_customers(customers, cfg)
            judged = relation.judge(
                baseline, cfg, feature_df, customers=customers, key=key, earlier=_earlier(job.publisher, cfg)
            )
            baseline = judged.baseline  # None when none was found, or one found was unrelated to this input
        with job.stage("sweep"):
            swept = sweep_k(job, feature_df, customers=customers, spec=spec)
        with job.stage("final_model"):
            final = final_model(job, feature_df, swept, spec=spec, baseline=baseline, used_up_to=judged.used_up_to)
        with job.stage("profiles"):
            profiled = profile_segments(final.segmented, spec, table.revenue_column, names=final.names)
        with job.stage("value"):
            valued = value_run(job, validated, final.segmented, key=key, state=incremental.state_of(increment))
            profiled = with_value(job, profiled, valued)
        with job.stage("history"):
            comparison = compare(
                final.segmented,
                baseline,
                identity=final.identity,
                revenue=table.revenue_column,
                order_by=spec.order_by,
                key=key,
                values=final.values,
                worth=valued.values,
            )
        with job.stage("drift"):
            drifted = checks.drift_section(
                job,
                validated,
                baseline,
                segmented=final.segmented,
                features=spec.numeric,
                logged=spec.log,
                customers=customers,
                flows=comparison.rows,
            )
        with job.stage("write"):
            tables = run_tables(final.segmented, profiled.frame, validated, key=key, previous=comparison.previous)
            tables.update(valued.tables)
            tables.update(incremental.state_tables(increment))
            tables[MIGRATION] = TableOutput(migration_frame(spark, comparison))
            tables[checks.DRIFT] = TableOutput(checks.drift_frame(spark, drifted))
            metrics = sweep.metrics_frame(spark, swept.results, chosen=swept.choice.k, elbow=swept.choice.elbow)
            tables["sweep"] = TableOutput(metrics.coalesce(1))
            job.stage_outputs(validated.as_of, tables, final.full_model)
        with job.stage("report"):
            sample = report_sample(job, feature_df, final, customers=customers)
            history = history_section(
                comparison,
                final.identity,
                method="centroid matching",
                match_distance=cfg.history.match_distance,
                judged=judged,
            )
            manifest = run_manifest(
                job,
                validated,
                customers=customers,
                swept=swept,
                final=final,
                profiled=profiled,
                sample=sample,
                history=history,
                value=valued.section,
                increment=increment,
                extremes=extremes,
                drift=drifted,
            )
            inputs = report_inputs(manifest, pd.DataFrame(list(profiled.rows)), sample.frame.toPandas())
            job.stage_report(render(inputs))
        with job.stage("publish"):
            incremental.check_still_newest(job, increment)
            folder = job.publish(manifest)
    log.info("published %s", folder)
    if cfg.mlflow.enabled:
        _track(job, folder)
    log.info("timings: %s", job.timer.as_dict())
    return RunResult(
        run_id=cfg.output.run_id,
        as_of=validated.as_of,
        output_root=job.root,
        run_folder=folder,
        counts=validated.counts,
        customers=customers,
        sweep=swept.results,
        choice=swept.choice,
        segment_sizes=profiled.sizes,
        segment_names=final.names,
        timings=job.timer.as_dict(),
        report=job.publisher.report_location(),
        incremental=increment.section if increment else None,
        drift=drifted,
    )


def sweep_k(job: RunContext, feature_df: DataFrame, *, customers: int, spec: pipeline.FeatureSpec) -> SweptK:
    """Fit the preprocessing, then KMeans over the range of k (on a seeded sample above a size), and choose k."""
    settings = job.cfg.model
    fit_input = model_input(feature_df, customers, settings.customers_per_partition)
    prep = pipeline.fit_preprocessing(
        fit_input, spec, fence_iqr=settings.outlier_fence_iqr, max_share=settings.outlier_max_share
    )
    vectors = job.keep(prep.transform(fit_input).select("customer_id", pipeline.VECTOR))
    ks = [settings.k] if settings.k else list(range(settings.k_min, min(settings.k_max, customers) + 1))
    swept_on, sample_size = vectors, customers
    on_sample = customers > settings.sweep_max_customers and settings.k is None
    if on_sample:
        fraction = settings.sweep_max_customers / customers
        swept_on = vectors.sample(fraction=fraction, seed=settings.seed)
    rules = job.cfg.selection
    contention = lambda r: selection.in_contention(r, rules)  # noqa: E731
    fitted: dict[int, KMeansModel] = {}
    if settings.sweep_engine == "driver" and min(customers, settings.sweep_max_customers) <= DRIVER_MAX_ROWS:
        points = sweep.driver_points(swept_on)
        sample_size = len(points)
        results = sweep.run_driver_sweep(points, ks, settings, in_contention=contention)
    else:
        if on_sample:
            # in as few partitions as the model's input of that size: every Lloyd iteration costs a task per
            # partition
            swept_on = job.keep(model_input(swept_on, settings.sweep_max_customers, settings.customers_per_partition))
            sample_size = swept_on.count()
        results, fitted = sweep.run_sweep(swept_on, ks, settings, in_contention=contention)
        job.release_models()  # the other seeds' models, before the next Spark call
    if on_sample:
        log.info("the sweep ran on a seeded sample of %d of %d customers", sample_size, customers)
    choice = selection.choose_k(results, rules, settings.k)
    for line in metrics_table(results, chosen=choice.k, elbow=choice.elbow):
        log.info("sweep %s", line)
    log.info("chose %s", choice.reason)
    return SweptK(prep, vectors, results, fitted, choice, sample_size, on_sample=on_sample)


def final_model(
    job: RunContext,
    feature_df: DataFrame,
    swept: SweptK,
    *,
    spec: pipeline.FeatureSpec,
    baseline: baselines.Baseline | None,
    used_up_to: int = 0,
) -> FinalModel:
    """The chosen k's model (fitted again on everyone if the sweep saw a sample), segment ids and names.

    Without a baseline (none found, or the one found ignored as unrelated to this input: ``history.relation``),
    ids follow the value order (1 = highest); with one, each segment that is a baseline behaviour keeps its id
    and name and a new one gets a new id (``history.identity``); ``used_up_to``: the highest id its run id
    used (a run without a baseline numbers its segments after it).
    """
    chosen = swept.fitted.get(swept.choice.k)
    if swept.on_sample or chosen is None:  # the sweep saw a sample, or ran in the driver: fit on everyone
        chosen = sweep.fit_best(swept.vectors, swept.choice.k, job.cfg.model)
        job.release_models()  # the other seeds' models, before the next Spark call
    full = pipeline.full_model(swept.preprocessing, chosen)
    assigned = job.keep(full.transform(feature_df).select(*feature_df.columns, pipeline.CLUSTER))
    stats = pipeline.cluster_stats(assigned, spec.order_by)
    order = pipeline.segment_order(stats)
    own_names = pipeline.segment_names(chosen, order, spec, kind=job.cfg.input.kind)
    if baseline is None:
        ident = identities.first_run(own_names, used_up_to=used_up_to)
    else:
        current, previous = baselines.baseline_centroids(baseline, assigned, order)
        ident = identities.match(
            current,
            previous,
            current_names=own_names,
            baseline_names=baseline.manifest.segment_names,
            max_distance=job.cfg.history.match_distance,
            used_up_to=baseline.used_up_to,
        )
        log.info("segments matched to the baseline: %s", ident.as_dict())
    mapping = {cluster: ident.ids[segment] for cluster, segment in order.items()}
    values = {mapping[int(r["cluster"])]: float(r["order_value"] or 0.0) for r in stats}
    segmented = pipeline.with_segments(assigned, mapping, ident.names)
    return FinalModel(full, chosen, mapping, ident.names, segmented, ident, values)


def report_sample(job: RunContext, feature_df: DataFrame, final: FinalModel, *, customers: int) -> CustomerSample:
    """The report's sample of customers in two dimensions, staged with the run as a table."""
    sample = customer_sample(
        feature_df,
        final.full_model,
        final.mapping,
        customers=customers,
        seed=job.cfg.model.seed,
        extra_columns=RFM,
        axes=tuple(job.cfg.report.scatter_features) or None,  # type: ignore[arg-type]
    )
    assert job.attempt is not None
    job.stage_outputs(job.attempt.as_of, {SAMPLE_TABLE: TableOutput(sample.frame.coalesce(1))})
    return sample


def run_manifest(
    job: RunContext,
    validated: Validated,
    *,
    customers: int,
    swept: SweptK,
    final: FinalModel,
    profiled: SegmentProfiles,
    sample: CustomerSample,
    history: HistorySection,
    value: ValueSection,
    increment: incremental.Increment | None = None,
    extremes: list[Extreme] | None = None,
    drift: DriftSection | None = None,
) -> Manifest:
    """The run's manifest: what every run records, plus the sweep, the choice of k, centroids, segments that
    split one behaviour into one-time and repeat buyers, and the report's."""
    splits = final_repeat_splits(final, profiled, pipeline.feature_spec(job.cfg))
    for split in splits:
        log.info("one-time / repeat split: %s", split.as_dict())
    assert job.attempt is not None
    return build(
        SEGMENTATION,
        job.cfg,
        attempt=job.attempt,
        spark_version=job.spark.version,
        counts={**validated.counts.as_dict(), "customers": customers, "exact_copies": validated.exact_copies},
        mapping=final.mapping,
        profile_rows=profiled.rows,
        history=history,
        sweep=[r.as_row() for r in swept.results],
        chosen_k=swept.choice.k,
        choice_reason=swept.choice.reason,
        elbow_k=swept.choice.elbow,
        sweep_sample=SweepSample(used=swept.on_sample, customers=swept.sample_size),
        model_features=list(pipeline.feature_spec(job.cfg).numeric),
        centroids=[[float(v) for v in c] for c in final.clusterer.clusterCenters()],
        repeat_splits=[split.as_dict() for split in splits],
        report=ReportInfo(centroids_2d=sample.centroids_2d, axes=sample.axes),
        value=value,
        incremental=increment.section if increment else None,
        extremes=extremes,
        drift=drift,
    )


def final_repeat_splits(final: FinalModel, profiled: SegmentProfiles, spec: pipeline.FeatureSpec) -> list[RepeatSplit]:
    """Segments of the final model that split one behaviour into one-time and repeat buyers (``model.profiles``)."""
    width = len(spec.numeric)
    centres = {
        final.mapping[label]: [float(v) for v in centre[:width]]
        for label, centre in enumerate(final.clusterer.clusterCenters())
        if label in final.mapping
    }
    return find_repeat_splits(profiled.rows, centres, spec.numeric)


def model_input(feature_df: DataFrame, customers: int, customers_per_partition: int) -> DataFrame:
    """The feature table in a partition count set by its size, rows sorted by customer id.

    That makes the KMeans fits repeatable on any cluster (its initialisation samples per partition, and a
    shuffle's output order otherwise depends on which task finished first) and keeps small data in few
    partitions, where every Lloyd iteration costs a task per partition.
    """
    partitions = max(1, math.ceil(customers / customers_per_partition))
    return feature_df.repartition(partitions, "customer_id").sortWithinPartitions("customer_id")


def _check_enough_customers(customers: int, cfg: JobConfig) -> None:
    needed = cfg.model.k or cfg.model.k_min
    key = "model.k" if cfg.model.k else "model.k_min"
    if customers < needed:
        raise InputError(
            f"{key}: the input {cfg.input.source!r} has {customers} valid customers, fewer than the {needed} "
            "segments asked for; nothing was published"
        )


def _track(job: RunContext, folder: str) -> None:
    """Log the published run to MLflow: after publishing, so the run is valid whether or not MLflow takes it."""
    with job.stage("track"):
        try:
            artifacts = {name: job.storage.local_folder(job.storage.join(folder, name)) for name in ("model", "report")}
            manifest = read_manifest(job.storage, folder)
            tracking.log_run(job.cfg.mlflow, folder, manifest, artifacts={k: v for k, v in artifacts.items() if v})
        except Exception as exc:  # MLflow's own errors, a tracking server that is down, ...
            raise RunFailed(
                f"stage track failed ({type(exc).__name__}: {summary(exc)}); the run is published "
                f"at {folder}, but it is not in MLflow"
            ) from exc


def _earlier(publisher: Publisher, cfg: JobConfig) -> Callable[[baselines.Baseline], baselines.Baseline | None] | None:
    """The run before a found baseline (for ``relation.judge`` to look further back); none for a named one."""
    if cfg.history.baseline is not None:
        return None
    return lambda found: baselines.find_baseline(publisher, cfg, as_of=found.as_of)
