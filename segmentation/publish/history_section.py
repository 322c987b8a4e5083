"""The manifest's ``history``: how a run relates to its baseline (the run, whether it was taken, how ids were kept,
matched, new and vanished segments, where they came from and went, and the migration rows)."""

from __future__ import annotations

from typing import Literal

from segmentation.publish.section import Section

_Section = Section


class RunRef(_Section):
    as_of_date: str
    run_id: str
    where: str | None = None


class Match(_Section):
    """A segment that kept its baseline id: its id, name and how far its centroid moved."""

    segment: int
    name: str
    distance: float


class NewSegment(_Section):
    """A segment with a new id: the nearest baseline segment and how far it is."""

    segment: int
    name: str
    nearest_baseline_segment: int | None = None
    nearest_baseline_name: str | None = None
    distance: float | None = None


class Vanished(_Section):
    """A baseline segment without a partner in this run."""

    segment: int
    name: str


class Origin(_Section):
    """Where a new segment's customers mostly came from: a ``split``, a ``successor`` or ``new customers``."""

    segment: int
    kind: str
    from_segment: int | None
    customers: int


class Merge(_Section):
    """Where a vanished segment's customers mostly went."""

    segment: int
    into_segment: int
    customers: int


class MigrationRow(_Section):
    """One row of the migration table: customers and revenue from one segment to another."""

    from_segment: int | None
    from_name: str
    to_segment: int | None
    to_name: str
    customers: int
    share_of_from: float
    revenue_before: float | None
    revenue_after: float | None
    expected_value: float | None = None  # this run's expected value of the customers of the flow
    direction: str


class BaselineCheck(_Section):
    """Whether the baseline found or named is related to this run (``history.relation``): the same input, or
    enough of the smaller run's customers in both runs (counts only, never a customer)."""

    run: RunRef
    input: str | None  # this run's input: its table, else its path
    baseline_input: str | None
    same_input: bool
    customers: int
    baseline_customers: int
    shared_customers: int | None = None  # in both runs; None when the same input made measuring needless
    shared_share: float | None = None  # of the smaller run's customers
    min_shared: float | None = None  # history.min_shared_customers
    related: bool


class HistorySection(_Section):
    """The run against its baseline: whether one was taken (``status``, ``reason``, ``check``), how ids were kept,
    what matched, appeared, vanished and moved. An ignored baseline is in ``check``, not ``baseline``."""

    baseline: RunRef | None = None
    status: Literal["none", "taken", "taken unrelated", "ignored"] | None = None  # None: written before statuses
    reason: str | None = None
    check: BaselineCheck | None = None
    method: str = "no baseline"
    match_distance: float | None = None
    matches: list[Match] = []
    new: list[NewSegment] = []
    vanished: list[Vanished] = []
    max_segment_id: int = 0
    origins: list[Origin] | None = None  # None without a baseline
    merges: list[Merge] | None = None
    migration: list[MigrationRow] = []
