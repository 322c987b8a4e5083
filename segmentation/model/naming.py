"""Names for segments, from their standardised centroids, by deterministic rules.

A segment's centroid in the model's space is the mean of its customers' standardised features (after the
signed log1p of skewed ones): 0 is the population's average, +1 one standard deviation above it. The rules
read those values (``z``), so names mean the same thing on every data set.

Transaction logs, first rule that matches (R recency, F frequency, M monetary, A average order value,
T tenure; a feature the model does not use counts as 0):

| name | rule |
| --- | --- |
| Champions | R < -0.5, F > 0.5 and M > 0.5: bought recently, often, and spend the most |
| Loyal | F > 0.5 and R <= 0.5: buy often and have not gone quiet |
| At risk | F > 0 and R > 0.5: used to buy often, but not lately |
| Big spenders | M > 0.5 or A > 0.8: high value without high frequency |
| New | R < -0.5 and T < -0.5: first bought recently |
| Promising | R < -0.5: recent, not yet frequent or high-value |
| Lost | R > 1: last bought long ago, low frequency and value |
| Hibernating | R > 0.5: quiet for a while |
| Need attention | anything else: around the average |

Customer tables: the one or two numeric features furthest from average (|z| >= 0.5), as "high income, low
spending score"; "Average customers" when none is. Two segments never share a name: repeated names get a
qualifier by value rank ("Loyal (higher value)", "Loyal (lower value)"; "tier 1", "tier 2", ... beyond two).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence

THRESHOLD = 0.5


def transaction_name(z: Mapping[str, float]) -> str:
    """The RFM-style name of one segment from its standardised centroid."""
    r, f, m = z.get("recency_days", 0.0), z.get("frequency", 0.0), z.get("monetary", 0.0)
    a, t = z.get("avg_order_value", 0.0), z.get("tenure_days", 0.0)
    if r < -THRESHOLD and f > THRESHOLD and m > THRESHOLD:
        return "Champions"
    if f > THRESHOLD and r <= THRESHOLD:
        return "Loyal"
    if f > 0 and r > THRESHOLD:
        return "At risk"
    if m > THRESHOLD or a > 0.8:
        return "Big spenders"
    if r < -THRESHOLD and t < -THRESHOLD:
        return "New"
    if r < -THRESHOLD:
        return "Promising"
    if r > 1.0:
        return "Lost"
    if r > THRESHOLD:
        return "Hibernating"
    return "Need attention"


def feature_label(column: str) -> str:
    """A column name as words: ``Annual Income (k$)`` -> ``annual income``."""
    words = re.sub(r"\s*\(.*?\)", "", column).replace("_", " ").strip().lower()
    return re.sub(r"\s+", " ", words) or column


def attribute_name(z: Mapping[str, float], numeric: Sequence[str]) -> str:
    """A customer-table segment's name from its most distinctive numeric features."""
    distinct = sorted(
        (c for c in numeric if abs(z.get(c, 0.0)) >= THRESHOLD), key=lambda c: (-abs(z.get(c, 0.0)), numeric.index(c))
    )[:2]
    if not distinct:
        return "Average customers"
    ordered = sorted(distinct, key=numeric.index)
    return ", ".join(("high " if z[c] > 0 else "low ") + feature_label(c) for c in ordered).capitalize()


def unique_names(names: Mapping[int, str]) -> dict[int, str]:
    """Add a qualifier to names used by more than one segment (segments are ordered by value already)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for segment in sorted(names):
        groups[names[segment]].append(segment)
    unique = {}
    for name, segments in groups.items():
        if len(segments) == 1:
            unique[segments[0]] = name
        elif len(segments) == 2:
            unique[segments[0]], unique[segments[1]] = f"{name} (higher value)", f"{name} (lower value)"
        else:
            for tier, segment in enumerate(segments, start=1):
                unique[segment] = f"{name} (tier {tier})"
    return unique


def name_segments(centroids: Mapping[int, Sequence[float]], *, features: Sequence[str], kind: str) -> dict[int, str]:
    """Segment id -> unique name, from each segment's standardised centroid over the numeric ``features``.

    Each centroid holds exactly one value per feature, in order (a customer table's one-hot dimensions are
    left out by the caller: see ``model.pipeline.segment_names``).
    """
    names = {}
    for segment, centre in centroids.items():
        z = dict(zip(features, (float(v) for v in centre), strict=True))
        names[segment] = transaction_name(z) if kind == "transactions" else attribute_name(z, list(features))
    return unique_names(names)
