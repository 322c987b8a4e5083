"""Timing the job's stages: each stage logs when it starts and how long it took."""

from __future__ import annotations

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
