"""Every configuration key has a description in the code (a docstring under its field), which the generated
configuration reference (``docs/reference/configuration.md``) shows. Pure: no Spark."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel

from segmentation.config import JobConfig
from segmentation.config.fields import Frozen


def _fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str | None]]:
    """Each field of ``model`` and of the Frozen models under it, as its dotted key and its description."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.serialization_alias or name}"
        yield key, field.description
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, Frozen):
            yield from _fields(sub, f"{key}.")


def test_every_configuration_key_has_a_description() -> None:
    described = dict(_fields(JobConfig))
    assert len(described) > 90
    assert [key for key, text in described.items() if not (text and text.strip())] == []


def test_descriptions_are_short_plain_text() -> None:
    for key, text in _fields(JobConfig):
        assert text is not None
        assert "\n\n" not in text, key  # one paragraph: a cell of the reference's table
        assert len(text) <= 240, key
    described = dict(_fields(JobConfig))
    assert "smaller run's customers" in (described["history.min_shared_customers"] or "")
    assert "null" in (described["features.window_days"] or "")
