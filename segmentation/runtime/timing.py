"""Time: the job's stages (each logs when it starts and how long it took) and the date and time in UTC."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
import zoneinfo
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


def zone_of(name: str) -> dt.tzinfo:
    """A time zone by the names ``input.time_zone`` takes: a region id, ``UTC``/``Z``, or an offset such as
    ``+01:00`` (also after ``UTC`` or ``GMT``)."""
    offset = re.fullmatch(r"(?:UTC|GMT)?([+-])(\d{2}):(\d{2})", name)
    if offset:
        sign = 1 if offset[1] == "+" else -1
        return dt.timezone(sign * dt.timedelta(hours=int(offset[2]), minutes=int(offset[3])))
    return dt.UTC if name in ("UTC", "Z") else zoneinfo.ZoneInfo(name)


def today_in(zone: str, now: dt.datetime | None = None) -> dt.date:
    """The day it is now (or at ``now``, an aware time) in ``zone``: the day the job runs where the log's times are
    local, after which no valid line can be dated."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(zone_of(zone)).date()


def utc_timestamp() -> str:
    """Now in UTC as ISO text to the second, for manifests and owner files."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
