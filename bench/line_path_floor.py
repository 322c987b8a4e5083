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
F: one scan and one shuffle by customer into one aggregation, written once: an as-of-free state (one row per
   customer and day, copies dropped, the day's sums and its sets of orders and products) and one row per line with
   a per-line reason, with its raw text; the as-of date observed on the scan; then features from the state alone.

Measured 2026-12-07 on 20.3M lines (2 cores, one after the other): A 132.6-142.3 s, B 95.0 s, C 147.7-148.1 s,
D 156.3-162.1 s, E 133.7-140.7 s: neither the cache nor another codec beats today's copy. Later, on a slower
hour: F with every column through the shuffle 175.9 and 171.8 s against A 153.0 and 143.3 s (alternated); F
with only the typed columns and the invalid lines' text through the shuffle (as below) 149.7 s: one scan that
keeps the rules is no faster than the copy as written here. With the object hash aggregation's fallback threshold
at 1,000,000 (the fourth argument): F 166.1 s, A 145.3 s, then A at the default 171.5 s: within this hour's noise,
so the sets' sort fallback is not shown to be F's cost.
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
from segmentation.input.reasons import LINE_HASH, LINE_ID, PRICE, QTY, REASON, TS  # noqa: E402
from segmentation.runtime import session  # noqa: E402


def run_f(lines, cfg, started):
    """F: one scan and one shuffle by customer write, in one job, an as-of-free state (per customer and day) and
    the lines with a per-line reason; the features at the observed as-of date then come from the state alone."""
    seen = Observation("scan")
    valid_ts = F.when(F.col(REASON).isNull(), F.col("_ts"))
    observed = lines.observe(
        seen, F.count(F.lit(1)).alias("lines"), F.count(REASON).alias("bad"), F.max(valid_ts).alias("latest")
    )
    # the branches below split after the shuffle: a nondeterministic guard keeps their filters from being pushed
    # below it, so both read the same exchange (reused) and the scan runs once
    # one aggregation over every line, after the one shuffle: valid lines to (customer, day), copies dropped;
    # each line with a per-line reason to a row of its own (keyed by its line id), with its raw text
    # only what the state needs crosses the shuffle: typed columns, and the raw text of the invalid lines alone
    slim = observed.select(
        "_customer_key",
        TS,
        QTY,
        PRICE,
        "_invoice_key",
        F.trim(F.col("product_id")).alias("_product"),
        REASON,
        LINE_ID,
        LINE_HASH,
        sources.SOURCE_FILE,
        F.when(F.col(REASON).isNotNull(), sources.raw_line()).alias("_raw"),
    )
    shuffled = slim.repartition("_customer_key")
    valid_line = F.col(REASON).isNull()
    order = Window.partitionBy("_customer_key", LINE_HASH, valid_line).orderBy(sources.SOURCE_FILE, LINE_ID)
    numbered = shuffled.withColumn("_n", F.row_number().over(order))
    kept = numbered.filter(~valid_line | (F.col("_n") == 1))
    invoice = F.col("_invoice_key")
    is_return = F.upper(invoice).startswith("C") | (F.col(QTY) < 0)
    amount = F.abs(F.col(QTY) * F.col(PRICE))
    signed = F.when(valid_line, F.when(is_return, -amount).otherwise(amount))
    purchase = valid_line & ~is_return
    both = kept.groupBy(
        F.col("_customer_key").alias("customer_id"),
        F.to_date(TS).alias("day"),
        F.when(~valid_line, F.col(LINE_ID)).alias("bad_line"),
    ).agg(
        F.max(F.when(purchase, 1).otherwise(0)).alias("bought"),
        F.sum(signed).alias("net"),
        F.sum(F.when(purchase, signed).otherwise(0.0)).alias("gross"),
        F.sum(F.when(valid_line & is_return, -signed).otherwise(0.0)).alias("returned"),
        F.sum(F.when(purchase, F.col(QTY)).otherwise(0.0)).alias("items"),
        F.collect_set(F.when(purchase, invoice)).alias("orders"),
        F.collect_set(F.when(purchase, F.col("_product"))).alias("products"),
        F.count(F.lit(1)).alias("lines"),
        F.first(REASON).alias("reason"),
        F.first(sources.SOURCE_FILE).alias("source_file"),
        F.first("_raw").alias("raw"),
    )
    both = both.withColumn("kind", F.when(F.col("bad_line").isNull(), "day").otherwise("bad"))
    out = "/tmp/floor-state"
    both.write.mode("overwrite").partitionBy("kind").parquet(out)
    written = time.perf_counter()
    as_of = seen.get["latest"].date()
    state = lines.sparkSession.read.parquet(out + "/kind=day")
    upto = state.filter(F.col("day") <= F.lit(as_of))
    bought = F.col("bought") == 1
    per_customer = upto.groupBy("customer_id").agg(
        F.max(F.when(bought, F.col("day"))).alias("last_purchase"),
        F.min(F.when(bought, F.col("day"))).alias("first_purchase"),
        F.size(F.array_distinct(F.flatten(F.collect_list("orders")))).alias("orders"),
        F.sum("net").alias("net"),
        F.sum("items").alias("items"),
        F.size(F.array_distinct(F.flatten(F.collect_list("products")))).alias("products"),
    )
    per_customer.write.format("noop").mode("overwrite").save()
    total = round(time.perf_counter() - started, 1)
    print("F state:", total, "s; scan and state", round(written - started, 1), seen.get)


path = sys.argv[1]
which = sys.argv[2]
cfg = config.load(
    [REPO / "conf/base.yaml"], [], input_path=path, output_path=sys.argv[3] if len(sys.argv) > 3 else "/tmp/floor"
)
spark = session.build_session(cfg.spark)
if len(sys.argv) > 4:  # an object hash aggregation's keys before it falls back to sorting (Spark's default: 128)
    spark.conf.set("spark.sql.objectHashAggregate.sortBased.fallbackThreshold", sys.argv[4])
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
    elif which == "F":
        run_f(lines, cfg, started)
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
