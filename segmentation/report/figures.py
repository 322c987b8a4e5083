"""The report's charts, each drawn on its own ``matplotlib.figure.Figure`` (no pyplot state, no backend switch, so
importing this package changes nothing in a notebook) and returned as PNG bytes."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from segmentation.publish.manifest import ReportInfo
from segmentation.report.inputs import ReportInputs

CHART_SIZE = (8.0, 4.5)  # inches
DPI = 100  # 800 x 450 pixels
RFM = ("recency_days", "frequency", "monetary")
SWEEP_METRICS = (
    ("wssse", "WSSSE\n(lower: tighter)"),
    ("silhouette", "silhouette, Spark's: squared\ndistances (higher: better)"),
    ("calinski_harabasz", "Calinski-Harabasz\n(higher: better)"),
    ("davies_bouldin", "Davies-Bouldin\n(lower: better)"),
    ("stability", "stability\n(ARI between seeds)"),
)


def png(figure: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _label(run: ReportInputs, segment: int) -> str:
    return f"{segment} {run.names.get(segment, '')}".strip()


def sweep_chart(run: ReportInputs) -> bytes:
    """Every metric against k, the chosen k highlighted and the WSSSE elbow marked."""
    sweep = pd.DataFrame([entry.model_dump() for entry in run.manifest.sweep or []])
    chosen, elbow = run.manifest.chosen_k, run.manifest.elbow_k
    figure = Figure(figsize=CHART_SIZE, dpi=DPI)
    axes = figure.subplots(1, len(SWEEP_METRICS))
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
    return png(figure)


def sizes_chart(run: ReportInputs) -> bytes:
    """Share of customers and (for transaction logs) share of revenue per segment."""
    profiles = run.profiles
    labels = [_label(run, int(s)) for s in profiles["segment"]]
    positions = np.arange(len(labels))
    figure = Figure(figsize=CHART_SIZE, dpi=DPI)
    axis = figure.subplots()
    width = 0.4 if "revenue_share" in profiles else 0.8
    axis.bar(positions - (width / 2 if width < 0.8 else 0), profiles["customer_share"] * 100, width, label="customers")
    if "revenue_share" in profiles:
        axis.bar(positions + width / 2, profiles["revenue_share"] * 100, width, label="revenue")
    axis.set_xticks(positions, labels, rotation=20, ha="right", fontsize=8)
    axis.set_ylabel("% of total")
    axis.set_title("Segment sizes and share of revenue")
    axis.legend()
    figure.tight_layout()
    return png(figure)


def centroid_table(run: ReportInputs) -> pd.DataFrame:
    """Each segment's standardised mean (its centroid on the model's scale) per model feature."""
    features = run.model_features
    mapping = run.manifest.mapping
    rows = {mapping[label]: centre[: len(features)] for label, centre in enumerate(run.manifest.centroids or [])}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=features).sort_index()
    table.index = [_label(run, s) for s in table.index]
    return table


def heatmap_chart(run: ReportInputs) -> bytes:
    """Standardised mean per segment and model feature (0 = the average customer)."""
    table = centroid_table(run)
    figure = Figure(figsize=CHART_SIZE, dpi=DPI)
    axis = figure.subplots()
    limit = max(1.0, float(np.nanmax(np.abs(table.to_numpy()))))
    image = axis.imshow(table.to_numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    axis.set_xticks(range(len(table.columns)), table.columns, rotation=20, ha="right", fontsize=8)
    axis.set_yticks(range(len(table.index)), table.index, fontsize=8)
    for (i, j), value in np.ndenumerate(table.to_numpy()):
        axis.text(j, i, f"{value:+.1f}", ha="center", va="center", fontsize=7)
    figure.colorbar(image, ax=axis, label="standard deviations from average")
    axis.set_title("Segment profiles (standardised means)")
    figure.tight_layout()
    return png(figure)


def _migration(run: ReportInputs) -> pd.DataFrame:
    history = run.manifest.history
    return pd.DataFrame([row.model_dump() for row in history.migration] if history else [])


def transition_chart(run: ReportInputs) -> bytes | None:
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
    figure = Figure(figsize=(CHART_SIZE[0], max(3.0, 0.45 * len(rows) + 1.5)), dpi=DPI)
    axis = figure.subplots()
    image = axis.imshow(values, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    axis.set_xticks(range(len(cols)), cols, rotation=20, ha="right", fontsize=8)
    axis.set_yticks(range(len(rows)), rows, fontsize=8)
    for (i, j), value in np.ndenumerate(values):
        if value > 0:
            label = f"{value:.0%}" if value >= 0.005 else "<1%"
            axis.text(j, i, label, ha="center", va="center", fontsize=7, color="white" if value > 0.6 else "black")
    figure.colorbar(image, ax=axis, label="share of the row's customers")
    baseline = run.manifest.history.baseline if run.manifest.history else None
    since = baseline.as_of_date if baseline else "the baseline"
    axis.set_title(f"Where customers went: {since} (rows) to {run.manifest.as_of_date} (columns)")
    axis.set_xlabel("segment in this run")
    axis.set_ylabel("segment in the baseline")
    figure.tight_layout()
    return png(figure)


def _flow_label(segment: Any, name: str) -> str:
    return name if pd.isna(segment) else f"{int(segment)} {name}"


def scatter_chart(run: ReportInputs) -> bytes | None:
    """The sampled customers in two dimensions, coloured by segment, centroids marked."""
    if run.sample is None or run.sample.empty:
        return None
    info = run.manifest.report or ReportInfo()
    figure = Figure(figsize=CHART_SIZE, dpi=DPI)
    axis = figure.subplots()
    for segment, points in run.sample.groupby("segment"):
        axis.scatter(points["x"], points["y"], s=6, alpha=0.5, label=_label(run, int(segment)))
    for segment, (x, y) in zip(sorted(run.names), info.centroids_2d or [], strict=False):
        axis.scatter([x], [y], marker="X", s=160, color="black", edgecolors="white")
        axis.annotate(str(segment), (x, y), textcoords="offset points", xytext=(6, 6), fontsize=9, weight="bold")
    x_label, y_label = info.axes
    axis.set_xlabel(x_label)
    axis.set_ylabel(y_label)
    axis.set_title(f"Customers by segment ({len(run.sample)} sampled)")
    axis.legend(fontsize=7, markerscale=2)
    figure.tight_layout()
    return png(figure)


def rfm_chart(run: ReportInputs) -> bytes | None:
    """Recency, frequency and monetary distributions per segment (transaction logs; the sample)."""
    if run.sample is None or run.sample.empty or not set(RFM) <= set(run.sample.columns):
        return None
    figure = Figure(figsize=CHART_SIZE, dpi=DPI)
    axes = figure.subplots(1, 3)
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
    return png(figure)


def charts(run: ReportInputs) -> dict[str, bytes]:
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
