"""KMeans and its metrics in the driver, with numpy: the sweep's engine when its input is small enough.

A sweep over a few thousand (or a sample of 50,000) customers is mostly the fixed cost of Spark jobs: an MLlib
fit is 20 to 45 jobs, and 21 fits took 30 s on 4,372 customers. Here the same algorithm runs on the collected
vectors in milliseconds: ``k-means||`` initialisation (Bahmani et al. 2012, as MLlib does it: ``init_steps``
rounds that each sample about ``2 k`` points in proportion to their cost, then weighted ``k-means++`` on the
candidates), then Lloyd iterations until every centre moves less than ``tol`` or ``max_iter``; and every metric
the Spark sweep measures, with the same definitions (the silhouette is Spark's ``ClusteringEvaluator`` on
squared Euclidean distances, in its closed form). The final model is still fitted by MLlib on every customer.

Random draws come from numpy's generator seeded with the fit's seed, so the fits are not MLlib's own, and where
the choice of k is close it can differ from the MLlib sweep's (docs/how-it-works/sweep.md): that is why
``model.sweep_engine`` is ``spark`` unless a user asks for this engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segmentation.model.metrics import KResult, adjusted_rand_index, calinski_harabasz, davies_bouldin

# Rows above which the sweep stays in Spark whatever model.sweep_engine says: 200,000 x 20 doubles is 32 MB.
DRIVER_MAX_ROWS = 200_000


@dataclass(frozen=True)
class LocalFit:
    """One KMeans fit: centres (k x d), each point's cluster, the cost (sum of squared distances) and iterations."""

    centres: np.ndarray
    labels: np.ndarray
    cost: float
    iterations: int


def squared_distances(points: np.ndarray, centres: np.ndarray, norms: np.ndarray | None = None) -> np.ndarray:
    """n x k squared Euclidean distances, never below 0; ``norms``: the points' squared norms, if known."""
    if norms is None:
        norms = np.einsum("ij,ij->i", points, points)
    centre_norms = np.einsum("ij,ij->i", centres, centres)
    distances = points @ (-2.0 * centres.T)
    distances += norms[:, None]
    distances += centre_norms[None, :]
    return np.maximum(distances, 0.0, out=distances)


def cluster_sums(points: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """k x d: the sum of each cluster's points."""
    return (labels[None, :] == np.arange(k)[:, None]).astype(float) @ points


def _weighted_plus_plus(candidates: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k of the candidates by weighted ``k-means++``, then refined by weighted Lloyd iterations (as MLlib's
    ``LocalKMeans``: at most 30)."""
    chosen = [candidates[rng.choice(len(candidates), p=weights / weights.sum())]]
    costs = squared_distances(candidates, np.array(chosen))[:, 0]
    for _ in range(1, k):
        mass = costs * weights
        total = mass.sum()
        index = rng.choice(len(candidates), p=mass / total) if total > 0 else int(rng.integers(len(candidates)))
        chosen.append(candidates[index])
        costs = np.minimum(costs, squared_distances(candidates, candidates[index : index + 1])[:, 0])
    centres = np.array(chosen)
    for _ in range(30):
        labels = squared_distances(candidates, centres).argmin(axis=1)
        moved = False
        for j in range(k):
            mask = labels == j
            if mask.any():
                new = np.average(candidates[mask], axis=0, weights=weights[mask])
                moved |= not np.allclose(new, centres[j])
                centres[j] = new
        if not moved:
            break
    return centres


def init_parallel(points: np.ndarray, k: int, rng: np.random.Generator, *, steps: int) -> np.ndarray:
    """``k-means||``: one random point, ``steps`` rounds of cost-proportional sampling, weighted ``k-means++``."""
    norms = np.einsum("ij,ij->i", points, points)
    candidates = points[[int(rng.integers(len(points)))]]
    costs = squared_distances(points, candidates, norms)[:, 0]
    for _ in range(steps):
        total = costs.sum()
        if total <= 0:
            break
        picked = points[rng.random(len(points)) < 2.0 * k * costs / total]
        if len(picked):
            candidates = np.vstack([candidates, picked])
            costs = np.minimum(costs, squared_distances(points, picked, norms).min(axis=1))
    candidates = np.unique(candidates, axis=0)
    if len(candidates) <= k:
        return candidates
    weights = np.bincount(squared_distances(points, candidates, norms).argmin(axis=1), minlength=len(candidates))
    return _weighted_plus_plus(candidates, weights.astype(float), k, rng)


def init_random(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k distinct points drawn at random (``model.init_mode: random``)."""
    distinct = np.unique(points, axis=0)
    return distinct[rng.choice(len(distinct), size=min(k, len(distinct)), replace=False)]


def fit(points: np.ndarray, k: int, seed: int, *, max_iter: int, tol: float, init: str, init_steps: int) -> LocalFit:
    """KMeans at k: ``init`` (``k-means||`` or ``random``), then Lloyd iterations until no centre moves by more
    than ``tol`` (Euclidean) or ``max_iter``; a cluster that empties keeps its centre, as in MLlib."""
    rng = np.random.default_rng(seed)
    centres = init_random(points, k, rng) if init == "random" else init_parallel(points, k, rng, steps=init_steps)
    centres = centres.astype(float, copy=True)
    norms = np.einsum("ij,ij->i", points, points)
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        labels = squared_distances(points, centres, norms).argmin(axis=1)
        sums = cluster_sums(points, labels, len(centres))
        counts = np.bincount(labels, minlength=len(centres))
        live = counts > 0
        new = centres.copy()
        new[live] = sums[live] / counts[live, None]
        converged = bool(np.all(((new - centres) ** 2).sum(axis=1) <= tol * tol))
        centres = new
        if converged:
            break
    distances = squared_distances(points, centres, norms)
    labels = distances.argmin(axis=1)
    return LocalFit(centres, labels, float(distances[np.arange(len(points)), labels].sum()), iterations)


def silhouette(points: np.ndarray, labels: np.ndarray) -> float | None:
    """The mean silhouette on squared Euclidean distances, as Spark's ``ClusteringEvaluator`` computes it.

    A point's mean squared distance to a cluster is ``(N ||x||^2 + sum ||y||^2 - 2 x . sum y) / N``; to its own
    cluster the sum runs over the other ``N - 1`` points, and a point alone in its cluster scores 0. None with
    fewer than two non-empty clusters.
    """
    clusters = np.unique(labels)
    if len(clusters) < 2:
        return None
    index = np.searchsorted(clusters, labels)
    counts = np.bincount(index).astype(float)
    sums = cluster_sums(points, index, len(clusters))
    norms = np.einsum("ij,ij->i", points, points)
    norm_sums = np.bincount(index, weights=norms)
    mean_to = (counts[None, :] * norms[:, None] + norm_sums[None, :] - 2.0 * points @ sums.T) / counts[None, :]
    rows = np.arange(len(points))
    own_count = counts[index]
    own = mean_to[rows, index] * own_count / np.maximum(own_count - 1.0, 1.0)
    others = mean_to.copy()
    others[rows, index] = np.inf
    nearest = others.min(axis=1)
    score = np.where(own < nearest, 1.0 - own / np.where(nearest > 0, nearest, 1.0), 0.0)
    score = np.where(own > nearest, nearest / np.where(own > 0, own, 1.0) - 1.0, score)
    score = np.where(own_count == 1, 0.0, score)
    return float(score.mean())


def measure(points: np.ndarray, k: int, fits: list[LocalFit], *, seeds: list[int]) -> KResult:
    """The metrics of the lowest-cost fit at k (the first of equal ones), and how well the others reproduce it."""
    best_index = min(range(len(fits)), key=lambda i: (fits[i].cost, i))
    best = fits[best_index]
    labels = best.labels
    sizes = np.bincount(labels, minlength=k)
    distances = squared_distances(points, best.centres)[np.arange(len(points)), labels]
    distance_sums = np.bincount(labels, weights=np.sqrt(distances), minlength=k)
    centres = [[float(v) for v in c] for c in best.centres]
    wssse = float(distances.sum())
    others = [adjusted_rand_index(_contingency(labels, f.labels)) for i, f in enumerate(fits) if i != best_index]
    non_empty = int((sizes > 0).sum())
    total = int(sizes.sum())
    sized = [int(s) for s in sizes]
    return KResult(
        k=k,
        seed=seeds[best_index],
        wssse=wssse,
        silhouette=silhouette(points, labels) if non_empty >= 2 else None,
        calinski_harabasz=calinski_harabasz(sized[: len(centres)], centres, wssse),
        davies_bouldin=davies_bouldin(sized[: len(centres)], centres, [float(v) for v in distance_sums]),
        stability=max(others) if others else None,
        cluster_sizes=tuple(sized),
        non_empty_clusters=non_empty,
        smallest_cluster_share=min(sized) / total if total else 0.0,
        iterations=best.iterations,
        seeds=len(fits),
    )


def _contingency(first: np.ndarray, second: np.ndarray) -> dict[tuple[int, int], int]:
    width = int(second.max()) + 1
    counts = np.bincount(first * width + second)
    return {(int(i // width), int(i % width)): int(n) for i in np.flatnonzero(counts) for n in [counts[i]]}
