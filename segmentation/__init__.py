"""Customer segmentation from transaction logs with PySpark and Spark MLlib KMeans.

What a notebook or a program calls (``__all__``)::

    from segmentation import load_config, run, score, read_history

    cfg = load_config(["conf/base.yaml"], ["model.k_max=8"], input_path="/data/log.csv", output_path="/data/out")
    result = run(spark, cfg)                                   # the whole job, published at one commit point
    scored = score(spark, cfg, "/data/out")                    # new customers into the latest run's segments
    history = read_history(spark, "/data/out", "segments")     # every committed run's segments, one table

The folders show the job in the order data flows: ``config`` -> ``input`` -> ``features`` -> ``model`` ->
``history`` -> ``report`` -> ``publish``, with ``runtime`` (session, run context) and ``jobs`` (run, score) on
top and ``demo`` (generated logs) beside; the README's Layout says which may import which.
"""

from segmentation.config import JobConfig
from segmentation.config import load as load_config
from segmentation.errors import ConfigError, InputError, RunFailed, SegmentationError
from segmentation.history.readers import list_runs, parquet_files, read_pandas
from segmentation.history.readers import read as read_history
from segmentation.jobs.score import ScoreResult, score
from segmentation.jobs.segment import RunResult, run
from segmentation.publish import for_root, read_manifest, read_run_table, resolve_run
from segmentation.runtime.session import spark_session
from segmentation.version import __version__

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
