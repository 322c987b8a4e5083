"""Time: the job's stages (each logs when it starts and how long it took) and the date and time in UTC."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("segmentation.stages")


class StageTimer:
    """Collects wall-clock seconds per named stage, in order."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.current: str | None = None
        self._started = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the body as stage ``name`` (Spark is lazy: a stage's time is the actions inside it)."""
        log.info("stage %s: started", name)
        self.current = name
        start = time.perf_counter()
        try:
            yield
            self.current = None
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
            log.info("stage %s: %.1f s", name, elapsed)

    @property
    def total(self) -> float:
        return time.perf_counter() - self._started

    def as_dict(self) -> dict[str, float]:
        return {**{k: round(v, 3) for k, v in self.seconds.items()}, "total": round(self.total, 3)}


def utc_today() -> dt.date:
    """The day it is now in UTC: the day the job runs (no valid line can be dated after it)."""
    return dt.datetime.now(dt.UTC).date()


def utc_timestamp() -> str:
    """Now in UTC as ISO text to the second, for manifests and owner files."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
