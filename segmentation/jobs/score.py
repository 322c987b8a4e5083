"""Scoring new customers with a published run's model: same validation and features, the training run's
segment ids and names, the same output layout (without a sweep, a new model or a report)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.ml import PipelineModel
from pyspark.sql import SparkSession

from segmentation.config import JobConfig, PrivacyConfig, unavailable_features
from segmentation.errors import ConfigError, InputError
from segmentation.history import baseline as baselines
from segmentation.history import relation
from segmentation.history.identity import Identity
from segmentation.history.migration import MIGRATION, compare, history_section, migration_frame
from segmentation.jobs import checks, incremental
from segmentation.jobs.value import skipped_value, value_run, with_value
from segmentation.model import pipeline
from segmentation.model.profiles import profile_segments
from segmentation.publish import (
    MODEL,
    Manifest,
    Publisher,
    TableOutput,
    for_root,
    load_key,
    read_manifest,
    resolve_run,
    table_path,
)
from segmentation.publish.manifest import SCORING, ModelRef, build
from segmentation.publish.tables import run_tables
from segmentation.runtime.context import RunContext, RunSummary, releasing_models


@dataclass(frozen=True, kw_only=True)
class ScoreResult(RunSummary):
    """What a scoring run published, and the as-of date of the model it used."""

    model_as_of: dt.date


@releasing_models
def score(
    spark: SparkSession,
    cfg: JobConfig,
    model_path: str,
    *,
    model_as_of: dt.date | None = None,
    model_run_id: str | None = None,
) -> ScoreResult:
    """Assign the customers of ``cfg.input`` to the segments of a published run, and publish them like a run.

    ``model_path`` is a published run folder, or an output root (then the run of ``model_as_of`` /
    ``model_run_id``, or the one its ``latest`` file names). The loaded models are released on the way out.
    """
    try:
        model_store = for_root(spark, model_path)
        model_folder = resolve_run(model_store, model_as_of, model_run_id)
        trained = read_manifest(model_store, model_folder)
    except (InputError, ConfigError) as exc:
        raise InputError(f"--model: {exc}") from None
    cfg = training_config(cfg, trained, model_folder)
    cfg = cfg.model_copy(update={"privacy": _privacy_of(cfg, trained)})  # recorded as applied, compared so
    if cfg.input.incremental and cfg.privacy.pseudonymize_ids:
        raise ConfigError(
            f"input.incremental: the model in {model_folder!r} pseudonymised its customer ids, so this scoring run "
            "does too, and an incremental state would keep the raw ids; score without --incremental"
        )
    key = load_key(cfg.privacy)
    mapping, names = trained.mapping, trained.segment_names
    spec = pipeline.feature_spec(cfg)
    with RunContext(spark, cfg) as job:
        baseline = baselines.before_reading(job.publisher, cfg)
        with job.stage("load_model"):
            fitted = PipelineModel.load(table_path(model_folder, MODEL))
        validated, increment = incremental.read_input(job)
        baseline = baselines.after_reading(job.publisher, cfg, found=baseline, as_of=validated.as_of)
        with job.stage("features"):
            extremes = checks.extremes(job, validated)
            table = incremental.feature_table_of(validated, cfg, increment)
            feature_df = job.keep(table.frame)
            customers = feature_df.count()
            judged = relation.judge(
                baseline, cfg, feature_df, customers=customers, key=key, earlier=_earlier(job.publisher, cfg)
            )
            baseline = judged.baseline  # None when none was found, or one found was unrelated to this input
        with job.stage("assign"):
            assigned = fitted.transform(feature_df).select(*feature_df.columns, pipeline.CLUSTER)
            segmented = job.keep(pipeline.with_segments(assigned, mapping, names))
        with job.stage("profiles"):
            profiled = profile_segments(segmented, spec, table.revenue_column, names=names)
        with job.stage("value"):
            valued = (
                value_run(
                    job, validated, segmented, key=key, trained=trained.value, state=incremental.state_of(increment)
                )
                if trained.value is not None
                else skipped_value("the model's run was published before value models")
            )
            profiled = with_value(job, profiled, valued)
        with job.stage("history"):  # a frozen model keeps its segments' ids and names by construction
            used = max([*names, trained.max_segment_id, baseline.used_up_to if baseline else 0])
            kept = Identity({s: s for s in names}, dict(names), max_segment_id=used)
            comparison = compare(
                segmented,
                baseline,
                identity=kept,
                revenue=table.revenue_column,
                order_by=spec.order_by,
                key=key,
                worth=valued.values,
            )
        with job.stage("drift"):
            drifted = checks.drift_section(
                job,
                validated,
                baseline,
                segmented=segmented,
                features=spec.numeric,
                logged=spec.log,
                customers=customers,
                flows=comparison.rows,
            )
        with job.stage("write"):
            tables = run_tables(segmented, profiled.frame, validated, key=key, previous=comparison.previous)
            tables[MIGRATION] = TableOutput(migration_frame(spark, comparison))
            tables[checks.DRIFT] = TableOutput(checks.drift_frame(spark, drifted))
            tables.update(valued.tables)
            tables.update(incremental.state_tables(increment))
            attempt = job.stage_outputs(validated.as_of, tables)
        with job.stage("publish"):
            manifest = build(
                SCORING,
                cfg,
                attempt=attempt,
                spark_version=spark.version,
                counts={**validated.counts.as_dict(), "customers": customers, "exact_copies": validated.exact_copies},
                mapping=mapping,
                profile_rows=profiled.rows,
                history=history_section(comparison, kept, method="frozen model", match_distance=None, judged=judged),
                model=ModelRef(run_folder=model_folder, as_of_date=trained.as_of_date, run_id=trained.run_id),
                value=valued.section,
                incremental=increment.section if increment else None,
                extremes=extremes,
                drift=drifted,
            )
            incremental.check_still_newest(job, increment)
            folder = job.publish(manifest)
    return ScoreResult(
        as_of=validated.as_of,
        model_as_of=dt.date.fromisoformat(trained.as_of_date),
        output_root=job.root,
        run_folder=folder,
        counts=validated.counts,
        customers=customers,
        segment_sizes=profiled.sizes,
        segment_names=names,
        timings=job.timer.as_dict(),
        incremental=increment.section if increment else None,
        drift=drifted,
        run_id=cfg.output.run_id,
    )


def training_config(cfg: JobConfig, trained: Manifest, model_folder: str) -> JobConfig:
    """The scoring config with the training run's model inputs, after checking the input kinds agree."""
    trained_kind = trained.input.kind
    if cfg.input.kind != trained_kind:
        raise InputError(
            f"input.kind: the model in {model_folder!r} was trained on a {trained_kind} input, but this input is "
            f"configured as {cfg.input.kind}; score {trained_kind} with it, or train a model on {cfg.input.kind}"
        )
    settings = trained.config
    if trained_kind == "customers":
        needed = settings["input"]["customers"]
        columns = {name: tuple(needed[name]) for name in ("numeric_columns", "categorical_columns", "log_columns")}
        customers = cfg.input.customers.model_copy(update=columns)
        return cfg.model_copy(update={"input": cfg.input.model_copy(update={"customers": customers})})
    trained_features = baselines.model_inputs(settings)["model_features"]  # those the training input could give
    used = {"model_features": tuple(trained_features), "log_features": tuple(settings["features"]["log_features"])}
    missing = unavailable_features(cfg.input)
    for feature in trained_features:
        if feature in missing:
            raise InputError(
                f"input.columns: the model in {model_folder!r} uses {feature}, which this input cannot give: "
                f"{missing[feature]}"
            )
    return cfg.model_copy(update={"features": cfg.features.model_copy(update=used)})


def _privacy_of(cfg: JobConfig, trained: Manifest) -> PrivacyConfig:
    """The scoring run's privacy settings; pseudonymised training ids mean pseudonymised scores too."""
    if trained.config.get("privacy", {}).get("pseudonymize_ids") and not cfg.privacy.pseudonymize_ids:
        return cfg.privacy.model_copy(update={"pseudonymize_ids": True})
    return cfg.privacy


def _earlier(publisher: Publisher, cfg: JobConfig) -> Callable[[baselines.Baseline], baselines.Baseline | None] | None:
    """The run before a found baseline (for ``relation.judge`` to look further back); none for a named one."""
    if cfg.history.baseline is not None:
        return None
    return lambda found: baselines.find_baseline(publisher, cfg, as_of=found.as_of)
