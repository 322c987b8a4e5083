"""The whole job: read, validate, features, sweep, choose k, final model, profiles, publish.

``run`` takes a session it is handed (never creates, configures the master of, or stops one) and a
validated configuration. Every stage is timed and the times go into the manifest.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import platform
from dataclasses import dataclass, field
from typing import Any

import pyspark
from pyspark import StorageLevel
from pyspark.errors import PySparkException
from pyspark.ml.clustering import KMeansModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segmentation import (
    __version__,
    errors,
    features,
    model,
    naming,
    outputs,
    privacy,
    profiles,
    quality,
    report,
    report_data,
    selection,
    sources,
    sweep,
    tracking,
)
from segmentation.config import JobConfig
from segmentation.quality import LineCounts
from segmentation.timing import StageTimer

log = logging.getLogger(__name__)

# SQL settings the job relies on, set on the session it runs in: a text timestamp that Spark's parser
# rejects is an invalid line to quarantine, not a job failure (the default policy raises instead).
JOB_SQL_SETTINGS = {"spark.sql.legacy.timeParserPolicy": "CORRECTED"}


class JobError(ValueError):
    """The job cannot produce a trustworthy result from this input; nothing was published."""


class JobFailed(RuntimeError):
    """Spark or the file system failed during a stage; nothing was published."""


@dataclass(frozen=True)
class RunResult:
    """What a run produced, for the command line's summary and for tests."""

    run_id: str
    as_of: dt.date
    output_root: str
    run_folder: str
    counts: LineCounts
    customers: int
    sweep: list[sweep.KResult]
    choice: selection.Choice
    segment_sizes: dict[int, int]
    segment_names: dict[int, str]
    timings: dict[str, float] = field(default_factory=dict)


def apply_job_settings(spark: SparkSession) -> None:
    """Set the SQL settings in ``JOB_SQL_SETTINGS`` on the session."""
    for key, value in JOB_SQL_SETTINGS.items():
        spark.conf.set(key, value)


def run(spark: SparkSession, cfg: JobConfig) -> RunResult:
    """Run the whole job on ``spark`` and publish its outputs under ``cfg.output.path``.

    Nothing is published unless every stage succeeds: a failure removes this attempt's staging folder and
    raises (``JobFailed`` for a Spark or I/O failure), leaving every published run as it was.
    """
    assert cfg.input.path is not None and cfg.output.path is not None
    timer = StageTimer()
    root = outputs.root_path(cfg.output.path)
    key = privacy.load_key(cfg.privacy)
    tracking.check_available(cfg.mlflow)
    apply_job_settings(spark)
    spec = model.feature_spec(cfg)
    cached: list[DataFrame] = []
    staging: outputs.Staging | None = None
    work = outputs.begin_work(root)
    try:
        with timer.stage("read_validate"):
            raw = sources.read_raw(spark, cfg.input)
            labeled, as_of, counts, text_columns, persisted = validate_input(raw, cfg, work)
            cached.extend(persisted)
        with timer.stage("features"):
            feature_df, revenue = feature_table(labeled, cfg, as_of)
            cached.append(feature_df)
            customers = feature_df.count()
            _check_enough_customers(customers, cfg)
        with timer.stage("sweep"):
            fit_input = model_input(feature_df, customers, cfg.model.customers_per_partition)
            prep = model.fit_preprocessing(fit_input, spec, cfg.model.outlier_fence_iqr, cfg.model.outlier_max_share)
            vectors = prep.transform(fit_input).select("customer_id", model.VECTOR)
            vectors = vectors.persist(StorageLevel.MEMORY_AND_DISK)
            cached.append(vectors)
            ks = [cfg.model.k] if cfg.model.k else list(range(cfg.model.k_min, min(cfg.model.k_max, customers) + 1))
            sweep_vectors, sample_size = _sweep_sample(vectors, customers, cfg)
            if sweep_vectors is not vectors:
                cached.append(sweep_vectors)
            results, fitted = sweep.run_sweep(sweep_vectors, ks, cfg.model)
            choice = selection.choose_k(results, cfg.selection, cfg.model.k)
            for line in sweep_table(results, choice):
                log.info("sweep %s", line)
            log.info("chose %s", choice.reason)
        with timer.stage("final_model"):
            chosen = fitted[choice.k]
            if sweep_vectors is not vectors:  # the sweep saw a sample: fit the chosen k on everyone
                chosen = sweep.fit_best(vectors, choice.k, cfg.model)
            final = model.full_model(prep, chosen)
            assigned = final.transform(feature_df).select(*feature_df.columns, model.CLUSTER)
            mapping = model.segment_order(model.cluster_stats(assigned, spec.order_by))
            names = segment_names(chosen, mapping, spec, cfg.input.kind)
            segmented = label_segments(assigned, mapping, names)
            cached.append(segmented)
        with timer.stage("profiles"):
            profile_df = profiles.describe(segmented, profile_features(feature_df, spec), revenue, names)
            profile_rows = [r.asDict() for r in profile_df.collect()]
            sizes = {int(r["segment"]): int(r["customers"]) for r in profile_rows}
        with timer.stage("write"):
            tables = segment_tables(segmented, profile_df, labeled, text_columns, key)
            tables["sweep"] = outputs.TableOutput(_sweep_frame(spark, results, choice).coalesce(1))
            staging = outputs.begin(root, as_of, cfg.output.run_id)
            outputs.write_tables(staging, tables, final)
        with timer.stage("report"):
            axes = tuple(cfg.report.scatter_features) if cfg.report.scatter_features else None
            sample, centroids_2d, axis_labels = report_data.report_sample(
                feature_df,
                final,
                mapping,
                customers,
                cfg.model.seed,
                report.RFM,
                axes,  # type: ignore[arg-type]
            )
            outputs.write_tables(staging, {report.SAMPLE_TABLE: outputs.TableOutput(sample.coalesce(1))})
            manifest = _manifest(cfg, spark, staging, counts, customers, results, choice, mapping, profile_rows)
            manifest["sweep_sample"] = {"used": sample_size < customers, "customers": sample_size}
            manifest["centroids"] = [list(map(float, c)) for c in chosen.clusterCenters()]
            manifest["report"] = {"centroids_2d": centroids_2d, "axes": list(axis_labels)}
            report.render(staging.folder, manifest)
        with timer.stage("publish"):
            manifest["timings_seconds"] = timer.as_dict()
            folder = outputs.publish(staging, manifest)
    except BaseException as exc:
        if staging is not None:
            outputs.discard(staging)
        wrapped = failure(exc, timer.current, root)
        if wrapped is exc:
            raise
        raise wrapped from exc
    finally:
        for frame in cached:
            frame.unpersist()
        outputs.end_work(work)
    log.info("published %s", folder)
    if cfg.mlflow.enabled:
        with timer.stage("track"):  # after publishing: the run is valid whether or not MLflow accepts it
            try:
                tracking.log_run(cfg.mlflow, folder, outputs.read_manifest(folder))
            except Exception as exc:
                raise JobFailed(
                    f"stage track failed ({type(exc).__name__}: {errors.summary(exc)}); the run is published "
                    f"at {folder}, but it is not in MLflow"
                ) from exc
    log.info("timings: %s", timer.as_dict())
    return RunResult(
        run_id=cfg.output.run_id,
        as_of=as_of,
        output_root=root,
        run_folder=folder,
        counts=counts,
        customers=customers,
        sweep=results,
        choice=choice,
        segment_sizes=sizes,
        segment_names=names,
        timings=timer.as_dict(),
    )


def today_utc() -> dt.date:
    """The day the job runs, in UTC: no valid line can be dated after it."""
    return dt.datetime.now(dt.UTC).date()


def failure(exc: BaseException, stage: str | None, root: str) -> BaseException:
    """The exception to raise for a failed run: ours as they are, anything else wrapped in ``JobFailed``.

    Errors of this project (ValueError subclasses such as ConfigError, SourceError, QualityError) already name
    the key, file or column; a Spark or I/O failure gets the stage it happened in and the first line of its
    message (its Spark error class, quoted values masked: see ``errors.summary``).
    """
    if isinstance(exc, ValueError) and not isinstance(exc, PySparkException):
        return exc
    if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: staging is gone, let it through
        return exc
    return JobFailed(
        f"stage {stage or 'setup'} failed ({type(exc).__name__}: {errors.summary(exc)}); nothing was published "
        f"and the runs already under {root} are unchanged"
    )


def label_segments(assigned_df: DataFrame, mapping: dict[int, int], names: dict[int, str]) -> DataFrame:
    """Add each customer's stable segment id and its name to the cluster assignments (persisted)."""
    segmented = model.with_segment(assigned_df, mapping)
    segmented = segmented.withColumn(profiles.SEGMENT_NAME, profiles.name_column(names, F.col(model.SEGMENT)))
    return segmented.persist(StorageLevel.MEMORY_AND_DISK)


def profile_features(feature_df: DataFrame, spec: model.FeatureSpec) -> list[str]:
    """The numeric feature columns that profiles describe."""
    return [c for c in feature_df.columns if c != "customer_id" and c not in spec.categorical]


def segment_tables(
    segmented: DataFrame, profile_df: DataFrame, labeled: DataFrame, text_columns: list[str], key: bytes | None
) -> dict[str, outputs.TableOutput]:
    """The tables every run publishes: segments, features, profiles and quarantine (ids pseudonymised if keyed)."""
    segments = segmented.select("customer_id", model.SEGMENT, profiles.SEGMENT_NAME).repartition(model.SEGMENT)
    quarantine = quality.quarantined_lines(labeled, text_columns)
    return {
        "segments": outputs.TableOutput(privacy.protect(segments, key), (model.SEGMENT,)),
        "features": outputs.TableOutput(privacy.protect(segmented.drop(model.CLUSTER), key)),
        "profiles": outputs.TableOutput(profile_df.coalesce(1)),
        "quarantine": outputs.TableOutput(privacy.protect(quarantine, key), (quality.REASON,)),
    }


def segment_names(
    clusterer: KMeansModel, mapping: dict[int, int], spec: model.FeatureSpec, kind: str
) -> dict[int, str]:
    """Segment id -> name, from the final model's centroids (standardised means of the model's features)."""
    centres = {
        mapping[label]: list(map(float, centre))
        for label, centre in enumerate(clusterer.clusterCenters())
        if label in mapping
    }
    return naming.name_segments(centres, spec.numeric, kind, spec.numeric)


def validate_input(
    raw: DataFrame, cfg: JobConfig, work: str
) -> tuple[DataFrame, dt.date, LineCounts, list[str], list[DataFrame]]:
    """Label every line with its reason (or none), count, and check the quarantine share.

    The parsed lines are written once into the job's ``work`` folder (see ``work_copy``). Returns the labeled
    lines, the as-of date, the counts, the quarantine's text columns, and the frames persisted on the way
    (for the caller to unpersist when it is done with the labeled lines).
    """
    if cfg.input.kind == "transactions":
        canonical = sources.canonical_transactions(raw, cfg.input)
        labeled, as_of, persisted = label_transactions(quality.with_line_reason(canonical, cfg.input), cfg, work)
        text_columns = list(sources.TRANSACTION_COLUMNS)
    else:
        canonical = sources.canonical_customers(raw, cfg.input)
        labeled = work_copy(quality.with_customer_reason(canonical, cfg.input), os.path.join(work, "customers"))
        as_of, persisted = cfg.features.as_of or dt.datetime.now(dt.UTC).date(), []
        text_columns = ["customer_id"]
    try:
        counts = quality.count_lines(labeled)
        log.info(
            "lines in=%d clean=%d quarantined=%d %s",
            counts.lines_in,
            counts.lines_clean,
            counts.lines_quarantined,
            dict(counts.quarantined),
        )
        quality.check_quarantine_share(counts, cfg.quality.max_quarantine_share, cfg.input.path or "")
    except BaseException:
        for frame in persisted:
            frame.unpersist()
        raise
    return labeled, as_of, counts, text_columns, persisted


# Above this many rows, the repeated hashes or the duplicate copies are joined by a shuffle, not broadcast.
BROADCAST_ROWS = 1_000_000


def work_copy(frame: DataFrame, path: str) -> DataFrame:
    """The frame written once as Parquet at ``path`` (a job's work folder) and read back from there.

    For the parsed lines, which are read five more times (duplicates, counts, features, quarantine): Parquet
    is read by column, so most of those passes read only a few of the columns, where Spark's on-disk cache
    reads every column of its blocks back. On 5M lines of a log, the copy took 17 s to write against 14 s for
    the cache, and the four passes after it 8 s against 11 s. A copy on disk also stays as it is: a lost cache
    block would parse its lines again, with other line ids. And the plans that read it start from the copy,
    not from the whole parse; over Spark Connect a plan has a nesting limit.
    """
    # without dictionaries: most of these columns are near unique (5M lines: 14 s against 16 s to write)
    writer = frame.write.mode("error").option("parquet.enable.dictionary", "false")
    writer.parquet(path)  # mode "error", not "errorifexists": Spark Connect accepts only the former
    return frame.sparkSession.read.parquet(path)


def lines_copy(keyed: DataFrame, cfg: JobConfig, path: str) -> DataFrame:
    """The keyed lines through their work copy (``work_copy``), written without the canonical text columns.

    Those are the text of the ``_source`` fields they map, so they are read back from there: the copy holds
    every source value once, not twice (5M lines: 13 s against 16 s to write, and the passes after it 6 s
    against 6.5 s).
    """
    rebuilt = sources.canonical_from_source(cfg.input)
    written = work_copy(keyed.drop(*rebuilt), path)
    return written.select(*[rebuilt[c].alias(c) if c in rebuilt else F.col(c) for c in keyed.columns])


def label_transactions(line_reason: DataFrame, cfg: JobConfig, work: str) -> tuple[DataFrame, dt.date, list[DataFrame]]:
    """The log's lines with their final reasons, the as-of date, and the frames persisted for them.

    The keyed lines are parsed once into a Parquet copy in the job's ``work`` folder (``work_copy``). The
    labeled lines are that copy plus a join with the (few) duplicate copies, so they are not written again.
    """
    persisted: list[DataFrame] = []
    repeated = None
    try:
        lines = lines_copy(quality.with_line_keys(line_reason), cfg, os.path.join(work, "lines"))
        latest = quality.latest_valid_date(lines, today_utc())
        as_of = cfg.features.as_of or latest
        if as_of is None:
            counts = quality.count_lines(lines)
            quality.check_quarantine_share(counts, 0.0, cfg.input.path or "")
            raise JobError(f"input.path: no valid line in {cfg.input.path!r}")  # unreachable in practice
        repeated = quality.repeated_hashes(lines).persist(StorageLevel.MEMORY_AND_DISK)
        repeated_count, copies, copy_count = repeated.count(), None, 0
        if repeated_count:
            broadcast = repeated_count <= BROADCAST_ROWS
            copies = quality.duplicate_copies(lines, repeated, as_of, broadcast).persist(StorageLevel.MEMORY_AND_DISK)
            persisted.append(copies)
            copy_count = copies.count()
        log.info("%d line hashes repeat; %d lines are exact copies of an earlier line", repeated_count, copy_count)
        labeled = quality.with_final_reason(
            lines, as_of, copies if copy_count else None, broadcast=copy_count <= BROADCAST_ROWS
        )
    except BaseException:
        for frame in persisted:
            frame.unpersist()
        raise
    finally:
        if repeated is not None:
            repeated.unpersist()
    return labeled, as_of, persisted


def feature_table(labeled: DataFrame, cfg: JobConfig, as_of: dt.date) -> tuple[DataFrame, str | None]:
    """The per-customer feature table (persisted) and the name of its revenue column, if any."""
    if cfg.input.kind == "transactions":
        frame, revenue = features.customer_features(quality.clean_lines(labeled), as_of), "monetary"
    else:
        frame, revenue = quality.clean_customers(labeled, cfg.input), None
    return frame.persist(StorageLevel.MEMORY_AND_DISK), revenue


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
        raise JobError(
            f"{key}: the input {cfg.input.path!r} has {customers} valid customers, fewer than the {needed} "
            "segments asked for; nothing was published"
        )


SWEEP_SCHEMA = (
    "k int, seed long, wssse double, silhouette double, calinski_harabasz double, davies_bouldin double, "
    "stability double, cluster_sizes array<long>, non_empty_clusters int, smallest_cluster_share double, "
    "iterations int, seeds int, chosen boolean, elbow boolean"
)


def _sweep_frame(spark: SparkSession, results: list[sweep.KResult], choice: selection.Choice) -> DataFrame:
    """The sweep's metrics as a small DataFrame, one row per k."""
    rows = [
        (
            r.k,
            r.seed,
            r.wssse,
            r.silhouette,
            r.calinski_harabasz,
            r.davies_bouldin,
            r.stability,
            list(r.cluster_sizes),
            r.non_empty_clusters,
            r.smallest_cluster_share,
            r.iterations,
            r.seeds,
            r.k == choice.k,
            r.k == choice.elbow,
        )
        for r in results
    ]
    return spark.createDataFrame(rows, SWEEP_SCHEMA)


def _sweep_sample(vectors: DataFrame, customers: int, cfg: JobConfig) -> tuple[DataFrame, int]:
    """The vectors the sweep runs on: all of them, or a seeded sample above ``model.sweep_max_customers``."""
    limit = cfg.model.sweep_max_customers
    if customers <= limit or cfg.model.k is not None:
        return vectors, customers
    sample = vectors.sample(fraction=limit / customers, seed=cfg.model.seed)
    # in as few partitions as the model's input of that size: every Lloyd iteration costs a task per partition
    sample = model_input(sample, limit, cfg.model.customers_per_partition).persist(StorageLevel.MEMORY_AND_DISK)
    size = sample.count()
    log.info("the sweep runs on a seeded sample of %d of %d customers", size, customers)
    return sample, size


def sweep_table(results: list[sweep.KResult], choice: selection.Choice) -> list[str]:
    """The sweep's metrics as aligned text lines, for the log."""

    def fmt(value: float | None, digits: int) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    lines = ["   k        wssse  silhouette  calinski_h  davies_b  stability  smallest  non-empty"]
    for r in results:
        mark = " <- chosen" if r.k == choice.k else ""
        mark += " (elbow)" if r.k == choice.elbow else ""
        lines.append(
            f"{r.k:4d} {r.wssse:12.1f} {fmt(r.silhouette, 3):>11} {fmt(r.calinski_harabasz, 1):>11} "
            f"{fmt(r.davies_bouldin, 3):>9} {fmt(r.stability, 3):>10} {r.smallest_cluster_share:9.1%} "
            f"{r.non_empty_clusters:>6d}/{r.k}{mark}"
        )
    return lines


def _manifest(
    cfg: JobConfig,
    spark: SparkSession,
    staging: outputs.Staging,
    counts: LineCounts,
    customers: int,
    results: list[sweep.KResult],
    choice: selection.Choice,
    mapping: dict[int, int],
    profile_rows: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "run_id": staging.run_id,
        "attempt_id": staging.attempt_id,
        "as_of_date": staging.as_of.isoformat(),
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "input": {"kind": cfg.input.kind, "path": cfg.input.path},
        "counts": {**counts.as_dict(), "customers": customers},
        "sweep": [r.as_row() for r in results],
        "chosen_k": choice.k,
        "choice_reason": choice.reason,
        "elbow_k": choice.elbow,
        "cluster_to_segment": {str(k): v for k, v in sorted(mapping.items())},
        "segments": [
            {
                "segment": r["segment"],
                "name": r["segment_name"],
                "customers": r["customers"],
                "customer_share": r["customer_share"],
            }
            for r in profile_rows
        ],
        "versions": {
            "segmentation": __version__,
            "pyspark": pyspark.__version__,
            "spark": spark.version,
            "python": platform.python_version(),
        },
        "config": cfg.to_dict(),
    }
