"""Where the sweep is: which k and seed is being fitted, out of how many, and an estimate of the time left.

Progress goes through the ``segmentation.progress`` logger, so it is a plain log line wherever logs go
(spark-submit, CI, notebooks); the command line shows it as a live status line on a terminal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("segmentation.progress")


class SweepProgress:
    """Counts the KMeans fits as they start and estimates the time left from the mean time per fit so far."""

    def __init__(self, total_fits: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.started_fits, self.clock = total_fits, 0, clock
        self.start_time = clock()
        self._lock = threading.Lock()  # fits start from several threads

    def fitting(self, k: int, seed: int) -> None:
        """Report that the fit of ``k`` with ``seed`` starts now."""
        with self._lock:
            left = self.seconds_left()
            eta = f", about {left:.0f} s left" if left is not None else ""
            log.info("sweep: fitting k=%d seed %d (fit %d of %d%s)", k, seed, self.started_fits + 1, self.total, eta)
            self.started_fits += 1

    def expect(self, total_fits: int) -> None:
        """Set how many fits there are in all, once it is known (the sweep's extra seeds go to the k in
        contention only)."""
        with self._lock:
            self.total = total_fits

    def seconds_left(self) -> float | None:
        """The fits not yet started times the mean time per fit started so far (None before the first)."""
        if self.started_fits == 0:
            return None
        return (self.clock() - self.start_time) / self.started_fits * (self.total - self.started_fits)
