"""The manifest's record of the checks a run passed before it was published: clean lines with extreme values
(``Extreme``), and the drift measures against the baseline with the gate's decision (``DriftSection``)."""

from __future__ import annotations

from typing import Literal

from segmentation.publish.section import Section

OK, WARN = "ok", "warn"
HELD = "held"  # the run's overall status when drift.action is hold and a measure is beyond its threshold
NO_BASELINE = "no baseline"


class Extreme(Section):
    """Clean lines whose quantity, unit price or value is over ``factor`` times the log's median of it."""

    column: str  # quantity | unit_price | value
    lines: int
    median: float
    largest: float
    factor: float


class DriftMeasure(Section):
    """One measure against the baseline: what (``measure``, and the feature or segment it is of), its value,
    the threshold it is judged on (``direction`` above: warn when the value is over it; below: under it), how
    the threshold was set, and the status."""

    measure: str
    subject: str
    value: float | None
    threshold: float | None
    direction: Literal["above", "below"] = "above"
    threshold_from: str  # calibrated | fixed | floor
    status: Literal["ok", "warn"]
    severity: float  # |value| over threshold; for a lower bound (1 - value) over (1 - threshold): above 1 is beyond

    @property
    def beyond(self) -> bool:
        return self.status == WARN


class BaselineRef(Section):
    """The run the measures are against."""

    as_of_date: str
    run_id: str


class DriftSection(Section):
    """The run's drift measures against its baseline (worst first), the overall status and what the gate did.

    ``status``: ok, warn (a measure beyond its threshold, published as the current run), held (the same with
    ``drift.action: hold``: published, but not the current run until promoted) or ``no baseline``.
    """

    status: Literal["ok", "warn", "held", "no baseline"]
    action: Literal["warn", "hold"]
    baseline: BaselineRef | None = None
    measures: list[DriftMeasure] = []
    calibration: str = ""  # how the calibrated thresholds were learnt, in words
    promoted_utc: str | None = None  # when a held run was promoted (segmentation promote)

    @property
    def beyond(self) -> list[DriftMeasure]:
        """The measures beyond their thresholds, worst first."""
        return [m for m in self.measures if m.beyond]
