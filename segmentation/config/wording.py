"""Pydantic's validation errors in this project's words: the dotted key and what was expected, never the value of
a key that must not be in a file."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from segmentation.config.rules import RuleError
from segmentation.config.schema import JobConfig

_WORDING = {  # pydantic's error types -> our message
    ("int_type", "int_parsing", "int_from_float"): "expected a whole number, got {value!r}",
    ("float_type", "float_parsing"): "expected a number, got {value!r}",
    ("bool_type", "bool_parsing"): "expected true or false, got {value!r}",
    ("string_type", "string_too_short"): "expected a non-empty text, got {value!r}",
    ("date_type", "date_parsing", "date_from_datetime_parsing"): "expected a date like 2011-12-09, got {value!r}",
    ("tuple_type",): "expected a list, got {value!r}",
    ("dict_type",): "expected a mapping of settings, got {value!r}",
    ("model_type",): "expected a mapping, got {type}",
    ("missing",): "a value is required",
}
_MESSAGES = {kind: text for kinds, text in _WORDING.items() for kind in kinds}
_KEY_IN_FILE = (
    "the key is never read from a config file; put it in the environment variable named by privacy.key_env, "
    "or in a Databricks secret (privacy.secret_scope, secret_key)"
)

_RETIRED = {  # keys that once existed -> what replaced them
    "selection.silhouette_tolerance": (
        "no longer a setting: in the combined rule every criterion votes for its best k, instead of the smallest "
        "k within a silhouette tolerance winning (docs/how-it-works/sweep.md); remove the key"
    ),
}


def explain(error: Mapping[str, Any]) -> tuple[str, str]:
    """The dotted key and our message for one of pydantic's errors."""
    loc, kind, value = error["loc"], error["type"], error.get("input")
    key = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    rule = error.get("ctx", {}).get("error")
    if isinstance(rule, RuleError):
        return rule.args
    if kind == "extra_forbidden":
        if key == "privacy.key":
            return key, _KEY_IN_FILE  # never the value
        if key in _RETIRED:
            return key, _RETIRED[key]
        return key, f"unknown key; expected one of: {', '.join(sorted(_keys(_fields(loc[:-1]))))}"
    if kind == "literal_error":
        choices = ", ".join(re.findall(r"'([^']*)'", error["ctx"]["expected"]))
        return key, f"expected one of {choices}, got {value!r}"
    if kind == "value_error" and isinstance(rule, ValueError):
        return key, str(rule)
    if kind in _MESSAGES:
        return key, _MESSAGES[kind].format(value=value, type=type(value).__name__)
    fields = _fields(loc[:-1]) if loc else {}
    field = next((f for name, f in fields.items() if loc[-1] in (name, f.validation_alias)), None)
    extra = field.json_schema_extra if field else None
    if isinstance(extra, dict) and "expect" in extra:
        return key, f"expected {extra['expect']}, got {value!r}"
    return key, str(error["msg"])


def _keys(fields: Mapping[str, Any]) -> list[str]:
    """The keys a file uses for ``fields``: a field's alias where it has one (``output.catalog.catalog``)."""
    return [
        field.validation_alias if isinstance(field.validation_alias, str) else name for name, field in fields.items()
    ]


def _fields(loc: Sequence[Any]) -> dict[str, Any]:
    """The fields of the model at ``loc``: JobConfig's at (), InputConfig's at ("input",), none past a list."""
    fields = JobConfig.model_fields
    for part in loc:
        field = (
            next((f for n, f in fields.items() if part in (n, f.validation_alias)), None)
            if isinstance(part, str)
            else None
        )
        fields = getattr(field.annotation if field else None, "model_fields", {})
    return fields
