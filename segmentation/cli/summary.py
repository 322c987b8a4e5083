"""The command's summary of a published run: lines for a terminal (``summary_text``), one JSON object for
orchestrators (``summary_record``), and the drift checks in one line (``drift_text``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from segmentation.runtime.context import RunSummary


def summary_text(
    result: RunSummary, *, chosen: str | None = None, model: dt.date | None = None, took: float | None = None
) -> str:
    """A short human summary of a published run (``chosen``: the reason for k; ``model``: a scoring run's model)."""
    counts = result.counts
    sizes = ", ".join(
        f"{seg} {result.segment_names.get(seg, '')}: {n}" for seg, n in sorted(result.segment_sizes.items())
    )
    as_of = result.as_of.isoformat() + (f" (model of {model.isoformat()})" if model else "")
    lines = [
        f"as-of date     {as_of}",
        f"lines          {counts.lines_in} in, {counts.lines_clean} clean, "
        f"{counts.lines_quarantined} quarantined ({counts.quarantined_share:.1%}), "
        f"{counts.out_of_window} out of window",
        f"customers      {result.customers}",
    ]
    if (state := result.incremental) is not None:
        files = f" from {state.files_read} new files" if state.files_read is not None else ""
        lines.append(
            f"state          {state.lines_read} new lines read{files} ({state.mode}), {state.lines_in_state} lines in "
            "the state"
        )
    if chosen is not None:
        lines.append(f"chosen k       {chosen}")
    if result.drift is not None:
        lines.append(f"drift          {drift_text(result)}")
    lines += [f"segment sizes  {sizes}", f"published      {result.run_folder}"]
    if result.report:
        lines.append(f"report         {result.report}")
    if took is not None:
        lines.append(f"took           {took:.1f} s")
    return "\n".join(lines)


def summary_record(
    result: RunSummary, *, chosen_k: int | None = None, chosen: str | None = None, model: dt.date | None = None
) -> dict[str, Any]:
    """The summary as one JSON-friendly object, for orchestrators (``--json``)."""
    return {
        "status": "published",
        "as_of_date": result.as_of.isoformat(),
        "model_as_of_date": model.isoformat() if model else None,
        "counts": result.counts.as_dict(),
        "customers": result.customers,
        "chosen_k": chosen_k,
        "choice_reason": chosen,
        "segments": [
            {"segment": seg, "name": result.segment_names.get(seg), "customers": n}
            for seg, n in sorted(result.segment_sizes.items())
        ],
        "output_root": result.output_root,
        "run_folder": result.run_folder,
        "report": result.report,
        "timings_seconds": result.timings,
        "incremental": result.incremental.model_dump(mode="json") if result.incremental else None,
        "drift_status": result.drift.status if result.drift else None,
        "drift_beyond": [m.model_dump(mode="json") for m in result.drift.beyond] if result.drift else [],
    }


def drift_text(result: RunSummary) -> str:
    """The drift checks in one line: the status, how many measures are beyond, and for a held run how to
    promote it."""
    drift = result.drift
    assert drift is not None
    if drift.baseline is None:
        return "no baseline to compare with"
    against = f"against {drift.baseline.as_of_date}/{drift.baseline.run_id}"
    beyond = drift.beyond
    text = f"{drift.status}: {len(beyond)} of {len(drift.measures)} measures beyond their thresholds {against}"
    if beyond:
        text += f" (worst: {beyond[0].measure} of {beyond[0].subject})"
    if result.held:
        text += (
            f"; held, not the current run: segmentation promote {result.as_of.isoformat()} {result.run_id} "
            "makes it current"
        )
    return text
