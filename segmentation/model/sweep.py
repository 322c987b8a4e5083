"""The KMeans sweep over k: several seeds per k fitted at once, the best kept and measured (``metrics``).

Two engines (``model.sweep_engine``): ``driver`` collects the sweep's vectors (at most
``local_kmeans.DRIVER_MAX_ROWS``) and fits with numpy (``local_kmeans``, ``run_driver_sweep``); ``spark`` fits
with MLlib (``run_sweep``), and every metric is computed in Spark at O(customers x k) cost from one aggregation
over the assignments (plus Spark's own silhouette): nothing that grows with the data reaches the driver, only
per-cluster sums and the contingency table of the seeds' assignments (at most k^seeds rows).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor

import numpy as np
from pyspark.ml.clustering import KMeansModel
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segmentation.config import ModelConfig
from segmentation.model import local_kmeans
from segmentation.model.metrics import (
    KResult,
    calinski_harabasz,
    davies_bouldin,
    squared_distance_to,
    stability,
)
from segmentation.model.pipeline import CLUSTER, VECTOR, kmeans
from segmentation.model.sweep_text import metrics_line
from segmentation.runtime.progress import SweepProgress
from segmentation.runtime.threads import executor_for

log = logging.getLogger(__name__)


def seeds_for(settings: ModelConfig) -> list[int]:
    """The seeds tried at every k: ``model.seed``, ``model.seed + 1``, ..."""
    return [settings.seed + i for i in range(settings.seeds)]


def fit_best(vectors_df: DataFrame, k: int, settings: ModelConfig) -> KMeansModel:
    """Fit KMeans at k with every seed (at once, from a thread pool) and keep the lowest cost; measure nothing.

    For the final fit on every customer once the sweep has chosen k on a sample: the sweep's metrics of that
    k are the ones the choice was made on, so the extra passes of ``measure`` would be wasted here.
    """
    fit_input = kmeans_input(vectors_df)
    with executor_for(vectors_df, settings.sweep_parallelism, setting="model.sweep_parallelism") as pool:
        fits = [pool.submit(_fit, fit_input, k, seed, settings, None) for seed in seeds_for(settings)]
        models = [f.result() for f in fits]
    best = models[lowest_cost(models)]
    fits.clear()
    models.clear()  # the other seeds' models: the caller releases them (runtime.context)
    return best


def lowest_cost(fits: Sequence[KMeansModel]) -> int:
    """The index of the fit with the lowest training cost (the first of equal ones)."""
    costs = [float(f.summary.trainingCost) for f in fits]
    return min(range(len(fits)), key=lambda i: (costs[i], i))


def kmeans_input(vectors_df: DataFrame) -> DataFrame:
    """The vectors as a frame that is not itself cached, for KMeans to fit on.

    KMeans caches its input itself, as vectors with their norms ready for every Lloyd iteration, only when
    that input is not persisted; ``vectors_df`` (persisted) is then read once per fit.
    """
    return vectors_df.select(VECTOR)


def _fit(fit_input: DataFrame, k: int, seed: int, settings: ModelConfig, progress: SweepProgress | None) -> KMeansModel:
    if progress is not None:
        progress.fitting(k, seed)
    return kmeans(k, settings, seed=seed).fit(fit_input)


def measure(
    vectors_df: DataFrame, k: int, fits: Sequence[KMeansModel], *, seeds: Sequence[int]
) -> tuple[KResult, KMeansModel]:
    """The metrics of the lowest-cost fit at k, and how well the other seeds reproduce it."""
    best_index = lowest_cost(fits)
    best = fits[best_index]
    centres = [[float(v) for v in c] for c in best.clusterCenters()]

    labels = [f"_seed{i}" for i in range(len(fits))]
    scored = vectors_df
    for fitted, label in zip(fits, labels, strict=True):
        scored = fitted.transform(scored).withColumnRenamed(CLUSTER, label)
    squared = squared_distance_to(centres, F.col(VECTOR), F.col(labels[best_index]))
    grouped = (
        scored.withColumn("_sq", squared)
        .groupBy(*labels)
        .agg(F.count(F.lit(1)).alias("n"), F.sum("_sq").alias("sq"), F.sum(F.sqrt("_sq")).alias("dist"))
        .collect()
    )
    # in a fixed order: the sums below then do not depend on how many shuffle partitions the rows came from
    rows = sorted(grouped, key=lambda row: tuple(row[label] for label in labels))
    sizes, distance_sums, wssse = [0] * k, [0.0] * k, 0.0
    for row in rows:
        cluster = int(row[labels[best_index]])
        sizes[cluster] += int(row["n"])
        distance_sums[cluster] += float(row["dist"])
        wssse += float(row["sq"])
    agreement = stability(rows, labels, best_index)

    non_empty = sum(1 for s in sizes if s > 0)
    silhouette = None
    if non_empty >= 2:
        evaluator = ClusteringEvaluator(
            featuresCol=VECTOR,
            predictionCol=labels[best_index],
            metricName="silhouette",
            distanceMeasure="squaredEuclidean",
        )
        silhouette = float(evaluator.evaluate(scored))
    total = sum(sizes)
    result = KResult(
        k=k,
        seed=seeds[best_index],
        wssse=wssse,
        silhouette=silhouette,
        calinski_harabasz=calinski_harabasz(sizes[: len(centres)], centres, wssse),
        davies_bouldin=davies_bouldin(sizes[: len(centres)], centres, distance_sums[: len(centres)]),
        stability=agreement,
        cluster_sizes=tuple(sizes),
        non_empty_clusters=non_empty,
        smallest_cluster_share=min(sizes) / total if total else 0.0,
        iterations=int(best.summary.numIter),
        seeds=len(seeds),
    )
    log.info("k=%d: %s", k, metrics_line(result))
    return result, best


METRICS_SCHEMA = (
    "k int, seed long, wssse double, silhouette double, calinski_harabasz double, davies_bouldin double, "
    "stability double, cluster_sizes array<long>, non_empty_clusters int, smallest_cluster_share double, "
    "iterations int, seeds int, chosen boolean, elbow boolean"
)


def metrics_frame(spark: SparkSession, results: Sequence[KResult], *, chosen: int, elbow: int | None) -> DataFrame:
    """The sweep's metrics as a small DataFrame (the ``sweep`` table), one row per k."""
    columns = [field.split()[0] for field in METRICS_SCHEMA.split(", ")]
    rows = [{**r.as_row(), "chosen": r.k == chosen, "elbow": r.k == elbow} for r in results]
    return spark.createDataFrame([tuple(row[c] for c in columns) for row in rows], METRICS_SCHEMA)


def run_sweep(
    vectors_df: DataFrame,
    ks: Iterable[int],
    settings: ModelConfig,
    *,
    in_contention: Callable[[KResult], bool] | None = None,
) -> tuple[list[KResult], dict[int, KMeansModel]]:
    """Fit every k on the (cached) standardised vectors; return the metrics and the best model of each k.

    With ``in_contention`` (and several k and seeds), every k is first fitted with the first seed only, and the
    other seeds go to the k whose one-seed result ``in_contention`` keeps: the choice of k can only fall there.
    A k it leaves out keeps its one-seed result (``seeds`` 1, no stability). When no k is left in contention,
    before or after its other seeds, the rule falls back on the whole WSSSE curve, so every k then gets every
    seed. Without ``in_contention``, every k gets every seed at once.

    ``model.sweep_parallelism`` fits run at once from a thread pool: Spark runs the jobs of several threads
    concurrently, and on small data a fit's time is mostly the fixed cost of its jobs, not work on the cores.
    Every fit has its own seed and input order, so the results do not depend on the order they finish in.
    """
    ks = list(ks)
    seeds = seeds_for(settings)
    progress = SweepProgress(len(ks) * len(seeds))
    fit_input = kmeans_input(vectors_df)
    with executor_for(vectors_df, settings.sweep_parallelism, setting="model.sweep_parallelism") as pool:

        def more_seeds(
            previous: dict[int, tuple[KResult, KMeansModel]], chosen: Sequence[int]
        ) -> dict[int, tuple[KResult, KMeansModel]]:
            fitted = {k: [previous[k][1]] for k in chosen}
            return _fit_and_measure(pool, (fit_input, vectors_df), fitted, seeds[1:], settings, progress)

        if in_contention is None or len(seeds) == 1 or len(ks) == 1:
            done = _fit_and_measure(pool, (fit_input, vectors_df), {k: [] for k in ks}, seeds, settings, progress)
        else:
            done = _fit_and_measure(pool, (fit_input, vectors_df), {k: [] for k in ks}, seeds[:1], settings, progress)
            contenders = [k for k in ks if in_contention(done[k][0])]
            progress.expect(len(ks) + len(contenders or ks) * (len(seeds) - 1))
            _log_seeds(seeds[1:], contenders, after="one seed")
            done |= more_seeds(done, contenders or ks)
            if contenders and not any(in_contention(done[k][0]) for k in contenders):
                rest = [k for k in ks if k not in contenders]
                progress.expect(len(ks) * len(seeds))
                _log_seeds(seeds[1:], [], after="every seed for " + ", ".join(map(str, contenders)))
                done |= more_seeds(done, rest)
    results, best = [done[k][0] for k in ks], {k: done[k][1] for k in ks}
    done.clear()  # the measured pairs held the losing seeds' models until here (the caller releases them)
    return results, best


def _log_seeds(seeds: Sequence[int], contenders: Sequence[int], *, after: str) -> None:
    more = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
    if contenders:
        log.info("sweep: %s for k=%s, the k still in contention after %s", more, ", ".join(map(str, contenders)), after)
    else:
        log.info("sweep: no k in contention after %s: %s for every k (the rule falls back on every k)", after, more)


def _fit_and_measure(
    pool: Executor,
    frames: tuple[DataFrame, DataFrame],
    fitted: Mapping[int, Sequence[KMeansModel]],
    seeds: Sequence[int],
    settings: ModelConfig,
    progress: SweepProgress,
) -> dict[int, tuple[KResult, KMeansModel]]:
    """Fit each k of ``fitted`` with ``seeds`` after the models it has (fitted with the seeds before them:
    ``seeds_for(settings)`` in order), and measure all of its fits; ``frames`` are the fit input and the vectors.
    """
    fit_input, vectors_df = frames
    fits = {k: [pool.submit(_fit, fit_input, k, seed, settings, progress) for seed in seeds] for k in fitted}

    def measured(k: int) -> tuple[KResult, KMeansModel]:
        models = [*fitted[k], *(f.result() for f in fits[k])]
        return measure(vectors_df, k, models, seeds=seeds_for(settings)[: len(models)])

    # queued after every fit, so a measurement waiting for its fits never holds a worker a fit needs
    futures = {k: pool.submit(measured, k) for k in fitted}
    done = {k: future.result() for k, future in futures.items()}
    fits.clear()
    futures.clear()
    return done


def driver_points(vectors_df: DataFrame) -> np.ndarray:
    """The standardised vectors of ``vectors_df`` (``customer_id``, ``VECTOR``) as an n x d array in the driver,
    ordered by customer id, so the fits do not depend on how the rows were partitioned."""
    rows = vectors_df.select("customer_id", vector_to_array(F.col(VECTOR)).alias("_v")).collect()
    rows.sort(key=lambda row: row["customer_id"])
    return np.array([row["_v"] for row in rows], dtype=float)


def run_driver_sweep(
    points: np.ndarray,
    ks: Iterable[int],
    settings: ModelConfig,
    *,
    in_contention: Callable[[KResult], bool] | None = None,
) -> list[KResult]:
    """``run_sweep`` in the driver (``local_kmeans``): the same seeds, the same contention rule, the same metrics."""
    ks, seeds = list(ks), seeds_for(settings)
    progress = SweepProgress(len(ks) * len(seeds))
    fits: dict[int, list[local_kmeans.LocalFit]] = {k: [] for k in ks}

    def fitted(chosen: Sequence[int], count: int) -> dict[int, KResult]:
        for k in chosen:
            while len(fits[k]) < count:
                seed = seeds[len(fits[k])]
                progress.fitting(k, seed)
                fits[k].append(
                    local_kmeans.fit(
                        points,
                        k,
                        seed,
                        max_iter=settings.max_iter,
                        tol=settings.tol,
                        init=settings.init_mode,
                        init_steps=settings.init_steps,
                    )
                )
        return {k: local_kmeans.measure(points, k, fits[k], seeds=seeds[: len(fits[k])]) for k in chosen}

    if in_contention is None or len(seeds) == 1 or len(ks) == 1:
        done = fitted(ks, len(seeds))
    else:
        done = fitted(ks, 1)
        contenders = [k for k in ks if in_contention(done[k])]
        progress.expect(len(ks) + len(contenders or ks) * (len(seeds) - 1))
        _log_seeds(seeds[1:], contenders, after="one seed")
        done |= fitted(contenders or ks, len(seeds))
        if contenders and not any(in_contention(done[k]) for k in contenders):
            progress.expect(len(ks) * len(seeds))
            _log_seeds(seeds[1:], [], after="every seed for " + ", ".join(map(str, contenders)))
            done |= fitted([k for k in ks if k not in contenders], len(seeds))
    results = [done[k] for k in ks]
    for result in results:
        log.info("k=%d: %s", result.k, metrics_line(result))
    return results
