"""What the configuration knows about the data: the transaction features, the epoch timestamp formats, and which
features a column mapping cannot give."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from segmentation.config.schema import InputConfig

TRANSACTION_FEATURES: tuple[str, ...] = (
    *("recency_days", "frequency", "monetary", "tenure_days", "avg_order_value", "avg_items_per_order"),
    *("distinct_products", "return_rate", "mean_days_between_orders", "active_months"),
)
EPOCH_FORMATS = {"epoch_seconds": "s", "epoch_millis": "ms"}  # in input.timestamp_formats: epoch numbers as text


def unavailable_features(inp: InputConfig) -> dict[str, str]:
    """The transaction features the mapped columns cannot give, each with why (a feature is left out, never
    filled with zeros that look like data)."""
    columns, missing = inp.columns, {}
    if columns.quantity is None:
        missing["avg_items_per_order"] = "no quantity column (input.columns.quantity is null)"
    if columns.product_id is None:
        missing["distinct_products"] = "no product column (input.columns.product_id is null)"
    return missing
