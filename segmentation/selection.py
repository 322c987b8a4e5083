"""Choosing k from the sweep's metrics, with the reason in one plain sentence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from segmentation.sweep import KResult


class SelectionError(ValueError):
    """No k in the sweep can be used."""


@dataclass(frozen=True)
class Choice:
    """The chosen k and why."""

    k: int
    reason: str


def choose_k(results: Sequence[KResult], fixed_k: int | None = None) -> Choice:
    """Highest silhouette among the k without empty clusters; on a tie, the smaller k.

    A fixed k (``model.k``) is taken as given, unless its fit has an empty cluster.
    """
    if not results:
        raise SelectionError("model: the sweep produced no fits")
    if fixed_k is not None:
        result = next(r for r in results if r.k == fixed_k)
        if result.has_empty_cluster:
            raise SelectionError(
                f"model.k: k={fixed_k} gave only {result.non_empty_clusters} non-empty clusters; "
                "the data has too few distinct customers for it"
            )
        return Choice(fixed_k, f"k={fixed_k}: fixed by model.k (no sweep)")
    usable = [r for r in results if not r.has_empty_cluster and r.silhouette is not None]
    dropped = sorted(r.k for r in results if r.has_empty_cluster)
    if not usable:
        raise SelectionError(
            f"model.k_min/model.k_max: every k from {results[0].k} to {results[-1].k} gave an empty cluster; "
            "the data has too few distinct customers for that range"
        )
    best = min(usable, key=lambda r: (-round(r.silhouette or 0.0, 12), r.k))
    ks = f"k={results[0].k}..{results[-1].k}" if len(results) > 1 else f"k={results[0].k}"
    reason = f"k={best.k}: highest silhouette ({best.silhouette:.3f}) among {ks}"
    if dropped:
        reason += f"; k={', '.join(map(str, dropped))} excluded for empty clusters"
    return Choice(best.k, reason)
