"""The quarantine: the counts of lines in, clean, quarantined per reason and out of window; the quarantined lines
as published; and the threshold above which a run fails instead of publishing."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segmentation.config import InputConfig
from segmentation.errors import InputError
from segmentation.input.reasons import AFTER_TODAY, LIMIT, MALFORMED, OUT_OF_WINDOW, REASON, TS
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
    """The quarantined lines (not those out of window): reason, source file, the whole original line, the
    mapped values as text, and ``detail``: the limit an ``implausible_value`` line is beyond (else null)."""
    detail = F.col(LIMIT) if LIMIT in labeled_df.columns else F.lit(None).cast("string")
    return labeled_df.filter(F.col(REASON).isNotNull() & (F.col(REASON) != OUT_OF_WINDOW)).select(
        REASON,
        F.col(SOURCE_FILE).alias("source_file"),
        F.col(RAW_LINE).alias("raw_line"),
        *[F.col(c).cast("string").alias(c) for c in text_columns],
        detail.alias("detail"),
    )


DayCount = tuple[dt.date | None, str | None, int]  # (day, reason, lines): day null when the date cannot be read


def count_lines(labeled_df: DataFrame) -> LineCounts:
    """Lines in, clean, quarantined per reason and out of window, from one aggregation."""
    return counts_by_day(labeled_df)[0]


def counts_by_day(labeled_df: DataFrame) -> tuple[LineCounts, list[DayCount]]:
    """``count_lines``, and the lines per day and reason (``day_counts``; none for a customer table), from the
    same aggregation."""
    rows: list[DayCount]
    if TS not in labeled_df.columns:
        rows = [(None, r[REASON], int(r["lines"])) for r in labeled_df.groupBy(REASON).agg(_lines()).collect()]
    else:
        rows = [(r["day"], r[REASON], int(r["lines"])) for r in day_counts(labeled_df).collect()]
    by_reason: Counter[str | None] = Counter()
    for _, reason, lines in rows:
        by_reason[reason] += lines
    clean, out = by_reason.pop(None, 0), by_reason.pop(OUT_OF_WINDOW, 0)
    quarantined = {str(reason): n for reason, n in by_reason.items()}
    lines_in = clean + out + sum(quarantined.values())
    counts = LineCounts(lines_in=lines_in, lines_clean=clean, quarantined=quarantined, out_of_window=out)
    return counts, rows if TS in labeled_df.columns else []


def _lines() -> Column:
    return F.count(F.lit(1)).alias("lines")


def day_counts(labeled_df: DataFrame) -> DataFrame:
    """Lines per day and reason (``day``, ``reason``, ``lines``): an incremental state's counts, from which
    ``counts_at`` gives a full run's counts at any as-of date and window. ``day`` is null for a line whose date
    cannot be read (no timestamp, or a malformed row), as a full run judges them."""
    dated = F.col(TS).isNotNull() & (F.col(REASON).isNull() | (F.col(REASON) != MALFORMED))
    day = F.when(dated, F.to_date(TS)).alias("day")
    return labeled_df.groupBy(day, REASON).agg(_lines())


def counts_at(
    rows: Iterable[tuple[dt.date | None, str | None, int]],
    as_of: dt.date,
    window_days: int | None,
    *,
    last_valid: dt.date | None = None,
) -> LineCounts:
    """A full run's counts at ``as_of`` and window from ``(day, reason, lines)`` rows (``day_counts``, summed over
    deliveries): a dated line outside the window is out of window, unless it is dated after the last valid day
    (``last_valid``: the later of the as-of date and today), where it keeps its reason."""
    first = as_of - dt.timedelta(days=window_days - 1) if window_days is not None else None
    last = max(as_of, last_valid or as_of)
    clean, out, quarantined = 0, 0, Counter[str]()
    for day, reason, lines in rows:
        inside = day is not None and day <= as_of and (first is None or day >= first)
        if reason is None:
            clean, out = (clean + lines, out) if inside else (clean, out + lines)
        elif inside or day is None or reason == AFTER_TODAY or day > last:
            quarantined[reason] += lines
        else:
            out += lines
    total = clean + out + sum(quarantined.values())
    return LineCounts(lines_in=total, lines_clean=clean, quarantined=dict(quarantined), out_of_window=out)


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
