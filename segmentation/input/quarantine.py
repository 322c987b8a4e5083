"""The quarantine: the counts of lines in, clean, quarantined per reason and out of window; the quarantined lines
as published; and the threshold above which a run fails instead of publishing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segmentation.config import InputConfig
from segmentation.errors import InputError
from segmentation.input.reasons import OUT_OF_WINDOW, REASON
from segmentation.input.sources import RAW_LINE, SOURCE_FILE


@dataclass(frozen=True)
class LineCounts:
    """How many lines came in, are clean, were quarantined for each reason, and are dated outside the window.

    ``lines_in = lines_clean + lines_quarantined + out_of_window``; the quarantined share leaves out of window
    lines out.
    """

    lines_in: int
    lines_clean: int
    quarantined: Mapping[str, int] = field(default_factory=dict)
    out_of_window: int = 0

    @property
    def lines_quarantined(self) -> int:
        return sum(self.quarantined.values())

    @property
    def quarantined_share(self) -> float:
        """Quarantined lines over the lines in the window (clean or quarantined)."""
        in_window = self.lines_in - self.out_of_window
        return self.lines_quarantined / in_window if in_window else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "lines_in": self.lines_in,
            "lines_clean": self.lines_clean,
            "lines_quarantined": self.lines_quarantined,
            "lines_out_of_window": self.out_of_window,
            "quarantined_by_reason": dict(sorted(self.quarantined.items())),
        }


def input_key(inp: InputConfig) -> str:
    return "input.table" if inp.table is not None else "input.path"


def quarantined_lines(labeled_df: DataFrame, text_columns: Sequence[str]) -> DataFrame:
    """The quarantined lines (not those out of window): reason, source file, the whole original line and the
    mapped values as text."""
    return labeled_df.filter(F.col(REASON).isNotNull() & (F.col(REASON) != OUT_OF_WINDOW)).select(
        REASON,
        F.col(SOURCE_FILE).alias("source_file"),
        F.col(RAW_LINE).alias("raw_line"),
        *[F.col(c).cast("string").alias(c) for c in text_columns],
    )


def count_lines(labeled_df: DataFrame) -> LineCounts:
    """Lines in, clean, quarantined per reason and out of window, from one aggregation."""
    rows = labeled_df.groupBy(REASON).count().collect()
    by_reason = {r[REASON]: int(r["count"]) for r in rows}
    clean, out = by_reason.pop(None, 0), by_reason.pop(OUT_OF_WINDOW, 0)
    lines_in = clean + out + sum(by_reason.values())
    return LineCounts(lines_in=lines_in, lines_clean=clean, quarantined=by_reason, out_of_window=out)


def check_quarantine_share(
    counts: LineCounts, max_share: float, source: str, *, explain: Callable[[], str] = str, key: str = "input.path"
) -> None:
    """Fail, naming the key at fault, when too many lines in the window are quarantined or none of them is clean;
    ``explain`` gives what is likely wrong when every line failed the same way (``failure_hint``)."""
    if counts.lines_in == 0:
        raise InputError(f"{key}: {source!r} holds no data lines")
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(counts.quarantined.items()))
    in_window = " dated in the run's window" if counts.out_of_window else ""
    lines = counts.lines_in - counts.out_of_window
    if counts.lines_clean == 0 and not counts.out_of_window:
        hint = explain()
        raise InputError(
            f"quality.max_quarantine_share: none of the {lines} lines in {source!r} is valid: all were quarantined "
            f"({reasons}){'; ' + hint if hint else ''}; nothing was published"
        )
    if counts.quarantined_share > max_share:
        hint = explain()
        raise InputError(
            f"quality.max_quarantine_share: {counts.quarantined_share:.1%} of the {lines} lines in {source!r}"
            f"{in_window} were quarantined ({reasons}), above the allowed {max_share:.0%}"
            f"{'; ' + hint if hint else ''}; nothing was published"
        )
    if counts.lines_clean == 0:
        raise InputError(
            f"features.as_of: no valid line of {source!r} is dated in the run's window ({counts.out_of_window} "
            "lines are dated outside it); choose an as-of date and features.window_days that cover the data"
        )
