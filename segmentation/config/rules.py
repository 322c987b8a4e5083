"""The rules across keys that a configuration must follow (k_max at least k_min, a mapping that gives customers,
time and money, ...): each broken rule as the key it is about and what was expected."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from segmentation.config.known import EPOCH_FORMATS, TRANSACTION_FEATURES, unavailable_features

if TYPE_CHECKING:
    from segmentation.config.schema import InputConfig, JobConfig


class RuleError(ValueError):
    """A broken cross-field rule; ``args`` are the key it is about and the message."""

    def __str__(self) -> str:
        return ": ".join(self.args)


def rule_problems(cfg: JobConfig) -> Iterator[tuple[str, str]]:
    model, cust, priv, scatter = cfg.model, cfg.input.customers, cfg.privacy, cfg.report.scatter_features
    if model.k_max < model.k_min:
        yield "model.k_max", f"expected at least model.k_min ({model.k_min}), got {model.k_max}"
    if cfg.history.baseline is not None and not cfg.history.enabled:
        yield "history.baseline", "no baseline while history.enabled is false (set one or the other)"
    if scatter and len(scatter) != 2:
        yield "report.scatter_features", f"expected two feature names or none, got {list(scatter)}"
    if (priv.secret_scope is None) != (priv.secret_key is None):
        yield "privacy.secret_key", "set both privacy.secret_scope and privacy.secret_key, or neither"
    yield from _input_problems(cfg.input)
    yield from _incremental_problems(cfg)
    yield from _value_problems(cfg)
    if cfg.input.kind == "transactions":
        known: Sequence[str] = TRANSACTION_FEATURES
        yield from _unknown("features.model_features", cfg.features.model_features, known)
        yield from _unknown("features.log_features", cfg.features.log_features, known)
        if not cfg.features.model_features:
            yield "features.model_features", "expected at least one feature"
        yield from _mapping_problems(cfg.input)
        missing = unavailable_features(cfg.input)
        if cfg.features.model_features and all(f in missing for f in cfg.features.model_features):
            why = "; ".join(f"{f}: {missing[f]}" for f in cfg.features.model_features)
            yield "features.model_features", f"none of them can be computed from the mapped columns ({why})"
        if model.order_by in missing:
            yield "model.order_by", f"{model.order_by!r} cannot be computed: {missing[model.order_by]}"
        for name in scatter:
            if name in missing:
                yield "report.scatter_features", f"{name!r} cannot be computed: {missing[name]}"
    else:
        known = cust.numeric_columns
        if not cust.numeric_columns and not cust.categorical_columns:
            yield "input.customers.numeric_columns", "a customer table needs at least one feature column"
        yield from _unknown("input.customers.log_columns", cust.log_columns, known)
        if overlap := set(cust.numeric_columns) & set(cust.categorical_columns):
            yield "input.customers.categorical_columns", f"also listed as numeric: {sorted(overlap)}"
    if model.order_by is not None and model.order_by not in known:
        yield "model.order_by", f"expected one of the model's numeric features {sorted(known)}, got {model.order_by!r}"


def _value_problems(cfg: JobConfig) -> Iterator[tuple[str, str]]:
    value = cfg.value
    if value.holdout_days is not None and not value.holdout:
        yield "value.holdout_days", "a holdout length needs value.holdout: true (--holdout-days N sets both)"
    if value.holdout and value.enabled and cfg.input.kind == "transactions" and cfg.features.as_of is None:
        yield (
            "value.holdout",
            "a holdout needs features.as_of: without it the as-of date is the latest line's, and no line is left "
            "after it to check the forecast against",
        )


def _incremental_problems(cfg: JobConfig) -> Iterator[tuple[str, str]]:
    inp = cfg.input
    if inp.incremental_column is not None and inp.table is None:
        yield "input.incremental_column", "only for a catalog table (input.table); files are told apart by name"
    if not inp.incremental:
        if inp.rebuild_state:
            yield "input.rebuild_state", "only with input.incremental: true (--rebuild sets both)"
        return
    if inp.kind != "transactions":
        yield "input.incremental", "only for a transaction log: a customer table is read whole"
    if inp.table is not None and inp.incremental_column is None:
        yield "input.incremental_column", "input.incremental over a table needs a column whose values only grow"
    if inp.orders_by == "line":
        yield "input.order_key", "input.incremental cannot count orders by line: a line has no id across runs"
    if cfg.privacy.pseudonymize_ids:
        yield "input.incremental", "not with privacy.pseudonymize_ids: the state would keep the raw customer ids"


def _input_problems(inp: InputConfig) -> Iterator[tuple[str, str]]:
    if inp.path is not None and inp.table is not None:
        yield "input.table", f"expected input.path or input.table, not both (input.path is {inp.path!r})"
    if inp.where is not None and ";" in inp.where:
        yield "input.where", "expected one SQL predicate over the input's columns, without ';'"
    if inp.numbers.thousands_separator == inp.numbers.decimal_separator:
        yield (
            "input.numbers.thousands_separator",
            f"expected another character than the decimal separator ({inp.numbers.decimal_separator!r})",
        )
    if len({f for f in inp.timestamp_formats if f in EPOCH_FORMATS}) > 1:
        yield "input.timestamp_formats", "expected epoch_seconds or epoch_millis, not both"


def _mapping_problems(inp: InputConfig) -> Iterator[tuple[str, str]]:
    """A column mapping from which the job cannot compute customers, time or money, refused before Spark starts."""
    columns = inp.columns
    if columns.customer_id is None:
        yield (
            "input.columns.customer_id",
            "a transaction log needs a customer id column; map it to the column that holds one",
        )
    if columns.invoice_ts is None:
        yield (
            "input.columns.invoice_ts",
            "a transaction log needs a date or timestamp column; map it to the column that holds one",
        )
    if columns.unit_price is None and columns.amount is None:
        yield (
            "input.columns.unit_price",
            (
                "no money column: map input.columns.unit_price (a unit price, times input.columns.quantity) or "
                "input.columns.amount (the line's total)"
            ),
        )
    if columns.unit_price is not None and columns.amount is not None:
        yield (
            "input.columns.amount",
            (
                f"input.columns.unit_price is mapped too ({columns.unit_price!r}); a line's money is its unit price "
                "times its quantity, or its amount: set input.columns.unit_price to null to use the amount"
            ),
        )
    if columns.unit_price is not None and columns.quantity is None:
        yield (
            "input.columns.quantity",
            (
                "a unit price needs a quantity to give the line's money; map input.columns.quantity, or map "
                "input.columns.amount to the line's total instead"
            ),
        )
    if inp.order_key == "invoice" and columns.invoice_id is None:
        yield (
            "input.order_key",
            (
                "orders by invoice need input.columns.invoice_id; set it, or order_key: timestamp (a customer's lines "
                "at one timestamp are one order) or line (each line is an order)"
            ),
        )


def _unknown(key: str, chosen: Sequence[str], allowed: Sequence[str]) -> Iterator[tuple[str, str]]:
    for name in chosen:
        if name not in allowed:
            yield key, f"unknown feature {name!r}; expected names from: {', '.join(allowed)}"
