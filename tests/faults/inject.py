"""Run the command line with a fault injected, for the fault tests (tests/test_faults.py).

    python tests/faults/inject.py FAULT [segmentation run arguments ...]

FAULT is one of:
  none            run unchanged
  task-once       the first attempt of partition 0's task in the feature stage raises; a retry succeeds
  hang-in-write   after the first output table is written, touch $FAULT_MARKER and sleep (to be SIGKILLed)
  commit-together before committing, add a file to the folder $BARRIER and wait until it holds two (so two
                  jobs commit the same run at the same moment)

The library is not changed: the fault is patched in around a library function, as a test double would.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator

import pyarrow as pa
from pyspark import TaskContext
from pyspark.sql import DataFrame

from segmentation import cli
from segmentation.features import table
from segmentation.publish import files


def fail_first_attempt(frame: DataFrame) -> DataFrame:
    """The same rows, but the first attempt of the task for partition 0 raises."""

    def passthrough(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        context = TaskContext.get()
        if context is not None and context.partitionId() == 0 and context.attemptNumber() == 0:
            raise RuntimeError("injected fault: first attempt of a task")
        yield from batches

    return frame.mapInArrow(passthrough, frame.schema)


def inject(fault: str) -> None:
    if fault == "task-once":
        original = table.customer_features
        table.customer_features = lambda lines, as_of, **kw: fail_first_attempt(original(lines, as_of, **kw))
    elif fault == "hang-in-write":
        original_write = files.write_tables

        def write_then_hang(staging, tables, model=None):  # type: ignore[no-untyped-def]
            first = next(iter(tables))
            original_write(staging, {first: tables[first]})
            with open(os.environ["FAULT_MARKER"], "w", encoding="utf-8") as handle:
                handle.write(staging.folder)
            time.sleep(600)

        files.write_tables = write_then_hang
    elif fault == "commit-together":
        original_publish = files.publish

        def publish_together(staging, manifest):  # type: ignore[no-untyped-def]
            barrier = os.environ["BARRIER"]
            with open(os.path.join(barrier, str(os.getpid())), "w", encoding="utf-8"):
                pass
            deadline = time.monotonic() + 300
            while len(os.listdir(barrier)) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            return original_publish(staging, manifest)

        files.publish = publish_together
    elif fault != "none":
        raise SystemExit(f"unknown fault {fault!r}")


if __name__ == "__main__":
    inject(sys.argv[1])
    sys.exit(cli.main(sys.argv[2:]))
