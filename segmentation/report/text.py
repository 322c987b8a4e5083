"""The report's words: the chosen k and why, a sentence per segment, the changes since the baseline, data quality,
as Markdown and as one self-contained HTML page (charts embedded)."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from segmentation.model import profiles
from segmentation.model.sweep_text import seeds_note
from segmentation.publish import Manifest
from segmentation.report.drift import drift_html, drift_lines, plausibility_lines
from segmentation.report.inputs import ReportInputs
from segmentation.report.value import value_lines


def movement_sentences(manifest: Manifest, limit: int = 5) -> list[str]:
    """The largest moves in words, e.g. "312 Champions (14%) moved to At risk, carrying 9% of last period's
    revenue" (customers who stayed are left out)."""
    flows = manifest.history.migration if manifest.history else []
    before = sum(f.revenue_before or 0.0 for f in flows if f.from_segment is not None)
    moves = sorted((f for f in flows if f.direction != "same"), key=lambda f: (-f.customers, str(f.model_dump())))
    sentences = []
    for f in moves[:limit]:
        if f.from_segment is None:
            sentences.append(f"{f.customers} customers new since the baseline joined {f.to_name}.")
            continue
        carrying = f", carrying {(f.revenue_before or 0.0) / before:.0%} of last period's revenue" if before else ""
        where = "became inactive (no purchase in this run)" if f.to_segment is None else f"moved to {f.to_name}"
        sentences.append(f"{f.customers} {f.from_name} ({f.share_of_from:.0%}) {where}{carrying}.")
    return sentences


def history_lines(manifest: Manifest) -> list[str]:
    """The report's section on changes since the baseline: how segments matched, and the largest moves."""
    entry = manifest.history
    if entry is not None and entry.status == "ignored" and entry.check is not None:
        run = entry.check.run
        return [
            f"The earlier run of {run.as_of_date} (run id {run.run_id}) was not taken as the baseline, for its "
            f"{entry.reason}, so this run's segments start their ids here and no movements are shown."
        ]
    if entry is None or entry.baseline is None:
        return [
            "This run has no baseline (no earlier published run of this run id, or history is off), so its "
            "segments start their ids here and no movements are shown."
        ]
    baseline = entry.baseline
    lines = [f"Compared with the run of {baseline.as_of_date} (run id {baseline.run_id}), by {entry.method}."]
    if entry.status == "taken unrelated":
        lines.append(f"It was taken because history.baseline names it, though it is unrelated: {entry.reason}.")
    lines.append("")
    names = {f.to_segment: f.to_name for f in entry.migration if f.to_segment is not None}
    names |= {f.from_segment: f.from_name for f in entry.migration if f.from_segment is not None}
    for m in entry.matches:
        lines.append(f"- Kept: {m.segment} {m.name} (centroid moved {m.distance:.2f} standard deviations).")
    origins = {o.segment: o for o in entry.origins or []}
    merged_from: dict[int, list[int]] = {}
    for merge in entry.merges or []:
        merged_from.setdefault(merge.into_segment, []).append(merge.segment)
    for n in entry.new:
        lines.append(f"- New: {n.segment} {n.name}{_origin_text(n.segment, origins, merged_from, names)}.")
    merges = {g.segment: g for g in entry.merges or []}
    for v in entry.vanished:
        gone = merges.get(v.segment)
        into = f"; most of its customers went to {gone.into_segment} {names.get(gone.into_segment, '')}" if gone else ""
        lines.append(f"- Vanished: {v.segment} {v.name}{into}.")
    moves = movement_sentences(manifest)
    if moves:
        lines += ["", "Largest movements:", "", *[f"- {m}" for m in moves]]
    return lines


def _origin_text(segment: int, origins: Mapping[int, Any], merged_from: Mapping[int, list[int]], names: Any) -> str:
    """How a new segment came about: a merge, a split, new customers, or mostly former members of another."""
    origin = origins.get(segment)
    if len(merged_from.get(segment, [])) > 1:
        return "; a merge of " + " and ".join(f"{s} {names.get(s, '')}".rstrip() for s in merged_from[segment])
    if origin and origin.kind == "split":
        return f"; split from {origin.from_segment} {names.get(origin.from_segment, '')}".rstrip()
    if origin and origin.kind == "new customers":
        return "; mostly customers new since the baseline"
    if origin:
        return f"; mostly former {origin.from_segment} {names.get(origin.from_segment, '')}".rstrip()
    return ""


def segment_sentence(row: pd.Series, key_features: Sequence[str]) -> str:
    """One sentence about a segment, e.g. "Champions: 9% of customers, 41% of revenue; median ..."."""
    parts = [f"{row['customer_share']:.0%} of customers"]
    if "revenue_share" in row and pd.notna(row.get("revenue_share")):
        parts.append(f"{row['revenue_share']:.0%} of revenue")
    medians = ", ".join(f"{f.replace('_', ' ')} {row[f'median_{f}']:,.4g}" for f in key_features)
    return f"{row['segment_name']}: {', '.join(parts)}; medians: {medians}."


def segment_rows(run: ReportInputs) -> list[dict[str, Any]]:
    """The per-segment table: name, size, shares, key medians and the sentence."""
    key = [f for f in run.model_features if f"median_{f}" in run.profiles.columns][:4]
    rows = []
    for _, row in run.profiles.iterrows():
        rows.append(
            {
                "segment": int(row["segment"]),
                "name": str(row["segment_name"]),
                "customers": int(row["customers"]),
                "customer_share": float(row["customer_share"]),
                "revenue_share": float(row["revenue_share"]) if "revenue_share" in row else None,
                "medians": {f: float(row[f"median_{f}"]) for f in key},
                "sentence": segment_sentence(row, key),
            }
        )
    return rows


def markdown(run: ReportInputs, rows: Sequence[Mapping[str, Any]]) -> str:
    """The report as Markdown: the chosen k and why, the segment table and sentences, data quality."""
    m = run.manifest
    lines = [
        f"# Segmentation report: {m.as_of_date}, run {m.run_id}",
        "",
        f"**Chosen k = {m.chosen_k}.** {m.choice_reason}",
        "",
        *[line for note in choice_notes(m, run.names) for line in (note, "")],
        "| segment | name | customers | share | revenue share |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        revenue = f"{r['revenue_share']:.1%}" if r["revenue_share"] is not None else "-"
        lines.append(f"| {r['segment']} | {r['name']} | {r['customers']} | {r['customer_share']:.1%} | {revenue} |")
    lines += ["", *[f"- {r['sentence']}" for r in rows], "", "## What changed", ""]
    lines += [
        *drift_lines(m),
        "",
        *history_lines(m),
        "",
        "## What customers are worth next",
        "",
        *value_lines(run),
        "",
        "## Data quality",
        "",
    ]
    lines += _quality_lines(m)
    lines.append(f"\nCustomers: {m.counts.customers}.")
    return "\n".join(lines) + "\n"


SILHOUETTE_NOTE = (
    "Silhouette values here are Spark's (ClusteringEvaluator), computed on squared Euclidean distances: they "
    "usually run higher than the usual silhouette (scikit-learn's, on Euclidean distances) of the same segments. "
    "Compare them between values of k, not with figures from other tools."
)


def choice_notes(manifest: Manifest, names: Mapping[int, str]) -> list[str]:
    """Notes under the chosen k: segments that split one behaviour into one-time and repeat buyers, and what
    the silhouette numbers are."""
    splits = [
        profiles.RepeatSplit(s.one_time, s.repeat, s.distance, tuple(s.alike_in)) for s in manifest.repeat_splits or []
    ]
    notes = [profiles.repeat_split_sentence(split, names) for split in splits]
    if manifest.sweep:
        notes.append(SILHOUETTE_NOTE)
        seeds = seeds_note({entry.k: entry.seeds for entry in manifest.sweep})
        if seeds:
            notes.append(seeds[0].upper() + seeds[1:] + ".")
    return notes


def _quality_lines(manifest: Manifest) -> list[str]:
    counts = manifest.counts
    threshold = manifest.config["quality"]["max_quarantine_share"]
    out = counts.lines_out_of_window  # runs published before windows have none
    in_window = counts.lines_in - out
    share = counts.lines_quarantined / in_window if in_window else 0.0
    lines = [
        f"Lines in: {counts.lines_in}; clean: {counts.lines_clean}; quarantined: "
        f"{counts.lines_quarantined} ({share:.1%}{' of the lines in the window' if out else ''}; the run fails "
        f"above {threshold:.0%}).",
    ]
    if out:
        lines.append(f"Out of window: {out} (dated {_window_text(manifest)}; not quarantined).")
    if manifest.input.exact_copies:
        kept = "kept as purchases" if manifest.input.exact_copies == "keep" else "quarantined as duplicate_line"
        lines.append(f"Exact copies of another line: {counts.exact_copies} ({kept}; input.exact_copies).")
    lines += plausibility_lines(manifest)
    lines.append("")
    lines += [f"- `{reason}`: {n}" for reason, n in sorted(counts.quarantined_by_reason.items())]
    return [*lines, "", *incremental_lines(manifest), *input_lines(manifest)]


def incremental_lines(manifest: Manifest) -> list[str]:
    """What an incremental run read that was new, and what its state holds (none for another run)."""
    state = manifest.incremental
    if state is None:
        return []
    base = state.base.as_of_date if state.base else "?"
    made = {
        "first": "No state was found: this run read the whole input and started one.",
        "rebuild": "This run read the whole input into a new state (--rebuild).",
        "incremental": f"This run added what was new to the state of the run of {base}.",
    }[state.mode]
    source = f" from {state.files_read} new files" if state.files_read is not None else ""
    if state.read_up_to is not None:
        source += f" (rows up to {state.incremental_column} = {state.read_up_to})"
    days = f", dated {state.first_new_day} to {state.last_new_day}" if state.first_new_day else ""
    quarantined = sum(state.new_quarantined.values())
    lines = [
        f"Incremental: {made} New lines read: {state.lines_read}{source}{days}; {state.new_clean} absorbed, "
        f"{quarantined} quarantined, {state.new_copies} exact copies of a line read before.",
        f"The state holds {state.lines_in_state} lines"
        + (f" of {state.files_in_state} files" if state.files_in_state is not None else "")
        + "; the counts above are of all of them, as a full run over the same input would count them.",
    ]
    if state.late_lines:
        lines.append(
            f"Late lines: {state.late_lines} new valid lines are dated before the earlier run's as-of date; they count "
            "from this run on (published runs are not changed)."
        )
    return [*lines, ""]


ORDERS_BY = {
    "invoice": "an invoice",
    "timestamp": "a customer's lines at one timestamp (no invoice ids)",
    "line": "each line (no invoice ids)",
}


def input_lines(manifest: Manifest) -> list[str]:
    """What was read (a table, and the predicate that selected lines), what an order is, and the features
    the input could not give (left out of the model, not filled with zeros); runs before these have less."""
    given, lines = manifest.input, []
    if given.table:
        lines.append(f"Input: the table {given.table}.")
    if given.where:
        lines.append(f"Lines read: those where {given.where}.")
    if given.orders_by:
        lines.append(f"An order is {ORDERS_BY[given.orders_by]}.")
    left_out = given.features_left_out
    if left_out:
        lines.append("Features the input cannot give (not computed, in no table and not in the model):")
        lines += [f"- `{name}`: {why}" for name, why in sorted(left_out.items())]
    return lines


def _window_text(manifest: Manifest) -> str:
    """Where the out-of-window lines are dated: outside the W days ending with the as-of date, or after it."""
    days = manifest.config["features"].get("window_days")
    as_of = manifest.as_of_date
    return f"outside the {days} days ending {as_of}" if days else f"after the as-of date {as_of}"


def value_html(run: ReportInputs) -> str:
    """The value section as HTML: paragraphs, its segment table (``id="value-segments"``) and its sentences."""
    esc, parts, header = html.escape, [], True
    for line in value_lines(run):
        if not line or line.startswith("| ---"):
            continue
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            tag = "th" if header else "td"
            parts.append("<tr>" + "".join(f"<{tag}>{esc(c)}</{tag}>" for c in cells) + "</tr>")
            header = False
        else:
            parts.append(f"<li>{esc(line[2:])}</li>" if line.startswith("- ") else f"<p>{esc(line)}</p>")
    rows = [p for p in parts if p.startswith("<tr>")]
    table = f'<table id="value-segments">{"".join(rows)}</table>' if rows else ""
    before = [p for p in parts[: parts.index(rows[0])]] if rows else parts
    after = parts[parts.index(rows[-1]) + 1 :] if rows else []
    return "".join(before) + table + "".join(after)


def html_page(run: ReportInputs, rows: Sequence[Mapping[str, Any]], images: Mapping[str, bytes]) -> str:
    """The report as one self-contained HTML page, the charts embedded as PNG."""
    m = run.manifest
    esc = html.escape
    table = "".join(
        f"<tr><td>{r['segment']}</td><td>{esc(r['name'])}</td><td>{r['customers']}</td>"
        f"<td>{r['customer_share']:.1%}</td>"
        f"<td>{'' if r['revenue_share'] is None else format(r['revenue_share'], '.1%')}</td>"
        f"<td>{esc('; '.join(f'{k} {v:,.4g}' for k, v in r['medians'].items()))}</td>"
        f"<td>{esc(r['sentence'])}</td></tr>"
        for r in rows
    )
    figures = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<figcaption>{esc(name.replace('_', ' '))}</figcaption></figure>"
        for name, png in images.items()
    )
    changes = "".join(
        f"<p>{esc(line)}</p>" if not line.startswith("- ") else f"<li>{esc(line[2:])}</li>"
        for line in history_lines(m)
        if line
    )
    worth = value_html(run)
    quality = "".join(
        f"<p>{esc(line)}</p>" if not line.startswith("- ") else f"<li>{esc(line[2:])}</li>"
        for line in _quality_lines(m)
        if line
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Segmentation report {esc(m.as_of_date)} {esc(m.run_id)}</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;font-size:90%}}
tr.warn td{{background:#fde2e1}}
figure{{margin:1em 0}}img{{max-width:100%}}</style></head>
<body>
<h1>Segmentation report: {esc(m.as_of_date)}, run {esc(m.run_id)}</h1>
<p id="chosen-k"><strong>Chosen k = {m.chosen_k}.</strong> {esc(m.choice_reason or "")}</p>
{"".join(f'<p class="choice-note">{esc(note)}</p>' for note in choice_notes(m, run.names))}
<h2>Segments</h2>
<table id="segments"><tr><th>segment</th><th>name</th><th>customers</th><th>share</th><th>revenue share</th>
<th>key medians</th><th>in one sentence</th></tr>{table}</table>
<h2>What changed</h2><div id="what-changed">{drift_html(m)}</div><div id="history">{changes}</div>
<h2>What customers are worth next</h2><div id="value">{worth}</div>
<h2>Charts</h2>{figures}
<h2>Data quality</h2>{quality}
<p>Customers: {m.counts.customers}. Versions: {esc(json.dumps(m.versions.model_dump(exclude_none=True)))}</p>
</body></html>
"""
