"""The run's report: ``report.html`` (self-contained: charts embedded as PNG), ``report.md`` and the charts as
files under ``report/``.

Its inputs are small: the manifest, the profiles (k rows) and the report sample (a seeded sample of at most
20,000 customers in two dimensions, no ids). The job renders it from what Spark returned to it (``RunData``),
never from files this process reads, so it works over Spark Connect too; ``segmentation report`` renders it
again from a published run through ``storage``. Charts use matplotlib's Agg backend.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from segmentation import outputs, profiles, sweep
from segmentation.errors import InputError
from segmentation.storage import Storage

CHART_SIZE = (8.0, 4.5)  # inches
DPI = 100  # 800 x 450 pixels
CHARTS_FOLDER = "report"
SAMPLE_TABLE = "report_sample"
RFM = ("recency_days", "frequency", "monetary")
SWEEP_METRICS = (
    ("wssse", "WSSSE\n(lower: tighter)"),
    ("silhouette", "silhouette, Spark's: squared\ndistances (higher: better)"),
    ("calinski_harabasz", "Calinski-Harabasz\n(higher: better)"),
    ("davies_bouldin", "Davies-Bouldin\n(lower: better)"),
    ("stability", "stability\n(ARI between seeds)"),
)


@dataclass(frozen=True)
class RunData:
    """What a report is made of."""

    manifest: Mapping[str, Any]
    profiles: pd.DataFrame
    sample: pd.DataFrame | None

    @property
    def names(self) -> dict[int, str]:
        return {int(r.segment): str(r.segment_name) for r in self.profiles.itertuples()}

    @property
    def model_features(self) -> list[str]:
        """The numeric features the model uses, in the order of the centroids' first dimensions."""
        if "model_features" in self.manifest:
            return list(self.manifest["model_features"])
        cfg = self.manifest["config"]  # a run published before its manifest named them
        if cfg["input"]["kind"] == "customers":
            return list(cfg["input"]["customers"]["numeric_columns"])
        return list(cfg["features"]["model_features"])


def load(store: Storage, folder: str) -> RunData:
    """A published run's report inputs, read through ``store`` (``folder``: a committed attempt folder).

    A scoring run has no report of its own (no sweep, no model of its own): it is refused, naming the run
    whose report describes its segments.
    """
    manifest = outputs.read_manifest(store, folder)
    if manifest.get("kind") == "scoring":
        raise InputError(
            f"{folder}: this run was written by 'segmentation score', which assigns customers to the segments of "
            f"the run in {manifest['model']['run_folder']}; that run's report describes the segments"
        )
    try:
        profiles = store.read_table(None, store.join(folder, "profiles"))
    except Exception as exc:  # a missing folder, an unreadable file: pandas, pyarrow and Spark raise differently
        raise InputError(f"{folder}: cannot read its profiles table ({type(exc).__name__})") from None
    sample_path = store.join(folder, SAMPLE_TABLE)
    sample = store.read_table(None, sample_path) if store.exists(sample_path) else None
    return run_data(manifest, profiles, sample)


def run_data(manifest: Mapping[str, Any], profiles: pd.DataFrame, sample: pd.DataFrame | None) -> RunData:
    """The report's inputs, profiles in segment order."""
    return RunData(manifest, profiles.sort_values("segment").reset_index(drop=True), sample)


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()


def _label(run: RunData, segment: int) -> str:
    return f"{segment} {run.names.get(segment, '')}".strip()


def sweep_chart(run: RunData) -> bytes:
    """Every metric against k, the chosen k highlighted and the WSSSE elbow marked."""
    sweep = pd.DataFrame(run.manifest["sweep"])
    chosen, elbow = run.manifest["chosen_k"], run.manifest.get("elbow_k")
    figure, axes = plt.subplots(1, len(SWEEP_METRICS), figsize=CHART_SIZE, dpi=DPI)
    for axis, (metric, title) in zip(axes, SWEEP_METRICS, strict=True):
        values = pd.to_numeric(sweep[metric], errors="coerce")
        axis.plot(sweep["k"], values, marker="o", color="#4c72b0")
        axis.axvline(chosen, color="#dd8452", linewidth=2, label=f"chosen k={chosen}")
        if metric == "wssse" and elbow is not None:
            at = sweep.loc[sweep["k"] == elbow, metric]
            axis.plot([elbow], at, marker="*", markersize=14, color="#c44e52", label=f"elbow k={elbow}")
        axis.set_title(title, fontsize=7)
        axis.set_xlabel("k", fontsize=7)
        axis.tick_params(labelsize=6)
    axes[0].legend(fontsize=6)
    figure.suptitle("The sweep over k", fontsize=10)
    figure.tight_layout()
    return _png(figure)


def sizes_chart(run: RunData) -> bytes:
    """Share of customers and (for transaction logs) share of revenue per segment."""
    profiles = run.profiles
    labels = [_label(run, int(s)) for s in profiles["segment"]]
    positions = np.arange(len(labels))
    figure, axis = plt.subplots(figsize=CHART_SIZE, dpi=DPI)
    width = 0.4 if "revenue_share" in profiles else 0.8
    axis.bar(positions - (width / 2 if width < 0.8 else 0), profiles["customer_share"] * 100, width, label="customers")
    if "revenue_share" in profiles:
        axis.bar(positions + width / 2, profiles["revenue_share"] * 100, width, label="revenue")
    axis.set_xticks(positions, labels, rotation=20, ha="right", fontsize=8)
    axis.set_ylabel("% of total")
    axis.set_title("Segment sizes and share of revenue")
    axis.legend()
    figure.tight_layout()
    return _png(figure)


def centroid_table(run: RunData) -> pd.DataFrame:
    """Each segment's standardised mean (its centroid on the model's scale) per model feature."""
    features = run.model_features
    mapping = {int(label): int(segment) for label, segment in run.manifest["cluster_to_segment"].items()}
    rows = {mapping[label]: centre[: len(features)] for label, centre in enumerate(run.manifest["centroids"])}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=features).sort_index()
    table.index = [_label(run, s) for s in table.index]
    return table


def heatmap_chart(run: RunData) -> bytes:
    """Standardised mean per segment and model feature (0 = the average customer)."""
    table = centroid_table(run)
    figure, axis = plt.subplots(figsize=CHART_SIZE, dpi=DPI)
    limit = max(1.0, float(np.nanmax(np.abs(table.to_numpy()))))
    image = axis.imshow(table.to_numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    axis.set_xticks(range(len(table.columns)), table.columns, rotation=20, ha="right", fontsize=8)
    axis.set_yticks(range(len(table.index)), table.index, fontsize=8)
    for (i, j), value in np.ndenumerate(table.to_numpy()):
        axis.text(j, i, f"{value:+.1f}", ha="center", va="center", fontsize=7)
    figure.colorbar(image, ax=axis, label="standard deviations from average")
    axis.set_title("Segment profiles (standardised means)")
    figure.tight_layout()
    return _png(figure)


def _migration(run: RunData) -> pd.DataFrame:
    rows = (run.manifest.get("history") or {}).get("migration") or []
    return pd.DataFrame(rows)


def transition_chart(run: RunData) -> bytes | None:
    """Share of each baseline segment (rows; ``new`` last) that went to each segment (columns; ``inactive``
    last); None for a run without a baseline."""
    flows = _migration(run)
    if flows.empty:
        return None
    flows = flows.assign(
        row=[_flow_label(s, n) for s, n in zip(flows["from_segment"], flows["from_name"], strict=True)],
        col=[_flow_label(s, n) for s, n in zip(flows["to_segment"], flows["to_name"], strict=True)],
        row_key=[(pd.isna(s), 0 if pd.isna(s) else s) for s in flows["from_segment"]],
        col_key=[(pd.isna(s), 0 if pd.isna(s) else s) for s in flows["to_segment"]],
    )
    rows = [r for _, r in sorted({(k, r) for k, r in zip(flows["row_key"], flows["row"], strict=True)})]
    cols = [c for _, c in sorted({(k, c) for k, c in zip(flows["col_key"], flows["col"], strict=True)})]
    table = flows.pivot_table(index="row", columns="col", values="share_of_from", aggfunc="sum").reindex(
        index=rows, columns=cols
    )
    values = table.fillna(0.0).to_numpy()
    figure, axis = plt.subplots(figsize=(CHART_SIZE[0], max(3.0, 0.45 * len(rows) + 1.5)), dpi=DPI)
    image = axis.imshow(values, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    axis.set_xticks(range(len(cols)), cols, rotation=20, ha="right", fontsize=8)
    axis.set_yticks(range(len(rows)), rows, fontsize=8)
    for (i, j), value in np.ndenumerate(values):
        if value > 0:
            label = f"{value:.0%}" if value >= 0.005 else "<1%"
            axis.text(j, i, label, ha="center", va="center", fontsize=7, color="white" if value > 0.6 else "black")
    figure.colorbar(image, ax=axis, label="share of the row's customers")
    baseline = run.manifest["history"]["baseline"]
    axis.set_title(f"Where customers went: {baseline['as_of_date']} (rows) to {run.manifest['as_of_date']} (columns)")
    axis.set_xlabel("segment in this run")
    axis.set_ylabel("segment in the baseline")
    figure.tight_layout()
    return _png(figure)


def _flow_label(segment: Any, name: str) -> str:
    return name if pd.isna(segment) else f"{int(segment)} {name}"


def movement_sentences(manifest: Mapping[str, Any], limit: int = 5) -> list[str]:
    """The largest moves in words, e.g. "312 Champions (14%) moved to At risk, carrying 9% of last period's
    revenue" (customers who stayed are left out)."""
    flows = (manifest.get("history") or {}).get("migration") or []
    before = sum(f["revenue_before"] or 0.0 for f in flows if f["from_segment"] is not None)
    moves = sorted((f for f in flows if f["direction"] != "same"), key=lambda f: (-f["customers"], str(f)))
    sentences = []
    for f in moves[:limit]:
        if f["from_segment"] is None:
            sentences.append(f"{f['customers']} customers new since the baseline joined {f['to_name']}.")
            continue
        carrying = f", carrying {f['revenue_before'] / before:.0%} of last period's revenue" if before else ""
        where = "became inactive (no purchase in this run)" if f["to_segment"] is None else f"moved to {f['to_name']}"
        sentences.append(f"{f['customers']} {f['from_name']} ({f['share_of_from']:.0%}) {where}{carrying}.")
    return sentences


def history_lines(manifest: Mapping[str, Any]) -> list[str]:
    """The report's section on changes since the baseline: how segments matched, and the largest moves."""
    entry = manifest.get("history") or {}
    baseline = entry.get("baseline")
    if not baseline:
        return [
            "This run has no baseline (no earlier published run of this run id, or history is off), so its "
            "segments start their ids here and no movements are shown."
        ]
    lines = [
        f"Compared with the run of {baseline['as_of_date']} (run id {baseline['run_id']}), by {entry['method']}.",
        "",
    ]
    names = {f["to_segment"]: f["to_name"] for f in entry.get("migration", []) if f["to_segment"] is not None}
    names |= {f["from_segment"]: f["from_name"] for f in entry.get("migration", []) if f["from_segment"] is not None}
    for m in entry.get("matches", []):
        lines.append(f"- Kept: {m['segment']} {m['name']} (centroid moved {m['distance']:.2f} standard deviations).")
    origins = {o["segment"]: o for o in entry.get("origins", [])}
    merged_from: dict[int, list[int]] = {}
    for merge in entry.get("merges", []):
        merged_from.setdefault(merge["into_segment"], []).append(merge["segment"])
    for n in entry.get("new", []):
        origin = origins.get(n["segment"])
        how = ""
        if len(merged_from.get(n["segment"], [])) > 1:
            how = "; a merge of " + " and ".join(f"{s} {names.get(s, '')}".rstrip() for s in merged_from[n["segment"]])
        elif origin and origin["kind"] == "split":
            how = f"; split from {origin['from_segment']} {names.get(origin['from_segment'], '')}".rstrip()
        elif origin and origin["kind"] == "new customers":
            how = "; mostly customers new since the baseline"
        elif origin:
            how = f"; mostly former {origin['from_segment']} {names.get(origin['from_segment'], '')}".rstrip()
        lines.append(f"- New: {n['segment']} {n['name']}{how}.")
    merges = {g["segment"]: g for g in entry.get("merges", [])}
    for v in entry.get("vanished", []):
        merge = merges.get(v["segment"])
        into = (
            f"; most of its customers went to {merge['into_segment']} {names.get(merge['into_segment'], '')}"
            if merge
            else ""
        )
        lines.append(f"- Vanished: {v['segment']} {v['name']}{into}.")
    moves = movement_sentences(manifest)
    if moves:
        lines += ["", "Largest movements:", "", *[f"- {m}" for m in moves]]
    return lines


def scatter_chart(run: RunData) -> bytes | None:
    """The sampled customers in two dimensions, coloured by segment, centroids marked."""
    if run.sample is None or run.sample.empty:
        return None
    info = run.manifest.get("report", {})
    figure, axis = plt.subplots(figsize=CHART_SIZE, dpi=DPI)
    for segment, points in run.sample.groupby("segment"):
        axis.scatter(points["x"], points["y"], s=6, alpha=0.5, label=_label(run, int(segment)))
    for segment, (x, y) in zip(sorted(run.names), info.get("centroids_2d") or [], strict=False):
        axis.scatter([x], [y], marker="X", s=160, color="black", edgecolors="white")
        axis.annotate(str(segment), (x, y), textcoords="offset points", xytext=(6, 6), fontsize=9, weight="bold")
    x_label, y_label = info.get("axes", ("x", "y"))
    axis.set_xlabel(x_label)
    axis.set_ylabel(y_label)
    axis.set_title(f"Customers by segment ({len(run.sample)} sampled)")
    axis.legend(fontsize=7, markerscale=2)
    figure.tight_layout()
    return _png(figure)


def rfm_chart(run: RunData) -> bytes | None:
    """Recency, frequency and monetary distributions per segment (transaction logs; the sample)."""
    if run.sample is None or run.sample.empty or not set(RFM) <= set(run.sample.columns):
        return None
    figure, axes = plt.subplots(1, 3, figsize=CHART_SIZE, dpi=DPI)
    segments = sorted(run.sample["segment"].unique())
    for axis, feature in zip(axes, RFM, strict=True):
        data = [run.sample.loc[run.sample["segment"] == s, feature].to_numpy() for s in segments]
        axis.boxplot(data, showfliers=False)
        axis.set_xticks(range(1, len(segments) + 1), [str(s) for s in segments])
        axis.set_title(feature, fontsize=9)
        axis.set_xlabel("segment", fontsize=8)
        if feature == "monetary":
            axis.set_yscale("symlog")
    figure.suptitle("Recency, frequency and monetary value per segment", fontsize=10)
    figure.tight_layout()
    return _png(figure)


def charts(run: RunData) -> dict[str, bytes]:
    """Chart name -> PNG bytes, in report order (charts without data are left out)."""
    made = {
        "sweep": sweep_chart(run),
        "sizes": sizes_chart(run),
        "profiles_heatmap": heatmap_chart(run),
        "customers_2d": scatter_chart(run),
        "rfm": rfm_chart(run),
        "transitions": transition_chart(run),
    }
    return {name: png for name, png in made.items() if png is not None}


def segment_sentence(row: pd.Series, key_features: Sequence[str]) -> str:
    """One sentence about a segment, e.g. "Champions: 9% of customers, 41% of revenue; median ..."."""
    parts = [f"{row['customer_share']:.0%} of customers"]
    if "revenue_share" in row and pd.notna(row.get("revenue_share")):
        parts.append(f"{row['revenue_share']:.0%} of revenue")
    medians = ", ".join(f"{f.replace('_', ' ')} {row[f'median_{f}']:,.4g}" for f in key_features)
    return f"{row['segment_name']}: {', '.join(parts)}; medians: {medians}."


def segment_rows(run: RunData) -> list[dict[str, Any]]:
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


def markdown(run: RunData, rows: Sequence[Mapping[str, Any]]) -> str:
    """The report as Markdown: the chosen k and why, the segment table and sentences, data quality."""
    m = run.manifest
    counts = m["counts"]
    lines = [
        f"# Segmentation report: {m['as_of_date']}, run {m['run_id']}",
        "",
        f"**Chosen k = {m['chosen_k']}.** {m['choice_reason']}",
        "",
        *[line for note in choice_notes(m, run.names) for line in (note, "")],
        "| segment | name | customers | share | revenue share |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        revenue = f"{r['revenue_share']:.1%}" if r["revenue_share"] is not None else "-"
        lines.append(f"| {r['segment']} | {r['name']} | {r['customers']} | {r['customer_share']:.1%} | {revenue} |")
    lines += ["", *[f"- {r['sentence']}" for r in rows], "", "## Changes since the baseline", ""]
    lines += [*history_lines(m), "", "## Data quality", ""]
    lines += _quality_lines(m)
    lines.append(f"\nCustomers: {counts['customers']}.")
    return "\n".join(lines) + "\n"


SILHOUETTE_NOTE = (
    "Silhouette values here are Spark's (ClusteringEvaluator), computed on squared Euclidean distances: they "
    "usually run higher than the usual silhouette (scikit-learn's, on Euclidean distances) of the same segments. "
    "Compare them between values of k, not with figures from other tools."
)


def choice_notes(manifest: Mapping[str, Any], names: Mapping[int, str]) -> list[str]:
    """Notes under the chosen k: segments that split one behaviour into one-time and repeat buyers, and what
    the silhouette numbers are."""
    splits = [
        profiles.RepeatSplit(int(s["one_time"]), int(s["repeat"]), float(s["distance"]), tuple(s["alike_in"]))
        for s in manifest.get("repeat_splits", [])
    ]
    notes = [profiles.repeat_split_sentence(split, names) for split in splits]
    if manifest.get("sweep"):
        notes.append(SILHOUETTE_NOTE)
        seeds = sweep.seeds_note(manifest["sweep"])
        if seeds:
            notes.append(seeds[0].upper() + seeds[1:] + ".")
    return notes


def _quality_lines(manifest: Mapping[str, Any]) -> list[str]:
    counts = manifest["counts"]
    threshold = manifest["config"]["quality"]["max_quarantine_share"]
    out = counts.get("lines_out_of_window", 0)  # runs published before windows have none
    in_window = counts["lines_in"] - out
    share = counts["lines_quarantined"] / in_window if in_window else 0.0
    lines = [
        f"Lines in: {counts['lines_in']}; clean: {counts['lines_clean']}; quarantined: "
        f"{counts['lines_quarantined']} ({share:.1%}{' of the lines in the window' if out else ''}; the run fails "
        f"above {threshold:.0%}).",
    ]
    if out:
        lines.append(f"Out of window: {out} (dated {_window_text(manifest)}; not quarantined).")
    lines.append("")
    lines += [f"- `{reason}`: {n}" for reason, n in sorted(counts["quarantined_by_reason"].items())]
    return [*lines, "", *input_lines(manifest)]


ORDERS_BY = {
    "invoice": "an invoice",
    "timestamp": "a customer's lines at one timestamp (no invoice ids)",
    "line": "each line (no invoice ids)",
}


def input_lines(manifest: Mapping[str, Any]) -> list[str]:
    """What was read (a table, and the predicate that selected lines), what an order is, and the features
    the input could not give (left out of the model, not filled with zeros); runs before these have less."""
    given, lines = manifest.get("input", {}), []
    if given.get("table"):
        lines.append(f"Input: the table {given['table']}.")
    if given.get("where"):
        lines.append(f"Lines read: those where {given['where']}.")
    if given.get("orders_by"):
        lines.append(f"An order is {ORDERS_BY[given['orders_by']]}.")
    left_out = given.get("features_left_out") or {}
    if left_out:
        lines.append("Features the input cannot give (not computed, in no table and not in the model):")
        lines += [f"- `{name}`: {why}" for name, why in sorted(left_out.items())]
    return lines


def _window_text(manifest: Mapping[str, Any]) -> str:
    """Where the out-of-window lines are dated: outside the W days ending with the as-of date, or after it."""
    days = manifest["config"]["features"].get("window_days")
    as_of = manifest["as_of_date"]
    return f"outside the {days} days ending {as_of}" if days else f"after the as-of date {as_of}"


def html_page(run: RunData, rows: Sequence[Mapping[str, Any]], images: Mapping[str, bytes]) -> str:
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
    quality = "".join(
        f"<p>{esc(line)}</p>" if not line.startswith("- ") else f"<li>{esc(line[2:])}</li>"
        for line in _quality_lines(m)
        if line
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Segmentation report {esc(m["as_of_date"])} {esc(m["run_id"])}</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;font-size:90%}}
figure{{margin:1em 0}}img{{max-width:100%}}</style></head>
<body>
<h1>Segmentation report: {esc(m["as_of_date"])}, run {esc(m["run_id"])}</h1>
<p id="chosen-k"><strong>Chosen k = {m["chosen_k"]}.</strong> {esc(m["choice_reason"])}</p>
{"".join(f'<p class="choice-note">{esc(note)}</p>' for note in choice_notes(m, run.names))}
<h2>Segments</h2>
<table id="segments"><tr><th>segment</th><th>name</th><th>customers</th><th>share</th><th>revenue share</th>
<th>key medians</th><th>in one sentence</th></tr>{table}</table>
<h2>Changes since the baseline</h2><div id="history">{changes}</div>
<h2>Charts</h2>{figures}
<h2>Data quality</h2>{quality}
<p>Customers: {m["counts"]["customers"]}. Versions: {esc(json.dumps(m.get("versions", {})))}</p>
</body></html>
"""


def render(run: RunData, store: Storage, folder: str) -> dict[str, str]:
    """Write report.html, report.md and report/<chart>.png into ``folder`` through ``store``; paths by name."""
    rows = segment_rows(run)
    images = charts(run)
    written = {}
    store.mkdirs(store.join(folder, CHARTS_FOLDER))
    for name, png in images.items():
        written[name] = store.join(folder, CHARTS_FOLDER, f"{name}.png")
        store.write_bytes(written[name], png)
    written["html"] = store.join(folder, "report.html")
    store.write_text(written["html"], html_page(run, rows, images))
    written["markdown"] = store.join(folder, "report.md")
    store.write_text(written["markdown"], markdown(run, rows))
    return written


def documents(run: RunData) -> dict[str, str]:
    """The report as text documents (``markdown``, ``html``), for a run published as catalog tables."""
    rows = segment_rows(run)
    return {"markdown": markdown(run, rows), "html": html_page(run, rows, charts(run))}
