"""The measures that judge one k, as pure functions of small results (cluster sizes, centres, per-cluster sums,
the seeds' contingency table), and ``KResult``, which holds them."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column
from pyspark.sql import functions as F


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


def stability(rows: Sequence[Any], labels: Sequence[str], best_index: int) -> float | None:
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
