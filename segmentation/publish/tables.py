"""The tables every run publishes: segments (with each customer's segment in the baseline), features, profiles and
the quarantine, customer ids pseudonymised where the run is keyed."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segmentation.input.quarantine import quarantined_lines
from segmentation.input.reasons import REASON
from segmentation.input.validate import Validated
from segmentation.model.pipeline import CLUSTER, SEGMENT, SEGMENT_NAME
from segmentation.publish.privacy import protect
from segmentation.publish.publisher import TableOutput

PREVIOUS_SEGMENT = "previous_segment"  # the customer's segment in the baseline run (segments over time)


def run_tables(
    segmented: DataFrame,
    profiles: DataFrame,
    validated: Validated,
    *,
    key: bytes | None,
    previous: DataFrame | None = None,
) -> dict[str, TableOutput]:
    """The tables every run publishes: segments, features, profiles and quarantine (ids pseudonymised if keyed).

    ``previous`` (``customer_id`` as published, ``previous_segment``) gives the segments table each customer's
    segment in the baseline run; the column is null throughout without one.
    """
    segments = protect(segmented.select("customer_id", SEGMENT, SEGMENT_NAME), key)
    if previous is None:
        segments = segments.withColumn(PREVIOUS_SEGMENT, F.lit(None).cast("int"))
    else:
        segments = segments.join(previous, "customer_id", "left")
    quarantine = quarantined_lines(validated.lines, validated.text_columns)
    return {
        "segments": TableOutput(segments.repartition(SEGMENT), (SEGMENT,)),
        "features": TableOutput(protect(segmented.drop(CLUSTER), key)),
        "profiles": TableOutput(profiles.coalesce(1)),
        "quarantine": TableOutput(protect(quarantine, key), (REASON,)),
    }
