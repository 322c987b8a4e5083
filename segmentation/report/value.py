"""The report's value section: what the models say in plain words, each segment's share of customers, past
revenue and next horizon's expected value, a sentence for each segment whose future share is far from its past
one, and three charts (those shares side by side, P(alive) over frequency and recency, and the holdout calibration).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from segmentation.publish import Manifest
from segmentation.report.figures import CHART_SIZE, DPI, png
from segmentation.report.inputs import ReportInputs
from segmentation.value import models

# A segment's future is "far from its past" when its share of expected value is under 2/3 or over 3/2 of its share
# of past revenue, and the two differ by at least 5 percentage points.
FAR_RATIO = 1.5
FAR_POINTS = 0.05
GRID = 40  # the P(alive) chart's cells per axis


def far_sentences(profiles: pd.DataFrame, horizon_days: int) -> list[str]:
    """E.g. "Champions hold 31% of past revenue and 18% of the next 365 days' expected value: 40% of them are
    probably no longer active." for each segment whose future share is far from its past one."""
    needed = {"revenue_share", "expected_value_share", "probably_inactive_share"}
    if not needed <= set(profiles.columns):
        return []
    out = []
    for row in profiles.itertuples():
        past, future = row.revenue_share, row.expected_value_share
        if pd.isna(past) or pd.isna(future) or abs(future - past) < FAR_POINTS:
            continue
        if past > 0 and future > 0 and 1 / FAR_RATIO <= future / past <= FAR_RATIO:
            continue
        inactive = row.probably_inactive_share
        tail = (
            f": {inactive:.0%} of them are probably no longer active"
            if future < past and pd.notna(inactive)
            else ": their customers are more likely to buy again than their past revenue suggests"
            if future > past
            else ""
        )
        out.append(
            f"{row.segment_name} hold {past:.0%} of past revenue and {future:.0%} of the next {horizon_days} days' "
            f"expected value{tail}."
        )
    return out


def value_lines(run: ReportInputs) -> list[str]:
    """The section's Markdown lines (a single line when value was skipped or not fitted)."""
    section = run.manifest.value
    if section is None:
        return ["Customer value was not computed for this run (it was published before value models)."]
    if section.status == "skipped":
        return [f"Customer value: skipped ({section.reason})."]
    if section.status == "not fitted":
        return [f"Customer value: not fitted. {section.reason}."]
    purchases, spend = section.purchases, section.spend
    assert purchases is not None and spend is not None
    horizon = section.horizon_days
    model = "BG/NBD" if purchases.model == models.BGNBD else "Pareto/NBD"
    left_out = section.spend_left_out
    lines = [
        f"{model} models how often each customer buys and the chance that they have stopped buying (P(alive)); "
        "Gamma-Gamma models what a purchase is worth. Both assume purchases at will, not by subscription "
        "(non-contractual), and that how much a customer spends does not depend on how often they buy.",
        "",
        f"Over the next {horizon} days the {section.customers} customers are expected to make "
        f"{section.expected_purchases:,.0f} repeat purchases worth {section.expected_value:,.2f}; discounted at "
        f"{section.discount_rate:.0%} a year, {section.clv:,.2f} (clv).",
        "",
        f"Fitted on {purchases.customers} customers in {purchases.tuples} distinct (x, t_x, T) summaries, time in "
        f"{section.time_unit}s: " + ", ".join(f"{k} = {v:.4g}" for k, v in purchases.estimates.items()) + "; spend "
        "on "
        + f"{spend.customers} customers: "
        + ", ".join(f"{k} = {v:.4g}" for k, v in spend.estimates.items())
        + ".",
        "",
        f"The spend model leaves out {left_out.get('no_repeat_purchase', 0)} customers without a repeat purchase and "
        f"{left_out.get('mean_value_not_positive', 0)} whose repeat purchases are worth 0 or less on average; they "
        "are valued at the population's mean purchase value.",
        "",
        "| segment | name | customers | share | revenue share | expected value share | mean clv | median clv | "
        "mean P(alive) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in run.profiles.itertuples():
        lines.append(
            f"| {row.segment} | {row.segment_name} | {row.customers} | {row.customer_share:.1%} | "
            f"{_share(getattr(row, 'revenue_share', None))} | {_share(getattr(row, 'expected_value_share', None))} | "
            f"{_money(getattr(row, 'mean_clv', None))} | {_money(getattr(row, 'median_clv', None))} | "
            f"{_share(getattr(row, 'mean_p_alive', None))} |"
        )
    lines += ["", *[f"- {s}" for s in far_sentences(run.profiles, horizon or 0)]]
    if section.calibration:
        lines += ["", *calibration_lines(section.calibration)]
    return lines


def calibration_lines(calibration: Mapping[str, Any]) -> list[str]:
    """The holdout's numbers in words."""
    auc = calibration.get("auc")
    auc_expected = calibration.get("auc_expected_purchases")
    return [
        f"Holdout {calibration['start']} to {calibration['end']}: {calibration['customers']} customers were expected "
        f"to make {calibration['predicted_total']:,.0f} repeat purchases and made {calibration['actual_total']:,.0f} "
        f"(mean absolute error {calibration['mean_absolute_error']:.3f} per customer). Ranking customers by expected "
        f"purchases finds those who bought again with an AUC of {_number(auc_expected)}; by P(alive) alone, "
        f"{_number(auc)} (a customer who never bought again counts as alive, and most of them do not buy)."
    ]


def _share(value: Any) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.1%}"


def _money(value: Any) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:,.2f}"


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def shares_chart(run: ReportInputs) -> bytes | None:
    """Each segment's share of customers, of past revenue and of the horizon's expected value, side by side."""
    profiles = run.profiles
    if "expected_value_share" not in profiles or profiles["expected_value_share"].isna().all():
        return None
    labels = [f"{s} {n}" for s, n in zip(profiles["segment"], profiles["segment_name"], strict=True)]
    positions = np.arange(len(labels))
    figure = Figure(figsize=CHART_SIZE, dpi=DPI)
    axis = figure.subplots()
    bars = [
        ("customer_share", "customers"),
        ("revenue_share", "past revenue"),
        ("expected_value_share", "expected value"),
    ]
    width = 0.8 / len(bars)
    for i, (column, label) in enumerate(bars):
        axis.bar(positions + (i - 1) * width, profiles[column].fillna(0) * 100, width, label=label)
    axis.set_xticks(positions, labels, rotation=20, ha="right", fontsize=8)
    axis.set_ylabel("% of total")
    axis.set_title("Share of customers, past revenue and next horizon's expected value")
    axis.legend()
    figure.tight_layout()
    return png(figure)


def p_alive_chart(manifest: Manifest) -> bytes | None:
    """P(alive) over frequency (x) and recency (t_x) for a customer first seen at the longest T of the data."""
    section = manifest.value
    fitted = section.fitted() if section else None
    calibration_T = section.longest_T if section else None
    if fitted is None or not calibration_T or section is None:
        return None
    purchases = fitted.purchases
    most = max(int(np.ceil(calibration_T)), 1)
    xs, recencies = np.meshgrid(np.arange(0, GRID), np.linspace(0, calibration_T, GRID))
    alive = models.p_alive(
        purchases,
        models.Tuples(xs.ravel(), np.where(xs.ravel() > 0, recencies.ravel(), 0.0), np.full(xs.size, calibration_T)),
    ).reshape(xs.shape)
    figure = Figure(figsize=CHART_SIZE, dpi=DPI)
    axis = figure.subplots()
    image = axis.imshow(alive, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1, extent=(0, GRID, 0, most))
    axis.set_xlabel("repeat purchases (x)")
    axis.set_ylabel(f"recency: {section.time_unit}s from first to last purchase (t_x)")
    figure.colorbar(image, ax=axis, label="P(alive)")
    axis.set_title(f"P(alive) for a customer who first bought {calibration_T:.0f} {section.time_unit}s ago")
    figure.tight_layout()
    return png(figure)


def calibration_chart(manifest: Manifest) -> bytes | None:
    """Mean predicted and mean actual repeat purchases in the holdout per calibration frequency."""
    section = manifest.value
    if section is None or not section.calibration:
        return None
    table = pd.DataFrame(section.calibration["table"])
    figure = Figure(figsize=CHART_SIZE, dpi=DPI)
    axis = figure.subplots()
    axis.plot(table["frequency"], table["mean_actual"], marker="o", label="actual")
    axis.plot(table["frequency"], table["mean_predicted"], marker="s", linestyle="--", label="predicted")
    axis.set_xlabel("repeat purchases before the as-of date (x)")
    axis.set_ylabel("mean repeat purchases in the holdout")
    axis.set_title(f"Holdout {section.calibration['start']} to {section.calibration['end']}: predicted and actual")
    axis.legend()
    figure.tight_layout()
    return png(figure)


def value_charts(run: ReportInputs) -> dict[str, bytes]:
    """The section's charts by name, in report order (charts without data are left out)."""
    made = {
        "value_shares": shares_chart(run),
        "p_alive": p_alive_chart(run.manifest),
        "calibration": calibration_chart(run.manifest),
    }
    return {name: image for name, image in made.items() if image is not None}
