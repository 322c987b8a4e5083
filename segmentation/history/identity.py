"""Stable segment identity across retrains: a new run's segments matched to its baseline's by behaviour.

Spark ML's KMeans cannot start from earlier centroids, so a retrain numbers its clusters afresh. Each new
segment's centroid and each baseline segment's centroid are measured in one space, the baseline model's
(its capping, log and standardising steps applied to both runs' customers): there a distance of 1 is one
standard deviation of the baseline population. The matching is the one-to-one pairing that pairs the most
segments closer than ``history.match_distance`` and, among such pairings, has the least total distance
(``optimal_pairs``, the Hungarian method, with pairs beyond the distance priced out). Such a pair is the same
behaviour, so the new segment keeps the baseline's id and name. A new segment without such a partner is a new
behaviour and gets an id never used before (above the highest id of every earlier run); a baseline segment
without one has vanished. Pure functions: the caller measures the centroids.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Vector = Sequence[float]


def distance(a: Vector, b: Vector) -> float:
    """Euclidean distance of two centroids of the same length."""
    return math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(a, b, strict=True)))


def optimal_pairs(cost: Sequence[Sequence[float]]) -> list[tuple[int, int]]:
    """The (row, column) pairs of a one-to-one assignment with the least total cost (Hungarian method, O(n^3)).

    A rectangular matrix is padded with zero-cost dummies, so min(rows, columns) pairs come back.
    """
    rows, cols = len(cost), len(cost[0]) if cost else 0
    n = max(rows, cols)
    if n == 0:
        return []
    matrix = [[float(cost[i][j]) if i < rows and j < cols else 0.0 for j in range(n)] for i in range(n)]
    # potentials u (rows) and v (columns); way[j] is the column before j on the augmenting path (1-based)
    u, v, match, way = [0.0] * (n + 1), [0.0] * (n + 1), [0] * (n + 1), [0] * (n + 1)
    for i in range(1, n + 1):
        match[0], j0 = i, 0
        least, used = [math.inf] * (n + 1), [False] * (n + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = match[j0], math.inf, 0
            for j in range(1, n + 1):
                if not used[j]:
                    reduced = matrix[i0 - 1][j - 1] - u[i0] - v[j]
                    if reduced < least[j]:
                        least[j], way[j] = reduced, j0
                    if least[j] < delta:
                        delta, j1 = least[j], j
            for j in range(n + 1):
                if used[j]:
                    u[match[j]] += delta
                    v[j] -= delta
                else:
                    least[j] -= delta
            j0 = j1
            if match[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            match[j0] = match[j1]
            j0 = j1
    pairs = [(match[j] - 1, j - 1) for j in range(1, n + 1) if match[j]]
    return sorted((i, j) for i, j in pairs if i < rows and j < cols)


@dataclass(frozen=True)
class Identity:
    """How a run's segments relate to its baseline's: ids and names, and what matched, appeared or vanished."""

    ids: dict[int, int]  # this run's provisional segment (value order) -> its final id
    names: dict[int, str]  # final id -> name
    matches: list[dict[str, Any]] = field(default_factory=list)  # kept: id, name, distance
    new: list[dict[str, Any]] = field(default_factory=list)  # new ids: nearest baseline segment and distance
    vanished: list[dict[str, Any]] = field(default_factory=list)  # baseline segments without a partner
    max_segment_id: int = 0  # the highest id any run of this line has used

    def as_dict(self) -> dict[str, Any]:
        """For the manifest."""
        return {
            "matches": self.matches,
            "new": self.new,
            "vanished": self.vanished,
            "max_segment_id": self.max_segment_id,
        }


def first_run(names: Mapping[int, str], *, used_up_to: int = 0) -> Identity:
    """A run without a baseline: its segments keep the ids they have (1 = highest value), after ``used_up_to``,
    the highest id an earlier run of its run id used (a run id's ids are never reused)."""
    ids = {s: used_up_to + s for s in names}
    return Identity(ids, {ids[s]: name for s, name in names.items()}, max_segment_id=max(ids.values(), default=0))


def match(
    current: Mapping[int, Vector],
    baseline: Mapping[int, Vector],
    *,
    current_names: Mapping[int, str],
    baseline_names: Mapping[int, str],
    max_distance: float,
    used_up_to: int,
) -> Identity:
    """Match this run's segments (provisional id -> centroid) to the baseline's (id -> centroid, same space).

    ``used_up_to`` is the highest id any earlier run used; new behaviours are numbered after it in this
    run's value order. A kept segment keeps its baseline name; a new one gets its own name, with a qualifier
    when a kept segment already has it.
    """
    mine, theirs = sorted(current), sorted(baseline)
    cost = [[distance(current[s], baseline[b]) for b in theirs] for s in mine]
    # pairs beyond the distance cost more than any set of pairs within it, so the pairing keeps the most of those
    beyond = max_distance * (len(mine) + len(theirs) + 1)
    capped = [[c if c <= max_distance else beyond for c in row] for row in cost]
    paired = {mine[i]: theirs[j] for i, j in optimal_pairs(capped) if cost[i][j] <= max_distance}
    ids, names, matches = {}, {}, []
    for segment, old in sorted(paired.items(), key=lambda pair: pair[1]):
        ids[segment], names[old] = old, baseline_names[old]
        matches.append(
            {
                "segment": old,
                "name": baseline_names[old],
                "distance": round(distance(current[segment], baseline[old]), 4),
            }
        )
    next_id, new = max(used_up_to, *baseline, 0), []
    for segment in mine:
        if segment in paired:
            continue
        next_id += 1
        ids[segment] = next_id
        names[next_id] = _free_name(current_names[segment], names.values())
        nearest = min(theirs, key=lambda b: distance(current[segment], baseline[b])) if theirs else None
        new.append(
            {
                "segment": next_id,
                "name": names[next_id],
                "nearest_baseline_segment": nearest,
                "nearest_baseline_name": baseline_names.get(nearest) if nearest is not None else None,
                "distance": round(distance(current[segment], baseline[nearest]), 4) if nearest is not None else None,
            }
        )
    kept = set(paired.values())
    vanished = [{"segment": b, "name": baseline_names[b]} for b in theirs if b not in kept]
    return Identity(ids, names, matches, new, vanished, max_segment_id=max([next_id, *ids.values()]))


def _free_name(name: str, taken: Any) -> str:
    """``name``, or ``name (new)``, ``name (new 2)``, ... when a segment already has it."""
    used = set(taken)
    if name not in used:
        return name
    candidate, n = f"{name} (new)", 1
    while candidate in used:
        n += 1
        candidate = f"{name} (new {n})"
    return candidate


def explain_changes(identity: Identity, flows: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Where new segments came from and where vanished ones went, read from the customers' moves.

    A new segment whose largest inflow is from a baseline segment that is also kept is a ``split`` of it;
    from a vanished one, its ``successor``; from customers new to this run, ``new customers``. A vanished
    segment whose largest outflow went to one segment ``merged into`` it. ``flows`` rows have ``from_segment``
    and ``to_segment`` (None for new / inactive customers) and ``customers``.
    """
    kept = {m["segment"] for m in identity.matches}
    origins, merges = [], []
    for entry in identity.new:
        inflows = [f for f in flows if f["to_segment"] == entry["segment"]]
        if inflows:
            top = max(inflows, key=lambda f: (f["customers"], f["from_segment"] is None))
            source = top["from_segment"]
            kind = "new customers" if source is None else "split" if source in kept else "successor"
            origins.append(
                {"segment": entry["segment"], "kind": kind, "from_segment": source, "customers": top["customers"]}
            )
    for entry in identity.vanished:
        outflows = [f for f in flows if f["from_segment"] == entry["segment"] and f["to_segment"] is not None]
        if outflows:
            top = max(outflows, key=lambda f: f["customers"])
            merges.append(
                {"segment": entry["segment"], "into_segment": top["to_segment"], "customers": top["customers"]}
            )
    return {"origins": origins, "merges": merges}
