"""The KMeans sweep over k: several seeds per k, the best kept, and the metrics that judge each k.

Every metric is computed in Spark at O(customers x k) cost from one aggregation over the assignments
(plus Spark's own silhouette): nothing that grows with the data reaches the driver, only per-cluster sums
and the contingency table of the seeds' assignments (at most k^seeds rows).
"""

from __future__ import annotations

import gc
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import asdict, dataclass

from pyspark.ml.clustering import KMeansModel
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from segmentation.config import ModelConfig
from segmentation.model import CLUSTER, VECTOR, kmeans
from segmentation.progress import SweepProgress
from segmentation.session import executor_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KResult:
    """The metrics of the best of several KMeans fits at one k."""

    k: int
    seed: int
    wssse: float
    silhouette: float | None
    calinski_harabasz: float | None
    davies_bouldin: float | None
    stability: float | None
    cluster_sizes: tuple[int, ...]
    non_empty_clusters: int
    smallest_cluster_share: float
    iterations: int
    seeds: int

    @property
    def has_empty_cluster(self) -> bool:
        return self.non_empty_clusters < self.k

    def as_row(self) -> dict[str, object]:
        row = asdict(self)
        row["cluster_sizes"] = list(self.cluster_sizes)
        return row


def seeds_for(settings: ModelConfig) -> list[int]:
    """The seeds tried at every k: ``model.seed``, ``model.seed + 1``, ..."""
    return [settings.seed + i for i in range(settings.seeds)]


def adjusted_rand_index(contingency: Mapping[tuple[int, int], int]) -> float:
    """The adjusted Rand index of two labelings from their contingency table {(a, b): count}."""

    def pairs(n: float) -> float:
        return n * (n - 1) / 2.0

    rows: dict[int, int] = defaultdict(int)
    cols: dict[int, int] = defaultdict(int)
    for (a, b), n in contingency.items():
        rows[a] += n
        cols[b] += n
    total = sum(rows.values())
    index = sum(pairs(n) for n in contingency.values())
    row_pairs = sum(pairs(n) for n in rows.values())
    col_pairs = sum(pairs(n) for n in cols.values())
    expected = row_pairs * col_pairs / pairs(total) if total > 1 else 0.0
    maximum = (row_pairs + col_pairs) / 2.0
    if maximum == expected:
        return 1.0
    return (index - expected) / (maximum - expected)


def squared_distance_to(centres: Sequence[Sequence[float]], vector: Column, label: Column) -> Column:
    """Squared Euclidean distance from each row's vector to the centre of its cluster, in SQL functions."""
    literal = F.array(*[F.array(*[F.lit(float(v)) for v in centre]) for centre in centres])
    own = F.element_at(literal, label + 1)
    squares = F.zip_with(vector_to_array(vector), own, lambda a, b: (a - b) * (a - b))
    return F.aggregate(squares, F.lit(0.0), lambda acc, x: acc + x)


def calinski_harabasz(sizes: Sequence[int], centres: Sequence[Sequence[float]], wssse: float) -> float | None:
    """Between-cluster over within-cluster dispersion, each per degree of freedom (higher is better)."""
    n, k = sum(sizes), sum(1 for s in sizes if s > 0)
    if k < 2 or n <= k or wssse <= 0:
        return None
    dims = len(centres[0])
    mean = [sum(s * c[d] for s, c in zip(sizes, centres, strict=True)) / n for d in range(dims)]
    between = sum(s * sum((c[d] - mean[d]) ** 2 for d in range(dims)) for s, c in zip(sizes, centres, strict=True))
    return (between / (k - 1)) / (wssse / (n - k))


def davies_bouldin(
    sizes: Sequence[int], centres: Sequence[Sequence[float]], distance_sums: Sequence[float]
) -> float | None:
    """Mean over clusters of the worst (spread_i + spread_j) / centre distance (lower is better)."""
    live = [i for i, s in enumerate(sizes) if s > 0]
    if len(live) < 2:
        return None
    spread = {i: distance_sums[i] / sizes[i] for i in live}
    worst = []
    for i in live:
        ratios = [(spread[i] + spread[j]) / d for j in live if j != i and (d := math.dist(centres[i], centres[j])) > 0]
        worst.append(max(ratios) if ratios else math.inf)
    return sum(worst) / len(worst)


def fit_best(vectors_df: DataFrame, k: int, settings: ModelConfig) -> KMeansModel:
    """Fit KMeans at k with every seed (at once, from a thread pool) and keep the lowest cost; measure nothing.

    For the final fit on every customer once the sweep has chosen k on a sample: the sweep's metrics of that
    k are the ones the choice was made on, so the extra passes of ``measure`` would be wasted here.
    """
    fit_input = kmeans_input(vectors_df)
    with executor_for(vectors_df, settings.sweep_parallelism) as pool:
        fits = [pool.submit(_fit, fit_input, k, seed, settings, None) for seed in seeds_for(settings)]
        models = [f.result() for f in fits]
    best = models[lowest_cost(models)]
    fits.clear()
    models.clear()
    release_dropped_models()
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
        label = int(row[labels[best_index]])
        sizes[label] += int(row["n"])
        distance_sums[label] += float(row["dist"])
        wssse += float(row["sq"])
    stability = _stability(rows, labels, best_index)

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
        stability=stability,
        cluster_sizes=tuple(sizes),
        non_empty_clusters=non_empty,
        smallest_cluster_share=min(sizes) / total if total else 0.0,
        iterations=int(best.summary.numIter),
        seeds=len(seeds),
    )
    log.info("k=%d: %s", k, metrics_line(result))
    return result, best


def _stability(rows: Sequence, labels: Sequence[str], best_index: int) -> float | None:
    """How well another seed reproduces the kept (lowest-cost) assignment: the highest adjusted Rand index
    between it and any other seed's assignment.

    The highest, not the mean: one seed stuck in a poor local optimum says little about the structure at
    this k (the lowest cost is kept for that reason), but a solution that no other start finds again is
    not one to act on.
    """
    others = [i for i in range(len(labels)) if i != best_index]
    if not others:
        return None
    scores = []
    for other in others:
        table: dict[tuple[int, int], int] = defaultdict(int)
        for row in rows:
            table[(int(row[labels[best_index]]), int(row[labels[other]]))] += int(row["n"])
        scores.append(adjusted_rand_index(table))
    return max(scores)


def _number(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def metrics_line(result: KResult) -> str:
    """One log line of a k's metrics."""
    return (
        f"wssse={result.wssse:.1f} silhouette={_number(result.silhouette, 3)} "
        f"ch={_number(result.calinski_harabasz, 1)} db={_number(result.davies_bouldin, 3)} "
        f"stability={_number(result.stability, 3)} smallest={result.smallest_cluster_share:.1%} "
        f"non-empty={result.non_empty_clusters}/{result.k}"
    )


def metrics_table(results: Sequence[KResult], *, chosen: int, elbow: int | None) -> list[str]:
    """The sweep's metrics as aligned text lines (one per k, the chosen k and the elbow marked), for the log."""
    lines = ["   k        wssse  silhouette  calinski_h  davies_b  stability  smallest  non-empty"]
    for r in results:
        mark = (" <- chosen" if r.k == chosen else "") + (" (elbow)" if r.k == elbow else "")
        lines.append(
            f"{r.k:4d} {r.wssse:12.1f} {_number(r.silhouette, 3):>11} {_number(r.calinski_harabasz, 1):>11} "
            f"{_number(r.davies_bouldin, 3):>9} {_number(r.stability, 3):>10} {r.smallest_cluster_share:9.1%} "
            f"{r.non_empty_clusters:>6d}/{r.k}{mark}"
        )
    lines.append(
        "silhouette: Spark's ClusteringEvaluator, on squared Euclidean distances (usually above the usual one)"
    )
    note = seeds_note([r.as_row() for r in results])
    if note:
        lines.append(note)
    return lines


def seeds_note(rows: Sequence[Mapping[str, object]]) -> str | None:
    """Which k got every seed and which only the first, in words (None when every k got the same seeds)."""
    counts = {int(row["k"]): int(row["seeds"]) for row in rows}  # type: ignore[call-overload]
    most = max(counts.values(), default=1)
    fewer = [k for k, n in counts.items() if n < most]
    if not fewer:
        return None
    full = [k for k, n in counts.items() if n == most]
    others = "the other seed" if most == 2 else f"the other {most - 1}"
    return (
        f"seeds: every k was fitted with one seed first; {others} went to the k still in contention "
        f"(k={', '.join(map(str, full))}); k={', '.join(map(str, fewer))} "
        + ("shows its one fit" if len(fewer) == 1 else "show their one fit")
        + ", without stability"
    )


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
    with executor_for(vectors_df, settings.sweep_parallelism) as pool:

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
    done.clear()  # the measured pairs held the losing seeds' models until here
    release_dropped_models()
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


def release_dropped_models() -> None:
    """Free the fitted models nothing refers to any more, now, between Spark calls.

    Over Spark Connect a model's ``__del__`` asks the server to drop it, with a gRPC call. Models caught in a
    reference cycle are freed whenever Python's cyclic garbage collector happens to run, which can be in the
    middle of another gRPC call on the same thread; that nested release then waits forever (seen with pyspark
    4.3: a run hung in ``createDataFrame`` inside ``RemoteModelRef.release_ref``). Collecting here frees them
    while no call is in flight. Cheap in classic Spark, where it frees nothing on the server.
    """
    gc.collect()
