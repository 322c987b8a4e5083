"""The sweep in words: one log line per k, the aligned table of every k, and which k got every seed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from segmentation.model.metrics import KResult


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
    note = seeds_note({r.k: r.seeds for r in results})
    if note:
        lines.append(note)
    return lines


def seeds_note(seeds_by_k: Mapping[int, int]) -> str | None:
    """Which k got every seed and which only the first, in words (None when every k got the same seeds)."""
    most = max(seeds_by_k.values(), default=1)
    fewer = [k for k, n in seeds_by_k.items() if n < most]
    if not fewer:
        return None
    full = [k for k, n in seeds_by_k.items() if n == most]
    others = "the other seed" if most == 2 else f"the other {most - 1}"
    return (
        f"seeds: every k was fitted with one seed first; {others} went to the k still in contention "
        f"(k={', '.join(map(str, full))}); k={', '.join(map(str, fewer))} "
        + ("shows its one fit" if len(fewer) == 1 else "show their one fit")
        + ", without stability"
    )
