"""Experiment for issue 34: what one scan and one shuffle would cost, against today's work copy and passes.

    .venv/bin/python bench/line_path_floor.py bench/data/large-20000000-K4-s7/log A   # today's path
    .venv/bin/python bench/line_path_floor.py bench/data/large-20000000-K4-s7/log B   # the floor of a redesign

Each prints its seconds; the features are written to Spark's ``noop`` sink. Run them one after the other, alone.

A: today's path: read_validate (work copy + passes) then the feature aggregation, timed.
B: one scan: per-line reasons and keys, counts per per-line reason observed on the same scan, valid lines
   shuffled once by customer, exact copies dropped inside each customer (by hash, then file and line id), and
   the per-customer aggregation; no work copy. Not the job's exact semantics (no window, no after-today, no
   quarantine written): a floor for the redesign.
C: A with the lines persisted (memory, then disk) instead of written to the work area as Parquet.
D, E: A with the work copy written uncompressed (D) or with lz4_raw (E) instead of snappy.

Measured 2026-12-07 on 20.3M lines (2 cores, one after the other): A 132.6-142.3 s, B 95.0 s, C 147.7-148.1 s,
D 156.3-162.1 s, E 133.7-140.7 s: neither the cache nor another codec beats today's copy.
"""

import datetime as dt
import sys
import time
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import Observation, Window
from pyspark.sql import functions as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from segmentation import config  # noqa: E402
from segmentation.features.table import customer_features  # noqa: E402
from segmentation.input import sources, validate  # noqa: E402
from segmentation.input.clean import clean_lines  # noqa: E402
from segmentation.input.reasons import LINE_HASH, LINE_ID, REASON  # noqa: E402
from segmentation.runtime import session  # noqa: E402

path = sys.argv[1]
which = sys.argv[2]
cfg = config.load(
    [REPO / "conf/base.yaml"], [], input_path=path, output_path=sys.argv[3] if len(sys.argv) > 3 else "/tmp/floor"
)
spark = session.build_session(cfg.spark)
with session.job_settings(spark):
    started = time.perf_counter()
    raw = sources.read_raw(spark, cfg.input)
    lines = validate.lines_for_copy(raw, cfg.input)
    rebuilt = sources.canonical_from_source(cfg.input)
    lines = lines.select(*[e.alias(n) for n, e in rebuilt.items()], *lines.columns)
    if which == "B":
        seen = Observation("counts")
        observed = lines.observe(seen, F.count(F.lit(1)).alias("lines"), F.count(REASON).alias("bad"))
        valid = observed.filter(F.col(REASON).isNull())
        order = Window.partitionBy("_customer_key", LINE_HASH).orderBy(sources.SOURCE_FILE, LINE_ID)
        first = valid.repartition("_customer_key").withColumn("_n", F.row_number().over(order))
        kept = first.filter(F.col("_n") == 1).drop("_n")
        features = customer_features(clean_lines(kept, cfg.input), dt.date(2011, 12, 9))
        features.write.format("noop").mode("overwrite").save()
        print("B one scan + one shuffle:", round(time.perf_counter() - started, 1), "s", seen.get)
    else:
        from segmentation.runtime.context import RunContext

        if which == "C":  # the lines persisted (memory, then disk) instead of written to the work area

            def persisted(self, frame, name):
                kept = frame.persist(StorageLevel.MEMORY_AND_DISK)
                kept.count()
                return kept

            RunContext.work_copy = persisted
        if which in ("D", "E"):  # the work copy without compression (D) or with lz4_raw (E), not snappy
            from segmentation.publish import files

            codec = {"D": "none", "E": "lz4_raw"}[which]

            def written(frame, path):
                writer = frame.write.mode("error").option("parquet.enable.dictionary", "false")
                writer.option("compression", codec).parquet(path)
                return frame.sparkSession.read.parquet(path)

            files.write_work_copy = written

        with RunContext(spark, cfg) as job:
            validated = job.read_validate()
            middle = time.perf_counter()
            clean = clean_lines(validated.lines, cfg.input)
            customer_features(clean, validated.as_of).write.format("noop").mode("overwrite").save()
            total, reading = round(time.perf_counter() - started, 1), round(middle - started, 1)
            print(which, "today:", total, "s; read_validate", reading)
spark.stop()
