"""Customer segmentation from transaction logs with PySpark and Spark MLlib KMeans.

What a notebook or a program calls (``__all__``)::

    from segmentation import load_config, run, score, read_history

    cfg = load_config(["conf/base.yaml"], ["model.k_max=8"], input_path="/data/log.csv", output_path="/data/out")
    result = run(spark, cfg)                                   # the whole job, published at one commit point
    scored = score(spark, cfg, "/data/out")                    # new customers into the latest run's segments
    history = read_history(spark, "/data/out", "segments")     # every committed run's segments, one table

The folders show the job in the order data flows: ``config`` -> ``input`` -> ``features`` -> ``model`` ->
``history`` -> ``report`` -> ``publish``, with ``runtime`` (session, run context) and ``jobs`` (run, score) on
top and ``demo`` (generated logs) beside; the Layout in CONTRIBUTING.md says which may import which.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from segmentation.version import __version__

if TYPE_CHECKING:
    from segmentation.config import JobConfig
    from segmentation.config import load as load_config
    from segmentation.errors import ConfigError, InputError, RunFailed, SegmentationError
    from segmentation.history.readers import list_runs, parquet_files, read_pandas
    from segmentation.history.readers import read as read_history
    from segmentation.jobs.score import ScoreResult, score
    from segmentation.jobs.segment import RunResult, run
    from segmentation.publish import for_root, read_manifest, read_run_table, resolve_run
    from segmentation.runtime.session import spark_session

# name -> (module, attribute): imported when first used, so that ``import segmentation`` (and the command line's
# ``--help``, or a configuration refused before Spark starts) does not load Spark ML, pandas and matplotlib
_PUBLIC = {
    "ConfigError": ("segmentation.errors", "ConfigError"),
    "InputError": ("segmentation.errors", "InputError"),
    "JobConfig": ("segmentation.config", "JobConfig"),
    "RunFailed": ("segmentation.errors", "RunFailed"),
    "RunResult": ("segmentation.jobs.segment", "RunResult"),
    "ScoreResult": ("segmentation.jobs.score", "ScoreResult"),
    "SegmentationError": ("segmentation.errors", "SegmentationError"),
    "for_root": ("segmentation.publish", "for_root"),
    "list_runs": ("segmentation.history.readers", "list_runs"),
    "load_config": ("segmentation.config", "load"),
    "parquet_files": ("segmentation.history.readers", "parquet_files"),
    "read_history": ("segmentation.history.readers", "read"),
    "read_manifest": ("segmentation.publish", "read_manifest"),
    "read_pandas": ("segmentation.history.readers", "read_pandas"),
    "read_run_table": ("segmentation.publish", "read_run_table"),
    "resolve_run": ("segmentation.publish", "resolve_run"),
    "run": ("segmentation.jobs.segment", "run"),
    "score": ("segmentation.jobs.score", "score"),
    "spark_session": ("segmentation.runtime.session", "spark_session"),
}
__all__ = [
    "ConfigError",
    "InputError",
    "JobConfig",
    "RunFailed",
    "RunResult",
    "ScoreResult",
    "SegmentationError",
    "__version__",
    "for_root",
    "list_runs",
    "load_config",
    "parquet_files",
    "read_history",
    "read_manifest",
    "read_pandas",
    "read_run_table",
    "resolve_run",
    "run",
    "score",
    "spark_session",
]


def __getattr__(name: str) -> Any:
    """The public names, each imported from the module that owns it when first asked for."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'segmentation' has no attribute {name!r}")
    module, attribute = _PUBLIC[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
