"""Choosing k from the sweep's metrics, with the reason in one plain sentence.

The default rule (``combined``): drop every k with an empty cluster, with a segment smaller than
``selection.min_segment_share`` of customers, or with a stability (adjusted Rand index between seeds) below
``selection.min_stability``; among the rest take the best silhouette, preferring the smaller k when its
silhouette is within ``selection.silhouette_tolerance`` of the best; if no k is left, take the elbow of the
WSSSE curve (Kneedle). Other rules: ``silhouette``, ``elbow``, ``calinski_harabasz``, ``davies_bouldin``,
and a fixed ``model.k``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from segmentation.config import SelectionConfig
from segmentation.errors import InputError
from segmentation.sweep import KResult


@dataclass(frozen=True)
class Choice:
    """The chosen k, why, and the elbow the WSSSE curve shows (if any)."""

    k: int
    reason: str
    elbow: int | None = None


def kneedle(ks: Sequence[int], costs: Sequence[float]) -> int | None:
    """The elbow of a decreasing, convex cost curve (Satopaa et al. 2011, offline, no smoothing).

    Both axes are scaled to [0, 1]; the elbow is the k where the scaled curve lies furthest below the
    straight line from its first to its last point. None with fewer than 3 points or no bend.
    """
    if len(ks) < 3:
        return None
    x_span, y_span = ks[-1] - ks[0], max(costs) - min(costs)
    if x_span <= 0 or y_span <= 0:
        return None
    xs = [(k - ks[0]) / x_span for k in ks]
    ys = [(max(costs) - c) / y_span for c in costs]  # flipped: a concave, increasing curve
    gaps = [y - x for x, y in zip(xs, ys, strict=True)]
    best = max(range(len(gaps)), key=lambda i: (gaps[i], -i))
    return ks[best] if gaps[best] > 0 else None


def choose_k(results: Sequence[KResult], rules: SelectionConfig, fixed_k: int | None = None) -> Choice:
    """Apply the configured rule to the sweep's results."""
    if not results:
        raise InputError("model: the sweep produced no fits")
    usable = [r for r in results if not r.has_empty_cluster]
    elbow = kneedle([r.k for r in usable], [r.wssse for r in usable])
    if fixed_k is not None:
        result = next(r for r in results if r.k == fixed_k)
        if result.has_empty_cluster:
            raise InputError(
                f"model.k: k={fixed_k} gave only {result.non_empty_clusters} non-empty clusters; "
                "the data has too few distinct customers for it"
            )
        return Choice(fixed_k, f"k={fixed_k}: fixed by model.k (no sweep)", elbow)
    if not usable:
        raise InputError(
            f"model.k_min/model.k_max: every k from {results[0].k} to {results[-1].k} gave an empty cluster; "
            "the data has too few distinct customers for that range"
        )
    span = f"k={results[0].k}..{results[-1].k}"
    empty = _excluded_note(results, "had an empty cluster", lambda r: r.has_empty_cluster)
    if rules.rule == "elbow":
        k = elbow if elbow is not None else usable[0].k
        why = "the elbow of the WSSSE curve (Kneedle)" if elbow is not None else "no elbow found: the smallest k"
        return Choice(k, f"k={k}: {why} among {span}{empty}", elbow)
    if rules.rule in ("silhouette", "calinski_harabasz", "davies_bouldin"):
        return _best_by(rules.rule, usable, span, empty, elbow)
    return _combined(results, usable, rules, span, elbow)


METRIC_WORDS = {
    "silhouette": ("highest silhouette", 1),
    "calinski_harabasz": ("highest Calinski-Harabasz index", 1),
    "davies_bouldin": ("lowest Davies-Bouldin index", -1),
}


def _best_by(metric: str, usable: Sequence[KResult], span: str, empty: str, elbow: int | None) -> Choice:
    words, sign = METRIC_WORDS[metric]
    scored = [r for r in usable if getattr(r, metric) is not None]
    if not scored:
        raise InputError(f"selection.rule: no k in {span} has a {metric} value")
    best = min(scored, key=lambda r: (-sign * getattr(r, metric), r.k))
    return Choice(best.k, f"k={best.k}: {words} ({getattr(best, metric):.3f}) among {span}{empty}", elbow)


def _combined(
    results: Sequence[KResult], usable: Sequence[KResult], rules: SelectionConfig, span: str, elbow: int | None
) -> Choice:
    def problems(r: KResult) -> list[str]:
        found = []
        if r.has_empty_cluster:
            found.append("an empty cluster")
        if r.smallest_cluster_share < rules.min_segment_share:
            found.append(f"a segment of {r.smallest_cluster_share:.1%} of customers")
        if r.stability is not None and r.stability < rules.min_stability:
            found.append(f"a stability of {r.stability:.2f}")
        if r.silhouette is None:
            found.append("no silhouette")
        return found

    eligible = [r for r in results if not problems(r)]
    has_stability = any(r.stability is not None for r in results)
    conditions = f"whose segments are all >= {rules.min_segment_share:.0%} of customers"
    if has_stability:
        conditions += f" and stable (ARI >= {rules.min_stability:.2f} between seeds)"
    if not eligible:
        k = elbow if elbow is not None else min(usable, key=lambda r: (-(r.silhouette or -1.0), r.k)).k
        how = "the elbow of the WSSSE curve (Kneedle)" if elbow is not None else "the best silhouette"
        checks = f"all segments >= {rules.min_segment_share:.0%} of customers"
        if has_stability:
            checks += f" and a stability >= {rules.min_stability:.2f}"
        return Choice(k, f"k={k}: {how}, since no k in {span} has {checks}", elbow)
    top = max(r.silhouette or 0.0 for r in eligible)
    near = [r for r in eligible if (r.silhouette or 0.0) >= top - rules.silhouette_tolerance]
    best = min(near, key=lambda r: r.k)
    reason = f"k={best.k}: best silhouette ({best.silhouette:.3f}) among k in {span} {conditions}"
    if best.silhouette is not None and best.silhouette < top:
        reason += f", the smallest k within {rules.silhouette_tolerance:.2f} of the best ({top:.3f})"
    beaten = [r for r in results if r.silhouette is not None and r.silhouette > (best.silhouette or 0.0)]
    notes = [
        f"k={r.k} had a higher silhouette ({r.silhouette:.3f}) but {' and '.join(problems(r))}"
        for r in beaten
        if problems(r)
    ]
    if notes:
        reason += "; " + "; ".join(notes)
    return Choice(best.k, reason, elbow)


def _excluded_note(results: Sequence[KResult], words: str, test) -> str:
    dropped = [str(r.k) for r in results if test(r)]
    return f"; k={', '.join(dropped)} {words}" if dropped else ""
