"""The report's words on the checks before publishing: the "What changed" table of drift measures (worst first)
with a sentence for each one beyond its threshold, and the data-quality lines on implausible and extreme values."""

from __future__ import annotations

import html

from segmentation.publish import Manifest
from segmentation.publish.checks import DriftMeasure

LABELS = {
    "feature_psi": "distribution (PSI)",
    "feature_js": "distribution (Jensen-Shannon)",
    "feature_mean_shift": "mean shift (SD)",
    "feature_median_shift": "median shift (SD)",
    "segment_psi": "segment shares (PSI)",
    "centroid_shift": "centroid shift (SD)",
    "adjusted_rand": "same customers, same segments (ARI)",
    "customers": "customers (change)",
    "lines_change": "lines (change)",
    "quarantine_share_change": "quarantined share (change)",
}


def sentence(m: DriftMeasure) -> str:
    """One measure beyond its threshold, in words an analyst reads."""
    v, t = m.value or 0.0, m.threshold or 0.0
    way = "rose" if v > 0 else "fell"
    texts = {
        "feature_psi": f"The distribution of {m.subject} moved: its population stability index against the baseline "
        f"is {v:.3f}, beyond the {t:.3f} that chance gives.",
        "feature_js": f"The distribution of {m.subject} moved: its Jensen-Shannon distance to the baseline is {v:.3f} "
        f"(threshold {t:.3f}).",
        "feature_mean_shift": f"The mean of {m.subject} {way} by {abs(v):.2f} baseline standard deviations "
        f"(threshold {t:.2f}).",
        "feature_median_shift": f"The median of {m.subject} {way} by {abs(v):.2f} baseline standard deviations "
        f"(threshold {t:.2f}).",
        "segment_psi": f"The segments' sizes changed more than chance: population stability index {v:.3f} "
        f"(threshold {t:.3f}).",
        "centroid_shift": f"Segment {m.subject} now describes other customers: its centre moved {v:.2f} baseline "
        f"standard deviations (threshold {t:.2f}).",
        "adjusted_rand": f"Customers in both runs are grouped differently: adjusted Rand index {v:.2f}, below {t:.2f}.",
        "customers": f"The number of customers {way} by {abs(v):.0%} (threshold {t:.0%}).",
        "lines_change": f"The lines since the baseline ({m.subject}) {way} by {abs(v):.0%} against the days before "
        f"it (threshold {t:.0%}).",
        "quarantine_share_change": f"The share of lines quarantined as {m.subject} {way} by {abs(v):.1%} points "
        f"since the baseline (threshold {t:.1%}).",
    }
    return texts.get(m.measure, f"{m.measure} of {m.subject} is {v:.4g} (threshold {t:.4g}).")


def _value(m: DriftMeasure) -> str:
    return "-" if m.value is None else f"{m.value:.4g}"


def drift_lines(manifest: Manifest) -> list[str]:
    """The opening of "What changed": the status, the measures worst first, and a sentence for each beyond."""
    drift = manifest.drift
    if drift is None:
        return ["The drift checks were off for this run (drift.enabled or history.enabled is false)."]
    if drift.baseline is None:
        return ["No baseline to measure drift against: this run is the first of its line."]
    beyond = drift.beyond
    lines = [_status_text(manifest), ""]
    lines += ["| measure | of | value | threshold | status |", "| --- | --- | --- | --- | --- |"]
    for m in drift.measures:
        bound = f"{'≥' if m.direction == 'below' else '≤'} {m.threshold:.4g} ({m.threshold_from})"
        lines.append(f"| {LABELS.get(m.measure, m.measure)} | {m.subject} | {_value(m)} | {bound} | {m.status} |")
    if beyond:
        lines += ["", *[f"- {sentence(m)}" for m in beyond]]
    return lines


def _status_text(manifest: Manifest) -> str:
    drift = manifest.drift
    assert drift is not None and drift.baseline is not None
    against = f"the run of {drift.baseline.as_of_date} (run id {drift.baseline.run_id})"
    count = len(drift.beyond)
    if not count:
        return f"Every measure against {against} is within its threshold: nothing moved more than chance would."
    text = f"{count} of {len(drift.measures)} measures against {against} are beyond their thresholds."
    if manifest.held:
        text += (
            " The run is held (drift.action: hold): it is published but not the current run until a person "
            f"promotes it (segmentation promote {manifest.as_of_date} {manifest.run_id})."
        )
    elif drift.promoted_utc:
        text += f" It was held, and promoted at {drift.promoted_utc}."
    return text


def drift_html(manifest: Manifest) -> str:
    """``drift_lines`` as HTML: the status, the table and the sentences."""
    esc = html.escape
    drift = manifest.drift
    if drift is None or drift.baseline is None:
        return "".join(f"<p>{esc(line)}</p>" for line in drift_lines(manifest))
    rows = "".join(
        f'<tr class="{m.status}"><td>{esc(LABELS.get(m.measure, m.measure))}</td><td>{esc(m.subject)}</td>'
        f"<td>{_value(m)}</td><td>{'≥' if m.direction == 'below' else '≤'} {m.threshold:.4g} "
        f"({esc(m.threshold_from)})</td><td>{m.status}</td></tr>"
        for m in drift.measures
    )
    sentences = "".join(f"<li>{esc(sentence(m))}</li>" for m in drift.beyond)
    return (
        f'<p id="drift-status">{esc(_status_text(manifest))}</p><table id="drift"><tr><th>measure</th><th>of</th>'
        f"<th>value</th><th>threshold</th><th>status</th></tr>{rows}</table>"
        + (f'<ul id="drift-beyond">{sentences}</ul>' if sentences else "")
    )


def plausibility_lines(manifest: Manifest) -> list[str]:
    """Data quality: the limits lines are quarantined beyond, and clean lines far beyond the log's medians."""
    if manifest.input.kind != "transactions":
        return []
    limits = (manifest.config.get("input") or {}).get("limits") or {}
    stated = ", ".join(f"{k} {v:,g}" for k, v in limits.items() if k.startswith("max_") and v is not None)
    lines = []
    implausible = manifest.counts.quarantined_by_reason.get("implausible_value", 0)
    if stated:
        lines.append(
            f"Lines beyond input.limits ({stated}) are quarantined as implausible_value, the limit named in the "
            f"quarantine's detail column: {implausible} this run."
        )
    for e in manifest.extremes or []:
        lines.append(
            f"Extreme values: {e.lines} clean lines have a {e.column.replace('_', ' ')} over {e.factor:,g} times the "
            f"log's median ({e.median:,.4g}); the largest is {e.largest / e.median:,.3g} times it. They stay in the "
            "features: check them before trusting the segments' money figures."
        )
    return lines
