"""Manifests for tests: real ones, as a published run of version 1 wrote them (``fixtures/manifests``), with
the fields a test sets changed, read as this version reads them (``publish.manifest.parse``)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from segmentation.publish.manifest import Manifest, parse

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "manifests"


def raw_manifest(kind: str = "segmentation") -> dict[str, Any]:
    """The fixture manifest of a ``segmentation`` or ``scoring`` run, as its file holds it."""
    return json.loads((FIXTURES / f"{kind}_v1.json").read_text())


def manifest(kind: str = "segmentation", **changes: Any) -> Manifest:
    """The fixture manifest of ``kind`` with top-level ``changes`` (a ``history`` dict replaces the section)."""
    raw = copy.deepcopy(raw_manifest(kind))
    raw.update(changes)
    return parse(raw, f"fixture {kind}")
