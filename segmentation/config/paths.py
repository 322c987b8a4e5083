"""Path helpers: which paths the driver can read and write itself, and where a glob's folder starts."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse


def input_root(path: str) -> str:
    """The folder part of an input path before any glob character (the path itself if none)."""
    parts = Path(path).parts
    for i, part in enumerate(parts):
        if any(ch in part for ch in "*?["):
            return str(Path(*parts[:i])) if i else "."
    return path


def is_local_path(path: str) -> bool:
    """True for plain paths and ``file:`` URIs, which Python can read and write on the driver."""
    scheme = urlparse(path).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


def local_path(path: str) -> str:
    """A ``file:`` URI or plain path as a plain path."""
    return urlparse(path).path if path.startswith("file:") else path
