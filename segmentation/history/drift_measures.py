"""The drift measures' arithmetic, pure: distances between two distributions (population stability index,
Jensen-Shannon distance), the adjusted Rand index of two segmentations, calibrated thresholds, the input-health
measures from lines per day and reason, and the judgement of each measure against its threshold.

Every input is small (bins, segments, days); Spark computes them (``history.drift``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from segmentation.model.metrics import adjusted_rand_index
from segmentation.publish.checks import OK, WARN, DriftMeasure

EPSILON = 1e-4  # the share an empty bin or segment counts with in PSI (a bin empty on one side is not infinite)
FLOORS = {  # the least a calibrated threshold is: on very many customers, chance variation is almost nothing
    "feature_psi": 0.01,
    "feature_js": 0.02,
    "feature_mean_shift": 0.05,
    "feature_median_shift": 0.05,
    "segment_psi": 0.01,
    "centroid_shift": 0.1,
    "lines_change": 0.25,
    "quarantine_share_change": 0.005,
}
FALLBACK = {"lines_change": 0.5, "quarantine_share_change": 0.01}  # without days to calibrate on
MIN_CHUNKS = 3  # days chunks a calibration from the history's days needs

K = TypeVar("K")


def shares(counts: Mapping[K, float]) -> dict[K, float]:
    """Counts as shares of their total (all zero when the total is)."""
    total = float(sum(counts.values()))
    return {k: (float(v) / total if total else 0.0) for k, v in counts.items()}


def psi(current: Mapping[K, float], baseline: Mapping[K, float]) -> float:
    """Population stability index: sum over bins of (c - b) * ln(c / b), on shares, empty bins as ``EPSILON``."""
    c, b = shares(current), shares(baseline)
    total = 0.0
    for key in set(c) | set(b):
        p, q = max(c.get(key, 0.0), EPSILON), max(b.get(key, 0.0), EPSILON)
        total += (p - q) * math.log(p / q)
    return total


def js_distance(current: Mapping[K, float], baseline: Mapping[K, float]) -> float:
    """Jensen-Shannon distance with base-2 logarithms: 0 for equal distributions, 1 for disjoint ones."""
    c, b = shares(current), shares(baseline)
    divergence = 0.0
    for key in set(c) | set(b):
        p, q = c.get(key, 0.0), b.get(key, 0.0)
        m = (p + q) / 2
        divergence += (p * math.log2(p / m) if p else 0.0) + (q * math.log2(q / m) if q else 0.0)
    return math.sqrt(max(divergence / 2, 0.0))


def adjusted_rand(pairs: Mapping[tuple[int, int], int]) -> float | None:
    """Adjusted Rand index of two labelings from their contingency counts ((label a, label b) -> customers), as
    the sweep's stability measures it (``model.metrics``); None with fewer than two customers."""
    if sum(pairs.values()) < 2:
        return None
    return adjusted_rand_index(pairs)


def calibrated(values: Iterable[float], floor: float) -> float:
    """A threshold learnt from chance variation: the largest of ``values`` (one per random split of the baseline,
    so with 20 splits about its 95th percentile), and at least ``floor``."""
    found = [abs(v) for v in values if v is not None and math.isfinite(v)]
    return max([floor, *found])


@dataclass(frozen=True)
class Threshold:
    """A measure's threshold and where it came from: ``fixed`` (drift.thresholds), ``calibrated`` or ``floor``."""

    value: float
    source: str

    @classmethod
    def of(cls, fixed: float | None, learnt: Iterable[float] | None, floor: float) -> Threshold:
        """The fixed value when a team set one, else the calibrated value (``learnt``), else the floor."""
        if fixed is not None:
            return cls(float(fixed), "fixed")
        if learnt is None:
            return cls(floor, "floor")
        value = calibrated(learnt, floor)
        return cls(value, "floor" if value == floor else "calibrated")


def judge(
    measure: str,
    subject: str,
    value: float | None,
    *,
    threshold: Threshold,
    direction: Literal["above", "below"] = "above",
) -> DriftMeasure:
    """A measure's status: ``warn`` beyond its threshold (its absolute value over it; for ``below``, the value
    under it), else ``ok`` (also when the value cannot be measured). Severity: how far along to the threshold."""
    if value is None or not math.isfinite(value):
        severity = 0.0
    elif direction == "above":
        severity = abs(value) / threshold.value if threshold.value else math.inf
    else:
        severity = (1 - value) / (1 - threshold.value) if threshold.value < 1 else math.inf
    return DriftMeasure(
        measure=measure,
        subject=subject,
        value=None if value is None else round(float(value), 6),
        threshold=round(threshold.value, 6),
        direction=direction,
        threshold_from=threshold.source,
        status=WARN if severity > 1 else OK,
        severity=round(min(severity, 1e9), 4),
    )


def worst_first(measures: Sequence[DriftMeasure]) -> list[DriftMeasure]:
    """The measures by severity, highest first (then by name, so the order is stable)."""
    return sorted(measures, key=lambda m: (-m.severity, m.measure, m.subject))


# ---------------------------------------------------------------- input health from lines per day and reason


@dataclass(frozen=True)
class Period:
    """Lines dated in a span of days: all of them (not out of window) and per quarantine reason."""

    lines: int
    quarantined: Mapping[str, int]

    def share(self, reason: str) -> float:
        return self.quarantined.get(reason, 0) / self.lines if self.lines else 0.0


def period_of(rows: Iterable[tuple[dt.date | None, str | None, int]], first: dt.date, last: dt.date) -> Period:
    """The lines dated from ``first`` to ``last`` in ``(day, reason, lines)`` rows (out-of-window rows left out)."""
    lines, quarantined = 0, dict[str, int]()
    for day, reason, count in rows:
        if day is None or not first <= day <= last or reason == "out_of_window":
            continue
        lines += count
        if reason is not None:
            quarantined[reason] = quarantined.get(reason, 0) + count
    return Period(lines, quarantined)


@dataclass(frozen=True)
class DayChunks:
    """This run's days since the baseline (``new``) and up to ``chunks`` spans of as many days before it."""

    new: Period
    before: list[Period]

    @property
    def usable(self) -> bool:
        return self.new.lines > 0 and sum(1 for p in self.before if p.lines) >= MIN_CHUNKS

    @property
    def history(self) -> Period:
        """The chunks before the baseline together."""
        reasons: dict[str, int] = {}
        for p in self.before:
            for reason, n in p.quarantined.items():
                reasons[reason] = reasons.get(reason, 0) + n
        return Period(sum(p.lines for p in self.before), reasons)


def day_chunks(
    rows: Sequence[tuple[dt.date | None, str | None, int]],
    *,
    as_of: dt.date,
    baseline_as_of: dt.date,
    first_day: dt.date | None,
    chunks: int,
) -> DayChunks:
    """Split this run's lines per day into the days after the baseline's as-of date up to this run's, and the
    ``chunks`` spans of the same length before it (from ``first_day``, the window's first day, on)."""
    span = (as_of - baseline_as_of).days
    new = period_of(rows, baseline_as_of + dt.timedelta(days=1), as_of)
    dated = [d for d, _, _ in rows if d is not None]
    start = max(first_day or dt.date.min, min(dated, default=baseline_as_of))
    before: list[Period] = []
    end = baseline_as_of
    while len(before) < chunks and end - dt.timedelta(days=span - 1) >= start:
        before.append(period_of(rows, end - dt.timedelta(days=span - 1), end))
        end -= dt.timedelta(days=span)
    return DayChunks(new, before)
