"""How far a run moved from its baseline, measured in Spark at O(customers) with O(bins + segments) rows
collected, and judged against thresholds learnt from the baseline's own variation (``drift_measures``).

The measures (``docs/how-it-works/drift.md`` says each in words):

- per model feature: the population stability index and the Jensen-Shannon distance of this run's customers
  against the baseline's, on the baseline's quantile bins (``drift.bins``); the change of its mean and median in
  the baseline's standard deviations;
- segment shares: the PSI of this run's segment sizes against the baseline's (segments matched by id);
- the model: how far each segment's centroid moved (both runs' customers in the baseline model's space, where 1
  is one standard deviation), and the adjusted Rand index of the segments of the customers in both runs;
- input health: customers against the baseline's; lines per day and each quarantine reason's share in the days
  since the baseline's as-of date, against the days before it.

Calibration: the baseline's customers are split into random halves ``drift.calibration_splits`` times (a hash of
the customer id with the split's number); each split's halves are measured against each other like two runs, and
a measure's threshold is the largest value the splits gave (about their 95th percentile with 20 splits), at least
a floor. Two halves differ by chance more than a run of the same customers does from its baseline, so a run within
the thresholds moved no more than chance would move it. The input-health thresholds are learnt the same way from
spans of as many days as since the baseline, before it. ``drift.thresholds`` sets a fixed value per measure.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segmentation.config import JobConfig
from segmentation.history import drift_measures as dm
from segmentation.history.baseline import Baseline
from segmentation.input.quarantine import DayCount, LineCounts
from segmentation.model.pipeline import SEGMENT, VECTOR
from segmentation.publish.checks import HELD, NO_BASELINE, OK, WARN, BaselineRef, DriftMeasure, DriftSection

QUANTILE_ACCURACY = 10_000


@dataclass(frozen=True)
class RunNow:
    """What the drift checks measure of this run: its customers with their features and segment, the model
    features, the customers in both runs by (baseline segment, segment), and its lines."""

    segmented: DataFrame
    features: Sequence[str]
    logged: Sequence[str]  # the features the model takes the signed log1p of
    flows: Sequence[Mapping[str, Any]]  # migration rows: from_segment, to_segment, customers
    customers: int
    counts: LineCounts
    by_day: Sequence[DayCount]
    as_of: dt.date
    first_day: dt.date | None  # the window's first day (None: all history)


def half(split: int) -> Column:
    """1 for the customers in one half of random split ``split`` of the customers, else 0."""
    return F.pmod(F.xxhash64(F.col("customer_id").cast("string"), F.lit(split)), F.lit(2)).cast("long")


# ---------------------------------------------------------------- features


def on_model_scale(value: float | None, logged: bool) -> float | None:
    """A feature value as the model sees it: signed log1p for a logged feature."""
    if value is None:
        return None
    return math.copysign(math.log1p(abs(value)), value) if logged else value


def _scaled(name: str, logged: bool) -> Column:
    value = F.col(name).cast("double")
    return F.signum(value) * F.log1p(F.abs(value)) if logged else value


@dataclass(frozen=True)
class Quantiles:
    """A feature's distinct inner quantile edges, least and largest value (as the data has them)."""

    edges: list[float]
    low: float | None
    high: float | None


def quantiles(frame: DataFrame, features: Sequence[str], bins: int) -> dict[str, Quantiles]:
    """Each feature's quantile edges for ``bins`` bins and its range, from one aggregation."""
    probabilities = [i / bins for i in range(1, bins)]
    columns = {f: F.col(f).cast("double") for f in features}
    row = frame.agg(
        *[
            F.percentile_approx(c, probabilities, QUANTILE_ACCURACY).alias(f"q{i}")
            for i, c in enumerate(columns.values())
        ],
        *[F.min(c).alias(f"lo{i}") for i, c in enumerate(columns.values())],
        *[F.max(c).alias(f"hi{i}") for i, c in enumerate(columns.values())],
    ).first()
    assert row is not None
    return {
        f: Quantiles(
            sorted({float(e) for e in row[f"q{i}"] or [] if e is not None}),
            _float(row[f"lo{i}"]),
            _float(row[f"hi{i}"]),
        )
        for i, f in enumerate(features)
    }


def _bin(value: Column, edges: Sequence[float]) -> Column:
    """The bin of ``value`` among ``edges``: how many edges it is above (-1 for null)."""
    above = sum((F.when(value > F.lit(e), 1).otherwise(0) for e in edges), F.lit(0))
    return F.when(value.isNull(), F.lit(-1)).otherwise(above)


@dataclass(frozen=True)
class Binned:
    """Per feature: customers per bin, the sum and sum of squares of its values on the model's scale; per split,
    the first half's counts per bin and sum (``half_counts[split][bin]``, ``half_sums[split]``)."""

    counts: dict[int, float]
    total: float
    sum_x: float
    sum_xx: float
    half_counts: list[dict[int, float]]
    half_sums: list[float]

    @property
    def valued(self) -> float:
        return self.total - self.counts.get(-1, 0.0)

    @property
    def mean(self) -> float | None:
        return self.sum_x / self.valued if self.valued else None

    @property
    def sd(self) -> float | None:
        if self.valued < 2:
            return None
        variance = (self.sum_xx - self.sum_x**2 / self.valued) / (self.valued - 1)
        return math.sqrt(max(variance, 0.0))


def binned(
    frame: DataFrame, edges: Mapping[str, Sequence[float]], *, logged: Sequence[str] = (), splits: int = 0
) -> dict[str, Binned]:
    """Customers per feature and bin (and per random half of ``splits`` splits), with sums of the values on the
    model's scale (``logged``: signed log1p), from one aggregation of features x bins rows."""
    names = list(edges)
    structs = [
        F.struct(
            F.lit(i).alias("f"),
            _bin(F.col(f).cast("double"), edges[f]).alias("b"),
            _scaled(f, f in logged).alias("x"),
        )
        for i, f in enumerate(names)
    ]
    halves = [half(r).alias(f"h{r}") for r in range(splits)]
    rows = (
        frame.select(F.explode(F.array(*structs)).alias("s"), *halves)
        .groupBy(F.col("s.f").alias("f"), F.col("s.b").alias("b"))
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum("s.x").alias("sx"),
            F.sum(F.col("s.x") * F.col("s.x")).alias("sxx"),
            *[F.sum(f"h{r}").alias(f"n{r}") for r in range(splits)],
            *[F.sum(F.col("s.x") * F.col(f"h{r}")).alias(f"sx{r}") for r in range(splits)],
        )
        .collect()
    )
    out: dict[str, Binned] = {}
    for i, name in enumerate(names):
        mine = [r for r in rows if r["f"] == i]
        out[name] = Binned(
            counts={int(r["b"]): float(r["n"]) for r in mine},
            total=float(sum(r["n"] for r in mine)),
            sum_x=sum(_float(r["sx"]) or 0.0 for r in mine),
            sum_xx=sum(_float(r["sxx"]) or 0.0 for r in mine),
            half_counts=[{int(r["b"]): float(r[f"n{s}"]) for r in mine} for s in range(splits)],
            half_sums=[sum(_float(r[f"sx{s}"]) or 0.0 for r in mine) for s in range(splits)],
        )
    return out


def binned_median(counts: Mapping[int, float], bounds: Sequence[float]) -> float | None:
    """The median of customers counted per bin, interpolated inside its bin (``bounds``: the bins' edges with the
    least and largest value around them, on the model's scale)."""
    total = sum(v for k, v in counts.items() if k >= 0)
    if not total:
        return None
    seen = 0.0
    for b in range(len(bounds) - 1):
        inside = counts.get(b, 0.0)
        if inside and seen + inside >= total / 2:
            return bounds[b] + (total / 2 - seen) / inside * (bounds[b + 1] - bounds[b])
        seen += inside
    return bounds[-1]


def feature_measures(cfg: JobConfig, now: RunNow, baseline: Baseline) -> list[DriftMeasure]:
    """PSI and Jensen-Shannon distance of each model feature on the baseline's quantile bins, and the change of
    its mean and median on the model's scale (signed log1p for ``features.log_features``) in the baseline's
    standard deviations there (see the module)."""
    settings, fixed = cfg.drift, cfg.drift.thresholds
    features = [f for f in now.features if f in baseline.features.columns]
    logged = [f for f in features if f in now.logged]
    found = quantiles(baseline.features, features, settings.bins)
    edges = {f: found[f].edges for f in features}
    before = binned(baseline.features, edges, logged=logged, splits=settings.calibration_splits)
    after = binned(now.segmented, edges, logged=logged)
    measures = []
    for f in features:
        b, c, q, log = before[f], after[f], found[f], f in logged
        halves = [_halves(b, s) for s in range(settings.calibration_splits)]
        psi_t = dm.Threshold.of(fixed.feature_psi, [dm.psi(h1, h0) for h1, h0 in halves], dm.FLOORS["feature_psi"])
        js_t = dm.Threshold.of(fixed.feature_js, [dm.js_distance(h1, h0) for h1, h0 in halves], dm.FLOORS["feature_js"])
        measures.append(dm.judge("feature_psi", f, dm.psi(c.counts, b.counts), threshold=psi_t))
        measures.append(dm.judge("feature_js", f, dm.js_distance(c.counts, b.counts), threshold=js_t))
        sd = b.sd
        mean_shift = (c.mean - b.mean) / sd if sd and c.mean is not None and b.mean is not None else None
        mean_t = dm.Threshold.of(
            fixed.feature_mean_shift,
            [d / sd for s in range(settings.calibration_splits) if (d := _half_mean_gap(b, s)) is not None]
            if sd
            else None,
            dm.FLOORS["feature_mean_shift"],
        )
        measures.append(dm.judge("feature_mean_shift", f, mean_shift, threshold=mean_t))
        # both runs' medians and the halves' the same way: interpolated within the baseline's bins (a median read
        # exactly would jump a whole unit for a whole-number feature, where the halves' interpolated ones glide)
        scaled = [on_model_scale(v, log) for v in (q.low, *q.edges, q.high)]
        bounds = [v for v in scaled if v is not None]
        median_shift, learnt = None, None
        if sd and len(bounds) == len(scaled):
            median_b, median_c = binned_median(b.counts, bounds), binned_median(c.counts, bounds)
            if median_b is not None and median_c is not None:
                median_shift = (median_c - median_b) / sd
            gaps = [(binned_median(h1, bounds), binned_median(h0, bounds)) for h1, h0 in halves]
            learnt = [(m1 - m0) / sd for m1, m0 in gaps if m1 is not None and m0 is not None]
        median_t = dm.Threshold.of(fixed.feature_median_shift, learnt, dm.FLOORS["feature_median_shift"])
        measures.append(dm.judge("feature_median_shift", f, median_shift, threshold=median_t))
    return measures


def _halves(b: Binned, split: int) -> tuple[dict[int, float], dict[int, float]]:
    """A split's two halves' customers per bin."""
    first = b.half_counts[split]
    return first, {k: b.counts[k] - first.get(k, 0.0) for k in b.counts}


def _half_mean_gap(b: Binned, split: int) -> float | None:
    """The difference of a split's two halves' means."""
    first, second = _halves(b, split)
    n1 = sum(v for k, v in first.items() if k != -1)
    n0 = sum(v for k, v in second.items() if k != -1)
    if not n1 or not n0:
        return None
    return b.half_sums[split] / n1 - (b.sum_x - b.half_sums[split]) / n0


# ---------------------------------------------------------------- segments and the model


def segment_means(
    space: PipelineModel, frame: DataFrame, *, splits: int = 0
) -> dict[int, tuple[float, list[float], list[float], list[list[float]]]]:
    """Per segment, in the space of ``space`` (its steps before KMeans): customers, the sum of their vectors, and
    per split the first half's customers and vector sum; one aggregation of O(segments) rows."""
    preprocessing = PipelineModel(stages=space.stages[:-1])
    width = len(space.stages[-1].clusterCenters()[0])  # type: ignore[attr-defined]
    vectors = preprocessing.transform(frame).select(
        F.col(SEGMENT).cast("int").alias("g"),
        vector_to_array(F.col(VECTOR)).alias("v"),
        *[half(r).alias(f"h{r}") for r in range(splits)],
    )
    rows = (
        vectors.groupBy("g")
        .agg(
            F.count(F.lit(1)).alias("n"),
            *[F.sum(F.col("v")[i]).alias(f"s{i}") for i in range(width)],
            *[F.sum(f"h{r}").alias(f"n{r}") for r in range(splits)],
            *[F.sum(F.col("v")[i] * F.col(f"h{r}")).alias(f"s{r}_{i}") for r in range(splits) for i in range(width)],
        )
        .collect()
    )
    return {
        int(r["g"]): (
            float(r["n"]),
            [float(r[f"s{i}"]) for i in range(width)],
            [float(r[f"n{s}"]) for s in range(splits)],
            [[float(r[f"s{s}_{i}"]) for i in range(width)] for s in range(splits)],
        )
        for r in rows
        if r["g"] is not None
    }


def model_measures(cfg: JobConfig, now: RunNow, baseline: Baseline) -> list[DriftMeasure]:
    """Segment shares' PSI, each kept segment's centroid shift and the adjusted Rand index (see the module)."""
    splits, fixed = cfg.drift.calibration_splits, cfg.drift.thresholds
    space = baseline.model or PipelineModel.load(baseline.model_path)
    before = segment_means(space, baseline.features, splits=splits)
    after = segment_means(space, now.segmented)
    sizes_before = {g: n for g, (n, _, _, _) in before.items()}
    sizes_after = {g: n for g, (n, _, _, _) in after.items()}
    half_sizes = [
        ({g: v[2][s] for g, v in before.items()}, {g: v[0] - v[2][s] for g, v in before.items()}) for s in range(splits)
    ]
    psi_t = dm.Threshold.of(fixed.segment_psi, [dm.psi(a, b) for a, b in half_sizes], dm.FLOORS["segment_psi"])
    measures = [dm.judge("segment_psi", "all segments", dm.psi(sizes_after, sizes_before), threshold=psi_t)]
    names = baseline.manifest.segment_names
    for g in sorted(set(before) & set(after)):
        n, total, half_n, half_sum = before[g]
        centre = [x / n for x in total]
        moved = _distance([x / after[g][0] for x in after[g][1]], centre)
        learnt = [
            _distance(
                [x / half_n[s] for x in half_sum[s]],
                [(t - x) / (n - half_n[s]) for t, x in zip(total, half_sum[s], strict=True)],
            )
            for s in range(splits)
            if 0 < half_n[s] < n
        ]
        threshold = dm.Threshold.of(fixed.centroid_shift, learnt, dm.FLOORS["centroid_shift"])
        measures.append(dm.judge("centroid_shift", f"{g} {names.get(g, '')}".strip(), moved, threshold=threshold))
    pairs = {
        (f["from_segment"], f["to_segment"]): int(f["customers"])
        for f in now.flows
        if f["from_segment"] is not None and f["to_segment"] is not None
    }
    rand = dm.adjusted_rand(pairs)
    measures.append(
        dm.judge(
            "adjusted_rand",
            "customers in both runs",
            rand,
            threshold=dm.Threshold(fixed.adjusted_rand, "fixed"),
            direction="below",
        )
    )
    return measures


def _distance(a: Sequence[float], b: Sequence[float]) -> float:
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))


# ---------------------------------------------------------------- input health


def input_measures(cfg: JobConfig, now: RunNow, baseline: Baseline) -> list[DriftMeasure]:
    """A log's lines per day and quarantine shares since the baseline against spans of the days before it (those
    of lines without a readable day, and all of them when there are too few such spans, against the baseline's
    whole counts, with fixed thresholds)."""
    fixed = cfg.drift.thresholds
    theirs = baseline.manifest.counts
    measures: list[DriftMeasure] = []
    chunks = dm.day_chunks(
        now.by_day,
        as_of=now.as_of,
        baseline_as_of=baseline.as_of,
        first_day=now.first_day,
        chunks=cfg.drift.calibration_splits,
    )
    if chunks.usable:
        history, new = chunks.history, chunks.new
        days = (now.as_of - baseline.as_of).days
        spans = [p for p in chunks.before if p.lines]  # a span without lines (a closed day) is no shop's average
        per_chunk = history.lines / len(spans)
        lines_t = dm.Threshold.of(
            fixed.lines_change, [p.lines / per_chunk - 1 for p in spans], dm.FLOORS["lines_change"]
        )
        measures.append(
            dm.judge("lines_change", f"lines per {days} days", new.lines / per_chunk - 1, threshold=lines_t)
        )
        for reason in sorted(set(history.quarantined) | set(new.quarantined)):
            learnt = [p.share(reason) - history.share(reason) for p in chunks.before if p.lines]
            threshold = dm.Threshold.of(fixed.quarantine_share_change, learnt, dm.FLOORS["quarantine_share_change"])
            value = new.share(reason) - history.share(reason)
            measures.append(dm.judge("quarantine_share_change", reason, value, threshold=threshold))
        undated = {reason for day, reason, _ in now.by_day if day is None and reason is not None}
        return measures + _share_changes(now, baseline, reasons=undated, fixed=fixed.quarantine_share_change)
    lines_change = now.counts.lines_in / theirs.lines_in - 1 if theirs.lines_in else None
    lines_t = dm.Threshold(fixed.lines_change or dm.FALLBACK["lines_change"], "fixed")
    measures.append(dm.judge("lines_change", "all lines", lines_change, threshold=lines_t))
    return measures + _share_changes(now, baseline, reasons=None, fixed=fixed.quarantine_share_change)


def _share_changes(
    now: RunNow, baseline: Baseline, *, reasons: set[str] | None, fixed: float | None
) -> list[DriftMeasure]:
    """Each quarantine reason's share of this run's lines in the window against the baseline's (``reasons``: only
    those; None: every reason either run has), with a fixed threshold: what has no day to be compared by."""
    theirs = baseline.manifest.counts
    share_t = dm.Threshold(fixed or dm.FALLBACK["quarantine_share_change"], "fixed")
    mine = _shares(now.counts.lines_in - now.counts.out_of_window, now.counts.quarantined)
    their = _shares(theirs.lines_in - theirs.lines_out_of_window, theirs.quarantined_by_reason)
    found = set(mine) | set(their) if reasons is None else reasons
    subject = "{} (whole run)" if reasons is not None else "{}"
    return [
        dm.judge(
            "quarantine_share_change",
            subject.format(reason),
            mine.get(reason, 0.0) - their.get(reason, 0.0),
            threshold=share_t,
        )
        for reason in sorted(found)
    ]


def _shares(lines: int, quarantined: Mapping[str, int]) -> dict[str, float]:
    return {reason: n / lines for reason, n in quarantined.items()} if lines else {}


# ---------------------------------------------------------------- the section


def measure(cfg: JobConfig, now: RunNow, baseline: Baseline | None) -> DriftSection | None:
    """The run's drift section: every measure against ``baseline`` judged, worst first, and the overall status
    (``held`` when a measure is beyond its threshold and ``drift.action`` is hold). None with drift off."""
    if not cfg.drift.enabled:
        return None
    if baseline is None:
        return DriftSection(status=NO_BASELINE, action=cfg.drift.action)
    theirs = baseline.manifest.counts.customers
    change = now.customers / theirs - 1 if theirs else None
    customers_t = dm.Threshold(cfg.drift.thresholds.customers_change, "fixed")
    measures = [
        *feature_measures(cfg, now, baseline),
        *model_measures(cfg, now, baseline),
        dm.judge("customers", "all", change, threshold=customers_t),
        *(input_measures(cfg, now, baseline) if cfg.input.kind == "transactions" else []),
    ]
    beyond = any(m.status == WARN for m in measures)
    status = (HELD if cfg.drift.action == "hold" else WARN) if beyond else OK
    return DriftSection(
        status=status,
        action=cfg.drift.action,
        baseline=BaselineRef(as_of_date=baseline.as_of.isoformat(), run_id=baseline.run_id),
        measures=dm.worst_first(measures),
        calibration=(
            f"{cfg.drift.calibration_splits} random halves of the baseline's customers; days: spans as long as "
            "the days since the baseline, before it"
        ),
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
