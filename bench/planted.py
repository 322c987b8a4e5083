"""The choice of k on planted data: every scenario of ``segmentation/demo/planted.py`` through the job, against
the truth.

    .venv/bin/python bench/planted.py [--customers 3000] [--seeds 7,8] [--scenarios k6,unequal,...]
                                      [--k-max 10] [--output bench/results/planted.md]

Each scenario is generated, then run by ``segment.run`` with the defaults a user gets (``model.k_max`` 10, the
combined rule), in one local Spark session. For each run it reports the planted k, the chosen k, the adjusted
Rand index (ARI) of the published segments against the truth, the ARI the sweep's fit at the planted k would
have had, the k the retired rule (the smallest k within 0.01 of the best silhouette) would have taken, and the
k the combined rule takes when Spark's silhouette (squared distances) is replaced by the usual one (Euclidean,
exact, on a sample of at most 2,000 of the sweep's customers): the check that the rule does not depend on
which silhouette it is given. The sweep is observed (not changed) by wrapping ``sweep.run_sweep``.

The job runs with the MLlib sweep (``model.sweep_engine: spark``), and the observer also sweeps the very same
vectors in the driver (``sweep.run_driver_sweep``, the default engine): the table gives the driver's chosen k
and whether its reason is the same (the k, the rule's first clause and the criteria that put it first; the
values differ, since the driver's fits are not MLlib's). With the same k, the default engine's run publishes the
same segments: the final model is fitted by MLlib on every customer with the same seeds either way.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pyspark.sql import SparkSession  # noqa: E402

from segmentation import config  # noqa: E402
from segmentation.demo import planted  # noqa: E402
from segmentation.jobs import segment  # noqa: E402
from segmentation.model import selection, sweep  # noqa: E402
from segmentation.model.metrics import KResult, adjusted_rand_index  # noqa: E402
from segmentation.model.pipeline import CLUSTER  # noqa: E402


def retired_rule(results: list[KResult]) -> int | None:
    """The rule before issue 21: the smallest admissible k within 0.01 of the best silhouette."""
    ok = [
        r
        for r in results
        if not r.has_empty_cluster and r.smallest_cluster_share >= 0.02 and (r.stability or 1.0) >= 0.8
    ]
    if not ok:
        return None
    top = max(r.silhouette or 0.0 for r in ok)
    return min(r.k for r in ok if (r.silhouette or 0.0) >= top - 0.01)


class SweepObserver:
    """Wraps ``sweep.run_sweep``: per k, the ARI of the sweep's fit against the truth and the usual silhouette."""

    def __init__(self) -> None:
        self.truth = None
        self.per_k: dict[int, tuple[float, float]] = {}
        self.driver: selection.Choice | None = None
        self.rules = selection.SelectionConfig()
        self._original = sweep.run_sweep

    def __call__(self, vectors_df, ks, settings, **options):  # type: ignore[no-untyped-def]
        results, fitted = self._original(vectors_df, ks, settings, **options)
        driver = sweep.run_driver_sweep(sweep.driver_points(vectors_df), ks, settings, **options)
        self.driver = selection.choose_k(driver, self.rules, settings.k)
        usual = planted.usual_silhouettes(vectors_df, fitted)
        self.per_k = {}
        for k, model in fitted.items():
            assigned = model.transform(vectors_df)
            rows = (
                assigned.join(self.truth, assigned.customer_id == self.truth.CustomerID)
                .groupBy(CLUSTER, "persona")
                .count()
                .collect()
            )
            ari = adjusted_rand_index({(r[CLUSTER], r["persona"]): r["count"] for r in rows})
            self.per_k[k] = (ari, usual[k])
        return results, fitted


def run_one(
    spark: SparkSession, observer: SweepObserver, name: str, *, customers: int, seed: int, k_max: int, work: Path
) -> dict:
    spec = planted.scenario(name)
    data = work / f"{name}-{seed}.{'csv' if spec.kind == 'customers' else 'csv.gz'}"
    truth_path = work / f"{name}-{seed}-truth.csv"
    planted.write(str(data), name, customers=customers, seed=seed, truth_path=str(truth_path))
    truth = spark.read.option("header", True).csv(str(truth_path)).cache()
    observer.truth = truth
    observer.driver = None
    cfg = config.load(
        [REPO / "conf/base.yaml"],
        [*planted.settings(spec), f"model.k_max={k_max}", "history.enabled=false", "model.sweep_engine=spark"],
        input_path=str(data),
        output_path=str(work / f"out-{name}-{seed}"),
    )
    started = time.perf_counter()
    result = segment.run(spark, cfg)
    seconds = time.perf_counter() - started
    segments = spark.read.parquet(str(Path(result.run_folder) / "segments"))
    rows = (
        segments.join(truth, segments.customer_id == truth.CustomerID).groupBy("segment", "persona").count().collect()
    )
    ari = adjusted_rand_index({(r["segment"], r["persona"]): r["count"] for r in rows})
    usual = [dataclasses.replace(r, silhouette=observer.per_k[r.k][1]) for r in result.sweep]
    manifest = __import__("json").loads((Path(result.run_folder) / "manifest.json").read_text())
    truth.unpersist()
    return {
        "scenario": name,
        "seed": seed,
        "hard": spec.hard,
        "planted": spec.planted,
        "chosen": result.choice.k,
        "ari": ari,
        "ari_at_planted": observer.per_k.get(spec.planted, (float("nan"), 0))[0],
        "retired": retired_rule(result.sweep),
        "with_usual_silhouette": selection.choose_k(usual, cfg.selection).k,
        "real_split": spec.real_split,
        "repeat_splits": manifest.get("repeat_splits", []),
        "reason": result.choice.reason,
        "driver": observer.driver.k if observer.driver else None,
        "driver_same_reason": bool(observer.driver)
        and selection.decisive(observer.driver.reason) == selection.decisive(result.choice.reason),
        "seconds": seconds,
    }


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| scenario | seed | what makes it hard | planted k | chosen k | ARI | ARI at planted k | retired rule's k "
        "| k with the usual silhouette | one-time/repeat splits reported | driver sweep's k (same reason) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        splits = ", ".join(f"{s['repeat']}/{s['one_time']}" for s in r["repeat_splits"]) or "-"
        lines.append(
            f"| {r['scenario']} | {r['seed']} | {r['hard']} | {r['planted']} | {r['chosen']} | {r['ari']:.3f} | "
            f"{r['ari_at_planted']:.3f} | {r['retired']} | {r['with_usual_silhouette']} | {splits} | "
            f"{r['driver']} ({'yes' if r['driver_same_reason'] else 'no'}) |"
        )
    aris = [r["ari"] for r in rows]
    lines += [
        "",
        f"Mean ARI {statistics.mean(aris):.3f}, lowest {min(aris):.3f}; chosen k within one of the planted k in "
        f"{sum(abs(r['chosen'] - r['planted']) <= 1 for r in rows)} of {len(rows)} runs; the usual silhouette "
        f"gives the same k in {sum(r['chosen'] == r['with_usual_silhouette'] for r in rows)} of {len(rows)}; "
        f"the driver sweep chooses the same k in {sum(r['chosen'] == r['driver'] for r in rows)} of {len(rows)}, "
        f"for the same reason in {sum(r['driver_same_reason'] for r in rows)}.",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--seeds", default="7,8")
    parser.add_argument("--scenarios", default=",".join(planted.SCENARIOS))
    parser.add_argument("--k-max", type=int, default=10)
    parser.add_argument("--output", help="also write the table (Markdown) to this file")
    args = parser.parse_args()
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("planted")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.log.level", "ERROR")
        .config("spark.driver.memory", "6g")
        .getOrCreate()
    )
    observer = SweepObserver()
    sweep.run_sweep = observer  # type: ignore[assignment]
    rows = []
    with tempfile.TemporaryDirectory(prefix="planted-") as folder:
        for seed in [int(s) for s in args.seeds.split(",")]:
            for name in args.scenarios.split(","):
                row = run_one(
                    spark, observer, name, customers=args.customers, seed=seed, k_max=args.k_max, work=Path(folder)
                )
                rows.append(row)
                print(
                    f"{name} seed={seed}: planted {row['planted']}, chosen {row['chosen']}, ARI {row['ari']:.3f} "
                    f"({row['seconds']:.0f} s), driver sweep {row['driver']} "
                    f"({'same' if row['driver_same_reason'] else 'other'} reason); {row['reason']}",
                    flush=True,
                )
    text = "\n".join(table(rows))
    print(text)
    if args.output:
        Path(args.output).write_text(
            f"# The choice of k on planted data\n\n`.venv/bin/python bench/planted.py --customers {args.customers} "
            f"--seeds {args.seeds}`\n\n{text}\n"
        )
    spark.stop()


if __name__ == "__main__":
    main()
