"""Scoring new customers with a published run's model: same validation and features, the training run's
segment ids and names, the same output layout (without a sweep or a new model)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession

from segmentation import model, outputs, pipeline, privacy, profiles, sources
from segmentation.config import JobConfig, PrivacyConfig, local_path
from segmentation.quality import LineCounts
from segmentation.timing import StageTimer

log = logging.getLogger(__name__)


class ScoringError(ValueError):
    """The model cannot score this input; the message says why."""


@dataclass(frozen=True)
class ScoreResult:
    """What a scoring run produced."""

    as_of: dt.date
    model_as_of: dt.date
    output_root: str
    run_folder: str
    counts: LineCounts
    customers: int
    segment_sizes: dict[int, int]
    segment_names: dict[int, str]
    timings: dict[str, float]


def training_config(cfg: JobConfig, manifest: dict[str, Any], model_folder: str) -> JobConfig:
    """The scoring config with the training run's model inputs, after checking the input kinds agree."""
    trained = manifest["config"]
    trained_kind = manifest["input"]["kind"]
    if cfg.input.kind != trained_kind:
        raise ScoringError(
            f"input.kind: the model in {model_folder!r} was trained on a {trained_kind} input, but this input is "
            f"configured as {cfg.input.kind}; score {trained_kind} with it, or train a model on {cfg.input.kind}"
        )
    if trained_kind == "customers":
        needed = trained["input"]["customers"]
        customers = dataclasses.replace(
            cfg.input.customers,
            numeric_columns=tuple(needed["numeric_columns"]),
            categorical_columns=tuple(needed["categorical_columns"]),
            log_columns=tuple(needed["log_columns"]),
        )
        return dataclasses.replace(cfg, input=dataclasses.replace(cfg.input, customers=customers))
    feats = dataclasses.replace(
        cfg.features,
        model_features=tuple(trained["features"]["model_features"]),
        log_features=tuple(trained["features"]["log_features"]),
    )
    return dataclasses.replace(cfg, features=feats)


def score(
    spark: SparkSession,
    cfg: JobConfig,
    model_path: str,
    model_as_of: dt.date | None = None,
    model_run_id: str | None = None,
) -> ScoreResult:
    """Assign the customers of ``cfg.input`` to the segments of a published run.

    ``model_path`` is a published run folder, or an output root (then the run of ``model_as_of`` /
    ``model_run_id``, or the one its ``latest`` file names). The scored customers are published like a run.
    """
    assert cfg.output.path is not None
    timer = StageTimer()
    try:
        model_folder = outputs.resolve_run(model_path, model_as_of, model_run_id)
    except outputs.PublishedRunError as exc:
        raise ScoringError(f"--model: {exc}") from None
    manifest = outputs.read_manifest(model_folder)
    root = outputs.root_path(cfg.output.path)
    cfg = training_config(cfg, manifest, model_folder)
    key = privacy.load_key(_privacy_of(cfg, manifest))
    fitted = PipelineModel.load(local_path(outputs.table_path(model_folder, outputs.MODEL)))
    mapping = {int(k): int(v) for k, v in manifest["cluster_to_segment"].items()}
    names = {int(s["segment"]): str(s["name"]) for s in manifest["segments"]}
    spec = model.feature_spec(cfg)
    pipeline.apply_job_settings(spark)
    cached: list[DataFrame] = []
    staging: outputs.Staging | None = None
    work = outputs.begin_work(root)
    try:
        with timer.stage("read_validate"):
            labeled, as_of, counts, text_columns, persisted = pipeline.validate_input(
                sources.read_raw(spark, cfg.input), cfg, work
            )
            cached.extend(persisted)
        with timer.stage("features"):
            feature_df, revenue = pipeline.feature_table(labeled, cfg, as_of)
            cached.append(feature_df)
            customers = feature_df.count()
        with timer.stage("assign"):
            assigned = fitted.transform(feature_df).select(*feature_df.columns, model.CLUSTER)
            segmented = pipeline.label_segments(assigned, mapping, names)
            cached.append(segmented)
        with timer.stage("profiles"):
            profile_df = profiles.describe(segmented, pipeline.profile_features(feature_df, spec), revenue, names)
            profile_rows = [r.asDict() for r in profile_df.collect()]
        with timer.stage("write"):
            tables = pipeline.segment_tables(segmented, profile_df, labeled, text_columns, key)
            staging = outputs.begin(root, as_of, cfg.output.run_id)
            outputs.write_tables(staging, tables)
        with timer.stage("publish"):
            summary = {
                "run_id": staging.run_id,
                "attempt_id": staging.attempt_id,
                "kind": "scoring",
                "as_of_date": as_of.isoformat(),
                "model": {
                    "run_folder": model_folder,
                    "as_of_date": manifest["as_of_date"],
                    "run_id": manifest["run_id"],
                },
                "input": {"kind": cfg.input.kind, "path": cfg.input.path},
                "counts": {**counts.as_dict(), "customers": customers},
                "cluster_to_segment": manifest["cluster_to_segment"],
                "segments": [
                    {"segment": r["segment"], "name": r["segment_name"], "customers": r["customers"]}
                    for r in profile_rows
                ],
                "timings_seconds": timer.as_dict(),
                "config": cfg.to_dict(),
            }
            folder = outputs.publish(staging, summary)
    except BaseException as exc:
        if staging is not None:
            outputs.discard(staging)
        wrapped = pipeline.failure(exc, timer.current, root)
        if wrapped is exc:
            raise
        raise wrapped from exc
    finally:
        for frame in cached:
            frame.unpersist()
        outputs.end_work(work)
    return ScoreResult(
        as_of=as_of,
        model_as_of=dt.date.fromisoformat(manifest["as_of_date"]),
        output_root=root,
        run_folder=folder,
        counts=counts,
        customers=customers,
        segment_sizes={int(r["segment"]): int(r["customers"]) for r in profile_rows},
        segment_names=names,
        timings=timer.as_dict(),
    )


def _privacy_of(cfg: JobConfig, manifest: dict[str, Any]) -> PrivacyConfig:
    """The scoring run's privacy settings; pseudonymised training ids mean pseudonymised scores too."""
    trained = manifest["config"].get("privacy", {})
    if trained.get("pseudonymize_ids") and not cfg.privacy.pseudonymize_ids:
        return dataclasses.replace(cfg.privacy, pseudonymize_ids=True)
    return cfg.privacy
