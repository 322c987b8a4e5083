"""Scoring new customers with a published run's model: same validation and features, the training run's
segment ids and names, the same output layout (without a sweep, a new model or a report)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.sql import SparkSession

from segmentation import features, history, identity, manifest, model, outputs, privacy, profiles, sweep
from segmentation.config import JobConfig, PrivacyConfig, unavailable_features
from segmentation.errors import ConfigError, InputError
from segmentation.execution import JobRun, Published


@dataclass(frozen=True, kw_only=True)
class ScoreResult(Published):
    """What a scoring run published, and the as-of date of the model it used."""

    model_as_of: dt.date


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
    ``model_run_id``, or the one its ``latest`` file names). The loaded models are released on the way out
    (``sweep.release_dropped_models``).
    """
    try:
        return _score(spark, cfg, model_path, model_as_of=model_as_of, model_run_id=model_run_id)
    finally:
        sweep.release_dropped_models()


def _score(
    spark: SparkSession,
    cfg: JobConfig,
    model_path: str,
    *,
    model_as_of: dt.date | None,
    model_run_id: str | None,
) -> ScoreResult:
    try:
        model_store = outputs.open_run(spark, model_path)
        model_folder = outputs.resolve_run(model_store, model_as_of, model_run_id)
        trained = outputs.read_manifest(model_store, model_folder)
    except (InputError, ConfigError) as exc:
        raise InputError(f"--model: {exc}") from None
    cfg = training_config(cfg, trained, model_folder)
    cfg = cfg.model_copy(update={"privacy": _privacy_of(cfg, trained)})  # recorded as applied, compared so
    key = privacy.load_key(cfg.privacy)
    mapping = {int(k): int(v) for k, v in trained["cluster_to_segment"].items()}
    names = {int(s["segment"]): str(s["name"]) for s in trained["segments"]}
    spec = model.feature_spec(cfg)
    with JobRun(spark, cfg) as job:
        baseline = history.before_reading(spark, cfg, job.storage)
        with job.stage("load_model"):
            fitted = PipelineModel.load(outputs.table_path(model_folder, outputs.MODEL))
        validated = job.read_validate()
        baseline = history.after_reading(spark, cfg, job.storage, found=baseline, as_of=validated.as_of)
        with job.stage("features"):
            table = features.feature_table(validated, cfg)
            feature_df = job.keep(table.frame)
            customers = feature_df.count()
        with job.stage("assign"):
            assigned = fitted.transform(feature_df).select(*feature_df.columns, model.CLUSTER)
            segmented = job.keep(model.with_segments(assigned, mapping, names))
        with job.stage("profiles"):
            profiled = profiles.profile_segments(segmented, spec, table.revenue_column, names=names)
        with job.stage("history"):  # a frozen model keeps its segments' ids and names by construction
            used = max([*names, history.max_segment_id(trained), baseline.used_up_to if baseline else 0])
            kept = identity.Identity({s: s for s in names}, dict(names), max_segment_id=used)
            comparison = history.compare(
                segmented, baseline, identity=kept, revenue=table.revenue_column, order_by=spec.order_by, key=key
            )
        with job.stage("write"):
            tables = outputs.run_tables(segmented, profiled.frame, validated, key=key, previous=comparison.previous)
            tables[history.MIGRATION] = outputs.TableOutput(history.migration_frame(spark, comparison))
            staging = job.stage_outputs(validated.as_of, tables)
        with job.stage("publish"):
            used = {"run_folder": model_folder, "as_of_date": trained["as_of_date"], "run_id": trained["run_id"]}
            folder = job.publish(
                manifest.build(
                    manifest.SCORING,
                    staging,
                    cfg,
                    spark_version=spark.version,
                    counts=validated.counts,
                    customers=customers,
                    mapping=mapping,
                    profile_rows=profiled.rows,
                    extra={
                        "model": used,
                        "history": history.manifest_entry(comparison, kept, method="frozen model", match_distance=None),
                    },
                )
            )
    return ScoreResult(
        as_of=validated.as_of,
        model_as_of=dt.date.fromisoformat(trained["as_of_date"]),
        output_root=job.root,
        run_folder=folder,
        counts=validated.counts,
        customers=customers,
        segment_sizes=profiled.sizes,
        segment_names=names,
        timings=job.timer.as_dict(),
    )


def training_config(cfg: JobConfig, trained: dict[str, Any], model_folder: str) -> JobConfig:
    """The scoring config with the training run's model inputs, after checking the input kinds agree."""
    trained_kind = trained["input"]["kind"]
    if cfg.input.kind != trained_kind:
        raise InputError(
            f"input.kind: the model in {model_folder!r} was trained on a {trained_kind} input, but this input is "
            f"configured as {cfg.input.kind}; score {trained_kind} with it, or train a model on {cfg.input.kind}"
        )
    settings = trained["config"]
    if trained_kind == "customers":
        needed = settings["input"]["customers"]
        columns = {name: tuple(needed[name]) for name in ("numeric_columns", "categorical_columns", "log_columns")}
        customers = cfg.input.customers.model_copy(update=columns)
        return cfg.model_copy(update={"input": cfg.input.model_copy(update={"customers": customers})})
    trained_features = history.model_inputs(settings)["model_features"]  # those the training input could give
    used = {"model_features": tuple(trained_features), "log_features": tuple(settings["features"]["log_features"])}
    missing = unavailable_features(cfg.input)
    for feature in trained_features:
        if feature in missing:
            raise InputError(
                f"input.columns: the model in {model_folder!r} uses {feature}, which this input cannot give: "
                f"{missing[feature]}"
            )
    return cfg.model_copy(update={"features": cfg.features.model_copy(update=used)})


def _privacy_of(cfg: JobConfig, trained: dict[str, Any]) -> PrivacyConfig:
    """The scoring run's privacy settings; pseudonymised training ids mean pseudonymised scores too."""
    if trained["config"].get("privacy", {}).get("pseudonymize_ids") and not cfg.privacy.pseudonymize_ids:
        return cfg.privacy.model_copy(update={"pseudonymize_ids": True})
    return cfg.privacy
