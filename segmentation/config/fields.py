"""The building blocks of the configuration's models: strict field types, bounded fields whose errors say what
was expected, the frozen base model, and the time-zone check."""

from __future__ import annotations

import datetime as dt
import re
import types
import zoneinfo
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.functional_serializers import PlainSerializer
from pydantic.functional_validators import AfterValidator, BeforeValidator


def _iso_date(value: Any) -> Any:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return value  # left to the date type, which reports it


def _settings_text(value: Any) -> Any:
    if not isinstance(value, dict):
        return value  # left to the mapping type, which reports it
    return {str(k): ("true" if v is True else "false" if v is False else str(v)) for k, v in value.items()}


# strict: no bool for an int, no "3" for a number, no "yes" for a bool; YAML gives the real types
Whole = Annotated[int, Field(strict=True)]
Number = Annotated[float, Field(strict=True)]  # an int is fine
Flag = Annotated[bool, Field(strict=True)]
Text = Annotated[str, Field(strict=True, min_length=1)]
Texts = Annotated[tuple[Text, ...], BeforeValidator(lambda v: (v,) if isinstance(v, str) else v)]
IsoDate = Annotated[dt.date, Field(strict=True), BeforeValidator(_iso_date)]
Settings = Annotated[
    Mapping[str, str], BeforeValidator(_settings_text), AfterValidator(types.MappingProxyType), PlainSerializer(dict)
]


def limit(default: Any, expect: str, **bounds: Any) -> Any:
    """A field with bounds (``ge=2``, ``pattern=...``) and its error's text: "expected <expect>, got <value>"."""
    return Field(default, **bounds, json_schema_extra={"expect": expect})


class Frozen(BaseModel):
    # a string literal right under a field is its description (the generated configuration reference shows it)
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


ZONE_OFFSET = re.compile(r"^(?:UTC|GMT)?[+-](\d{2}):(\d{2})$")


def zone_text(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):  # YAML reads an unquoted +10:00 as 600 (base 60)
        raise ValueError(f"expected a time zone as text; write an offset in quotes, such as '+10:00' (got {value!r})")
    return value


def known_zone(value: str) -> str:
    """A region id (``Europe/Amsterdam``), ``UTC`` or an offset from -18:00 to +18:00 (Java's range), also after
    ``UTC`` or ``GMT``; a ValueError names what is expected."""
    expected = f"expected a time zone such as UTC, Europe/Amsterdam or +01:00, got {value!r}"
    offset = ZONE_OFFSET.match(value)
    if offset:
        if int(offset[1]) * 60 + int(offset[2]) > 18 * 60 or int(offset[2]) > 59:
            raise ValueError(expected)
        return value
    if value in ("UTC", "Z"):
        return value
    if value in ("localtime", "posixrules", "Factory") or value.startswith(("posix/", "right/")):
        raise ValueError(expected)  # files of the system's zone database that Java (Spark) does not know
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(expected) from None
    return value
