"""The base of every part of the manifest: frozen, and tolerant of fields a later version added."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A part of the manifest."""

    # extra="ignore": a manifest written by a later version with fields this one does not know still reads
    model_config = ConfigDict(frozen=True, extra="ignore")
