"""The effective configuration as YAML, each key with where its value came from (``segmentation config show``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from segmentation.config.schema import JobConfig

INDENT = "  "


def effective_yaml(cfg: JobConfig, origin: Mapping[str, str]) -> str:
    """Every key of ``cfg`` as YAML that ``--config`` reads back, each leaf followed by ``# <origin>``: the file,
    ``--set KEY`` or flag that set it (``loader.load_with_origins``), or ``default``."""
    return "\n".join(_lines(cfg.to_dict(), origin, prefix="", depth=0)) + "\n"


def _lines(node: Mapping[str, Any], origin: Mapping[str, str], *, prefix: str, depth: int) -> list[str]:
    out = []
    for key, value in node.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        label = _scalar(str(key))  # the key quoted where YAML needs it
        if isinstance(value, dict) and value:
            out.append(f"{INDENT * depth}{label}:")
            out += _lines(value, origin, prefix=dotted, depth=depth + 1)
        else:
            out.append(f"{INDENT * depth}{label}: {_scalar(value)}  # {origin.get(dotted, 'default')}")
    return out


def _scalar(value: Any) -> str:
    """One value as inline YAML (lists and empty mappings in flow style)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()
