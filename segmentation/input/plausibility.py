"""Clean values far from the log's own: lines whose quantity, unit price or value is more than
``input.limits.extreme_factor`` times the median of the clean lines read (absolute values, so returns count too).

They are not errors (a wholesale order can be a thousand times the median line), so they stay clean; they are
counted and named in the report, so one typo cannot make a segment hold all revenue unseen. Two aggregations: the
medians and largest values, then, only when some value is that far out, the count beyond it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segmentation.config import InputConfig
from segmentation.input.reasons import AMOUNT, PRICE, QTY, REASON
from segmentation.input.rules import line_value

MEDIAN_ACCURACY = 10_000


@dataclass(frozen=True)
class ExtremeValues:
    """Clean lines whose ``column`` is over ``factor`` times its median (``median``), and the largest value."""

    column: str
    lines: int
    median: float
    largest: float
    factor: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def checked_columns(cfg: InputConfig) -> dict[str, Column]:
    """The absolute values checked, by name: quantity and unit price when mapped, and the line's value."""
    columns: dict[str, Column] = {}
    if cfg.columns.quantity is not None:
        columns["quantity"] = F.abs(F.col(QTY))
    if cfg.columns.unit_price is not None:
        columns["unit_price"] = F.abs(F.col(PRICE))
    if cfg.columns.amount is not None or cfg.columns.unit_price is not None:
        columns["value"] = F.abs(line_value())
    return columns


def extreme_values(lines_df: DataFrame, cfg: InputConfig) -> list[ExtremeValues]:
    """The checked columns with clean lines over ``extreme_factor`` times their median (see the module)."""
    if cfg.kind != "transactions" or AMOUNT not in lines_df.columns:
        return []
    columns, factor = checked_columns(cfg), float(cfg.limits.extreme_factor)
    clean = lines_df.filter(F.col(REASON).isNull())
    aggregates = [F.percentile_approx(v, 0.5, MEDIAN_ACCURACY).alias(f"m_{name}") for name, v in columns.items()]
    aggregates += [F.max(value).alias(f"x_{name}") for name, value in columns.items()]
    row = clean.agg(*aggregates).first()
    if row is None:
        return []
    far = {
        name: float(row[f"m_{name}"])
        for name in columns
        if row[f"m_{name}"] and row[f"x_{name}"] is not None and float(row[f"x_{name}"]) > factor * row[f"m_{name}"]
    }
    if not far:
        return []
    counted = clean.agg(
        *[F.count(F.when(columns[name] > F.lit(factor * median), True)).alias(name) for name, median in far.items()]
    ).first()
    assert counted is not None
    return [
        ExtremeValues(name, int(counted[name]), median, float(row[f"x_{name}"]), factor) for name, median in far.items()
    ]
