"""The manifest of a published run (``manifest.json``): typed, versioned, built in one place (``build``), read by
attribute everywhere (``parse``), and manifests of earlier versions upgraded when read (``upgrade``).

Both kinds of run record what a reader needs to trust and join a run: its date and ids, input, line counts, the
cluster to segment mapping, the segments with their names and sizes, how it relates to its baseline, versions and
the whole configuration. A segmentation run adds its sweep, the choice of k and the model's centroids; a scoring
run names the model it used. ``schema_version`` says which version wrote it; version 1 is the untyped manifest
written before versions were recorded (it has no ``schema_version``).
"""

from __future__ import annotations

import datetime as dt
import math
import platform
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

import pyspark
from pydantic import ValidationError

from segmentation.config import JobConfig, unavailable_features
from segmentation.errors import InputError
from segmentation.publish.checks import HELD, DriftSection, Extreme
from segmentation.publish.history_section import BaselineCheck as BaselineCheck
from segmentation.publish.history_section import HistorySection as HistorySection
from segmentation.publish.history_section import Match as Match
from segmentation.publish.history_section import Merge as Merge
from segmentation.publish.history_section import MigrationRow as MigrationRow
from segmentation.publish.history_section import NewSegment as NewSegment
from segmentation.publish.history_section import Origin as Origin
from segmentation.publish.history_section import RunRef as RunRef
from segmentation.publish.history_section import Vanished as Vanished
from segmentation.publish.section import Section
from segmentation.runtime.timing import utc_timestamp
from segmentation.value import models
from segmentation.value.stage import Fitted
from segmentation.version import __version__

SCHEMA_VERSION = 2
SEGMENTATION: Literal["segmentation"] = "segmentation"
SCORING: Literal["scoring"] = "scoring"


class Attempt(Protocol):
    """An attempt at publishing a run: its date, run id and attempt id, and the folder of its files."""

    @property
    def as_of(self) -> dt.date: ...

    @property
    def run_id(self) -> str: ...

    @property
    def attempt_id(self) -> str: ...

    @property
    def folder(self) -> str: ...


_Section = Section


class InputSection(_Section):
    """What was read, and what the mapped columns could not give."""

    kind: str
    path: str | None = None
    table: str | None = None
    where: str | None = None
    orders_by: str | None = None
    exact_copies: str | None = None  # quarantine | keep: what became of exact copies (a log only)
    features_left_out: dict[str, str] = {}


class Counts(_Section):
    """Lines in, clean, quarantined (per reason) and out of window, and customers."""

    lines_in: int
    lines_clean: int
    lines_quarantined: int
    lines_out_of_window: int = 0
    quarantined_by_reason: dict[str, int] = {}
    customers: int
    exact_copies: int | None = None  # a log's lines that copy an earlier one exactly: quarantined or kept


class SegmentEntry(_Section):
    """One segment: id, name, size and share of customers."""

    segment: int
    name: str
    customers: int
    customer_share: float


class SweepEntry(_Section):
    """One k of the sweep: the metrics of its best fit (``model.metrics.KResult``)."""

    k: int
    seed: int
    wssse: float
    silhouette: float | None
    calinski_harabasz: float | None
    davies_bouldin: float | None
    stability: float | None
    cluster_sizes: list[int]
    non_empty_clusters: int
    smallest_cluster_share: float
    iterations: int
    seeds: int = 1


class SweepSample(_Section):
    used: bool
    customers: int


class RepeatSplitEntry(_Section):
    """Two segments of one behaviour told apart by buying again (``model.profiles.RepeatSplit``)."""

    one_time: int
    repeat: int
    distance: float
    alike_in: list[str]


class ReportInfo(_Section):
    """What the report's customer picture needs: the centroids in its two dimensions, and its axes' labels."""

    centroids_2d: list[tuple[float, float]] | None = None
    axes: tuple[str, str] = ("x", "y")


class ValueFitEntry(_Section):
    """One fitted value model: estimates and standard errors by parameter, and how the fit went."""

    model: str
    estimates: dict[str, float]
    standard_errors: dict[str, float | None]
    log_likelihood: float
    customers: int
    tuples: int  # distinct (x, t_x, T) tuples; for the spend model, its bins of x and ln(mean value)
    penalty: float = 0.0


class ValueSection(_Section):
    """Customer value: whether it was fitted (or why not), the fits, the settings and the totals."""

    status: Literal["fitted", "applied", "not fitted", "skipped"]  # applied: a scoring run used a trained model
    reason: str | None = None
    model: str | None = None
    time_unit: str | None = None
    horizon_days: int | None = None
    discount_rate: float | None = None
    purchases: ValueFitEntry | None = None
    spend: ValueFitEntry | None = None
    customers: int | None = None  # customers with a purchase day, so with a value
    longest_T: float | None = None  # the oldest customer's T, in the time unit
    spend_left_out: dict[str, int] = {}
    expected_purchases: float | None = None
    expected_value: float | None = None
    clv: float | None = None
    calibration: dict[str, Any] | None = None

    def fitted(self) -> Fitted | None:
        """The fitted models and the settings they score with (None when this run has none)."""
        if self.purchases is None or self.spend is None or self.time_unit is None:
            return None
        return Fitted(
            _fit_of(self.purchases),
            _fit_of(self.spend),
            self.time_unit,
            self.horizon_days or 365,
            self.discount_rate if self.discount_rate is not None else 0.1,
        )


def _fit_of(entry: ValueFitEntry) -> models.Fit:
    names = models.NAMES[entry.model]
    return models.Fit(
        model=entry.model,
        names=names,
        estimates=tuple(entry.estimates[n] for n in names),
        standard_errors=tuple(float(entry.standard_errors.get(n) or math.nan) for n in names),
        log_likelihood=entry.log_likelihood,
        customers=entry.customers,
        tuples=entry.tuples,
        converged=True,
        iterations=0,
        penalty=entry.penalty,
    )


class ModelRef(_Section):
    """The published run whose model a scoring run used."""

    run_folder: str
    as_of_date: str
    run_id: str


class IncrementalSection(_Section):
    """An incremental run's state (``input.incremental``): how it was made, what this run read into it and what it
    holds. Counts of lines are of the input, clean or not; ``late_lines``: valid new lines dated up to ``base``'s
    as-of date."""

    mode: Literal["first", "incremental", "rebuild"]  # first: no state was found; rebuild: --rebuild
    base: RunRef | None = None  # the run whose state this run added to
    base_attempt: str | None = None
    lines_read: int
    files_read: int | None = None  # files (None: a table's rows)
    lines_in_state: int
    files_in_state: int | None = None
    new_clean: int
    new_quarantined: dict[str, int] = {}
    new_copies: int = 0  # new lines that copy a line read before (quarantined unless input.exact_copies is keep)
    copies_in_state: int = 0
    late_lines: int = 0
    first_new_day: str | None = None
    last_new_day: str | None = None
    incremental_column: str | None = None
    read_up_to: str | None = None  # a table's highest incremental_column value read so far, as text


class Versions(_Section):
    """What wrote the run (a hand-made or very old manifest may say nothing)."""

    segmentation: str | None = None
    pyspark: str | None = None
    spark: str | None = None
    python: str | None = None


class Manifest(_Section):
    """The whole manifest of one published run."""

    schema_version: int = SCHEMA_VERSION
    kind: Literal["segmentation", "scoring"]
    run_id: str
    attempt_id: str
    as_of_date: str
    created_utc: str
    input: InputSection
    counts: Counts
    cluster_to_segment: dict[str, int]
    segments: list[SegmentEntry]
    # a segmentation run
    sweep: list[SweepEntry] | None = None
    chosen_k: int | None = None
    choice_reason: str | None = None
    elbow_k: int | None = None
    sweep_sample: SweepSample | None = None
    model_features: list[str] | None = None
    centroids: list[list[float]] | None = None
    repeat_splits: list[RepeatSplitEntry] | None = None
    report: ReportInfo | None = None
    # a scoring run
    model: ModelRef | None = None
    history: HistorySection | None = None
    value: ValueSection | None = None
    incremental: IncrementalSection | None = None
    extremes: list[Extreme] | None = None  # clean lines far beyond the log's medians (input.limits.extreme_factor)
    drift: DriftSection | None = None
    versions: Versions = Versions()
    config: dict[str, Any]
    timings_seconds: dict[str, float] = {}

    @property
    def segment_names(self) -> dict[int, str]:
        """Segment id -> name."""
        return {s.segment: s.name for s in self.segments}

    @property
    def mapping(self) -> dict[int, int]:
        """The model's cluster label -> segment id."""
        return {int(k): int(v) for k, v in self.cluster_to_segment.items()}

    @property
    def held(self) -> bool:
        """Published but not the current run: held by the drift gate and not promoted since."""
        return self.drift is not None and self.drift.status == HELD and self.drift.promoted_utc is None

    @property
    def max_segment_id(self) -> int:
        """The highest segment id this run or any run before it used (new behaviours are numbered after it)."""
        recorded = self.history.max_segment_id if self.history else 0
        return max([recorded, *(s.segment for s in self.segments)])

    def to_json(self) -> dict[str, Any]:
        """As written to ``manifest.json``: plain JSON values; what a run of this kind has not is left out."""
        return self.model_dump(mode="json", exclude=self._absent())

    def _absent(self) -> dict[str, Any]:
        absent: dict[str, Any] = {}
        if self.kind == SCORING:
            absent |= {name: True for name in _SEGMENTATION_ONLY if getattr(self, name) is None}
        elif self.model is None:
            absent["model"] = True
        if self.value is None:
            absent["value"] = True
        if self.incremental is None:
            absent["incremental"] = True
        for name in ("extremes", "drift"):
            if getattr(self, name) is None:
                absent[name] = True
        if self.history is not None:
            optional = ("origins", "merges", "status", "reason", "check")
            history: dict[str, Any] = {name: True for name in optional if getattr(self.history, name) is None}
            if all(row.expected_value is None for row in self.history.migration):
                history["migration"] = {"__all__": {"expected_value"}}  # runs without value, or before it
            if history:
                absent["history"] = history
        # fields later versions added, left out where a run has none (so an older manifest is written as it was)
        if self.counts.exact_copies is None:
            absent["counts"] = {"exact_copies"}
        if self.input.exact_copies is None:
            absent["input"] = {"exact_copies"}
        return absent


_SEGMENTATION_ONLY = (
    *("sweep", "chosen_k", "choice_reason", "elbow_k", "sweep_sample", "model_features"),
    *("centroids", "repeat_splits", "report"),
)


def build(
    kind: Literal["segmentation", "scoring"],
    cfg: JobConfig,
    *,
    attempt: Attempt,
    spark_version: str,
    counts: Mapping[str, Any],
    mapping: Mapping[int, int],
    profile_rows: Sequence[Mapping[str, Any]],
    history: HistorySection,
    **fields: Any,
) -> Manifest:
    """The manifest of a run of ``kind`` published as ``attempt``: what every run records, and ``fields`` of that
    kind (a segmentation run's sweep and choice of k; a scoring run's ``model``). ``counts`` holds the line counts
    and customers."""
    transactions = cfg.input.kind == "transactions"
    return Manifest(
        kind=kind,
        run_id=attempt.run_id,
        attempt_id=attempt.attempt_id,
        as_of_date=attempt.as_of.isoformat(),
        created_utc=utc_timestamp(),
        input=InputSection(
            kind=cfg.input.kind,
            path=cfg.input.path,
            table=cfg.input.table,
            where=cfg.input.where,
            orders_by=cfg.input.orders_by if transactions else None,
            exact_copies=cfg.input.exact_copies if transactions else None,
            features_left_out=unavailable_features(cfg.input) if transactions else {},
        ),
        counts=Counts.model_validate(counts),
        cluster_to_segment={str(k): v for k, v in sorted(mapping.items())},
        segments=segment_entries(profile_rows),
        history=history,
        versions=versions(spark_version),
        config=cfg.to_dict(),
        **fields,
    )


def versions(spark_version: str) -> Versions:
    """The versions of this package, pyspark, Spark and Python, as a manifest records them."""
    return Versions(
        segmentation=__version__, pyspark=pyspark.__version__, spark=spark_version, python=platform.python_version()
    )


def segment_entries(profile_rows: Sequence[Mapping[str, Any]]) -> list[SegmentEntry]:
    """The manifest's segments from the profiles' rows."""
    return [
        SegmentEntry(
            segment=r["segment"], name=r["segment_name"], customers=r["customers"], customer_share=r["customer_share"]
        )
        for r in profile_rows
    ]


def upgrade(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest of any earlier version as this version's fields (a copy; the file is not changed).

    Version 1 (no ``schema_version``): runs published before their manifest named the model's features have them
    from their configuration; runs before windows have no out-of-window lines; runs before segments over time have
    no ``history``.
    """
    data = dict(raw)
    version = int(data.get("schema_version", 1))
    if version > SCHEMA_VERSION:
        return data  # a later version: read what this one knows
    if version < 2:
        config = data.get("config") or {}
        if data.get("kind") == SEGMENTATION and "model_features" not in data and config:
            if config["input"]["kind"] == "customers":
                data["model_features"] = list(config["input"]["customers"]["numeric_columns"])
            else:
                data["model_features"] = list(config["features"]["model_features"])
        data["schema_version"] = SCHEMA_VERSION
    return data


def parse(raw: Any, where: str) -> Manifest:
    """The manifest ``raw`` (as read from JSON) of the run at ``where``, upgraded; InputError if it is not one."""
    if not isinstance(raw, dict):
        raise InputError(f"{where}: manifest.json is not a JSON object")
    try:
        return Manifest.model_validate(upgrade(raw))
    except (KeyError, TypeError, ValueError) as exc:
        if not isinstance(exc, ValidationError):
            raise InputError(f"{where}: manifest.json cannot be upgraded ({type(exc).__name__}: {exc})") from None

        first = exc.errors()[0]  # a ValidationError
        key = ".".join(str(part) for part in first["loc"])
        raise InputError(
            f"{where}: manifest.json is not a manifest this version reads ({key}: {first['msg']})"
        ) from None
