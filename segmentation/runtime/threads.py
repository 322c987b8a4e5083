"""Thread pools that run Spark jobs at once, and the calling thread alone where threads cannot (Spark Connect)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_connect(frame_or_session: object) -> bool:
    """True for a Spark Connect DataFrame or session (without importing the optional Connect client)."""
    return type(frame_or_session).__module__.startswith("pyspark.sql.connect")


class InlineExecutor(Executor):
    """Runs every task at once in the calling thread."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def executor_for(frame: object, workers: int, *, setting: str | None = None) -> Executor:
    """A pool of ``workers`` threads to run Spark jobs at once; over Spark Connect, the calling thread alone.

    Spark ML over Connect (pyspark 4.3) fails from worker threads: ``pyspark.ml.util`` asserts
    ``SparkSession.getActiveSession()``, which the Connect client keeps in a ``threading.local``, so a new
    thread has none. There everything runs in the thread that holds the session, and when ``setting`` (the
    configuration key that asked for ``workers``) asked for more than one, a log line says it has no effect.
    """
    if not is_connect(frame):
        return ThreadPoolExecutor(max_workers=max(1, workers))
    if setting is not None and workers > 1:
        log.info("%s=%d has no effect over Spark Connect: its Spark jobs run one after the other", setting, workers)
    return InlineExecutor()


def run_all(anchor: object, calls: Mapping[str, Callable[[], T]], *, workers: int) -> dict[str, T]:
    """Each call's result by name, up to ``workers`` run at once (``executor_for(anchor, ...)``).

    Every call finishes (or fails) before this returns, so a failure never races a later cleanup; then the first
    failure (in the order of ``calls``) is raised. One call runs in the calling thread: over Spark Connect, Spark
    ML needs the thread that holds the session.
    """
    pool = executor_for(anchor, min(workers, len(calls))) if len(calls) > 1 else InlineExecutor()
    with pool:
        futures = {name: pool.submit(call) for name, call in calls.items()}
        wait(futures.values())
    return {name: future.result() for name, future in futures.items()}
