"""The manifest of a published run (``manifest.json``): one schema for a segmentation run and a scoring run.

Both hold what a reader needs to trust and join a run: its date and ids, input, line counts, the cluster to
segment mapping, the segments with their names and sizes, versions and the whole configuration. A
segmentation run adds its sweep, the choice of k and the model's centroids; a scoring run names the model
it used.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from typing import Any

import pyspark

from segmentation import __version__
from segmentation.config import JobConfig, unavailable_features
from segmentation.outputs import Staging
from segmentation.timing import utc_timestamp
from segmentation.validation import LineCounts

SEGMENTATION = "segmentation"
SCORING = "scoring"


def build(
    kind: str,
    staging: Staging,
    cfg: JobConfig,
    *,
    spark_version: str,
    counts: LineCounts,
    customers: int,
    mapping: Mapping[int, int],
    profile_rows: Sequence[Mapping[str, Any]],
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """The manifest of a run of ``kind`` (``segmentation`` or ``scoring``), with ``extra`` fields of that kind."""
    return {
        "kind": kind,
        "run_id": staging.run_id,
        "attempt_id": staging.attempt_id,
        "as_of_date": staging.as_of.isoformat(),
        "created_utc": utc_timestamp(),
        "input": {
            "kind": cfg.input.kind,
            "path": cfg.input.path,
            "table": cfg.input.table,
            "where": cfg.input.where,
            "orders_by": cfg.input.orders_by if cfg.input.kind == "transactions" else None,
            "features_left_out": unavailable_features(cfg.input) if cfg.input.kind == "transactions" else {},
        },
        "counts": {**counts.as_dict(), "customers": customers},
        "cluster_to_segment": {str(k): v for k, v in sorted(mapping.items())},
        "segments": [
            {
                "segment": r["segment"],
                "name": r["segment_name"],
                "customers": r["customers"],
                "customer_share": r["customer_share"],
            }
            for r in profile_rows
        ],
        **extra,
        "versions": {
            "segmentation": __version__,
            "pyspark": pyspark.__version__,
            "spark": spark_version,
            "python": platform.python_version(),
        },
        "config": cfg.to_dict(),
    }
