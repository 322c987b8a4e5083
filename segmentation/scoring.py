"""Scoring new customers with a published run's model: same validation and features, the training run's
segment ids and names, the same output layout (without a sweep or a new model)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession

from segmentation import model, outputs, pipeline, profiles, sources
from segmentation.config import JobConfig, local_path
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


def training_config(cfg: JobConfig, manifest: dict[str, Any], model_root: str) -> JobConfig:
    """The scoring config with the training run's model inputs, after checking the input kinds agree."""
    trained = manifest["config"]
    trained_kind = manifest["input"]["kind"]
    if cfg.input.kind != trained_kind:
        raise ScoringError(
            f"input.kind: the model in {model_root!r} was trained on a {trained_kind} input, but this input is "
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


def score(spark: SparkSession, cfg: JobConfig, model_root: str, model_as_of: dt.date | None = None) -> ScoreResult:
    """Assign the customers of ``cfg.input`` to the segments of the run published under ``model_root``."""
    assert cfg.output.path is not None
    timer = StageTimer()
    model_root = outputs.root_path(model_root)
    root = outputs.root_path(cfg.output.path)
    if model_as_of is None:
        dates = outputs.published_dates(model_root)
        if not dates:
            raise ScoringError(f"--model: no published run (with _SUCCESS) under {model_root!r}")
        model_as_of = dates[-1]
    manifest = outputs.read_manifest(model_root, model_as_of)
    cfg = training_config(cfg, manifest, model_root)
    fitted = PipelineModel.load(local_path(outputs.date_folder(model_root, "models", model_as_of)))
    mapping = {int(k): int(v) for k, v in manifest["cluster_to_segment"].items()}
    names = {int(s["segment"]): str(s["name"]) for s in manifest["segments"]}
    spec = model.feature_spec(cfg)
    pipeline.apply_job_settings(spark)
    cached: list[DataFrame] = []
    try:
        with timer.stage("read_validate"):
            labeled, as_of, counts, text_columns = pipeline.validate_input(sources.read_raw(spark, cfg.input), cfg)
            cached.append(labeled)
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
            tables = pipeline.segment_tables(segmented, profile_df, labeled, text_columns)
            run_folder = outputs.begin(root, as_of)
            outputs.write_tables(root, as_of, tables)
        summary = {
            "run_id": uuid.uuid4().hex[:12],
            "kind": "scoring",
            "as_of_date": as_of.isoformat(),
            "model": {"root": model_root, "as_of_date": model_as_of.isoformat(), "run_id": manifest["run_id"]},
            "input": {"kind": cfg.input.kind, "path": cfg.input.path},
            "counts": {**counts.as_dict(), "customers": customers},
            "cluster_to_segment": manifest["cluster_to_segment"],
            "segments": [
                {"segment": r["segment"], "name": r["segment_name"], "customers": r["customers"]} for r in profile_rows
            ],
            "timings_seconds": timer.as_dict(),
            "config": cfg.to_dict(),
        }
        outputs.finish(run_folder, summary)
    finally:
        for frame in cached:
            frame.unpersist()
    return ScoreResult(
        as_of=as_of,
        model_as_of=model_as_of,
        output_root=root,
        run_folder=run_folder,
        counts=counts,
        customers=customers,
        segment_sizes={int(r["segment"]): int(r["customers"]) for r in profile_rows},
        segment_names=names,
        timings=timer.as_dict(),
    )
