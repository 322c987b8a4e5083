"""What customer value costs: the same input and as-of date run with and without the value stage, alternated.

    .venv/bin/python bench/value_cost.py [--lines 2e7] [--repeats 2] [--pandas] [--only valued]

``--repeats`` times, in turn: run id ``plain`` with ``value.enabled=false`` and run id ``valued`` with the
default (value on). Both do all the other work alike (``history.enabled=false``, so neither depends on the
other), so the difference of their medians is what the value stage adds. Prints per-stage medians (from the
manifests), wall and peak-memory medians (the whole process tree, sampled every 0.1 s), the ratio valued / plain,
and the value fit's customers, distinct (x, t_x, T) tuples and spend bins. ``--pandas`` adds, in each round, the
pandas + scikit-learn reference on the same input (``bench/reference_sklearn.py``, which models no value: its
memory is a floor for a pandas run that also would). ``--only valued`` runs the valued run alone (the figures
at a size where the pair would take too long). The input is the benchmark's generated log (``bench/inputs.py``;
made once under bench/data, reused).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import impls  # bench/ is on sys.path: this script's folder
import inputs
from measure import Measured, run_measured

AS_OF = "2011-12-09"
STAGES = ("read_validate", "features", "sweep", "final_model", "value", "write", "total")
TIMEOUT = 4 * 3600.0
RUNS = ("plain", "valued")


def ours(cli: list[str], run_id: str, logs: Path, *extra: str) -> tuple[Measured, dict]:
    """One run of ours: what was measured and its manifest."""
    argv = [*cli, "--run-id", run_id, "--set", f"features.as_of={AS_OF}", "--set", "history.enabled=false", *extra]
    done = run_measured(argv, str(impls.REPO), logs, TIMEOUT)
    if done.returncode:
        raise SystemExit(f"run {run_id} failed:\n{done.stderr_tail}")
    folder = next(line.split()[-1] for line in done.stdout.splitlines() if line.startswith("published"))
    return done, json.loads((Path(folder) / "manifest.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=float, default=2e7)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--pandas", action="store_true", help="also run the pandas reference in each round")
    parser.add_argument("--only", choices=RUNS, help="run only this one of the pair")
    parser.add_argument("--driver-memory", default=impls.local_driver_memory(impls.physical_memory()))
    args = parser.parse_args()
    data = impls.BENCH / "data"
    name = "large" if args.lines >= 1e7 else "small"  # the names make bench caches its logs under
    found = inputs.generated(name, int(args.lines), planted=4, seed=7, data_dir=data, chunk=20_000)
    runs = [args.only] if args.only else list(RUNS)
    measured: dict[str, list[Measured]] = {r: [] for r in [*runs, "pandas"]}
    manifests: dict[str, list[dict]] = {r: [] for r in runs}
    with tempfile.TemporaryDirectory(prefix="value-cost-") as tmp:
        work = Path(tmp)
        cli = impls.command("ours", found.path, work / "out", args.driver_memory, work)
        cli = [part for part in cli if part not in ("--run-id", "bench")]
        for round_ in range(args.repeats):
            for run_id in runs:
                extra = ("--set", "value.enabled=false") if run_id == "plain" else ()
                done, manifest = ours(cli, run_id, work / "logs" / f"{run_id}-{round_}", *extra)
                measured[run_id].append(done)
                manifests[run_id].append(manifest)
            if args.pandas:
                reference = impls.command("sklearn", found.path, work / f"pandas-{round_}", args.driver_memory, work)
                measured["pandas"].append(run_measured(reference, str(impls.REPO), work / "logs" / "pandas", TIMEOUT))
    print(f"input: {found.lines:,} lines, {found.customers:,} customers; {args.repeats} rounds, alternated")
    print("| run | wall s | peak GB | " + " | ".join(f"{s} s" for s in STAGES) + " |")
    print("| --- | --- | --- |" + " --- |" * len(STAGES))
    for run_id, done in measured.items():
        if not done:
            continue
        wall = statistics.median(m.wall_seconds for m in done)
        peak = statistics.median(m.peak_rss_bytes for m in done) / 2**30
        kept = manifests.get(run_id, [])
        stages = [statistics.median(m["timings_seconds"].get(s, 0.0) for m in kept) if kept else None for s in STAGES]
        cells = " | ".join("-" if v is None else f"{v:.1f}" for v in stages)
        failed = "" if all(m.returncode == 0 for m in done) else " (failed)"
        print(f"| {run_id}{failed} | {wall:.1f} | {peak:.2f} | {cells} |")
    if len(runs) == 2:
        walls = {r: statistics.median(m.wall_seconds for m in measured[r]) for r in runs}
        print(f"wall time valued / plain (medians): {walls['valued'] / walls['plain']:.3f}")
    if "valued" in manifests:
        value = manifests["valued"][-1]["value"]
        purchases, spend = value.get("purchases") or {}, value.get("spend") or {}
        print(
            f"value: {value['status']}; {purchases.get('customers')} customers in {purchases.get('tuples')} distinct "
            f"(x, t_x, T) tuples; spend model on {spend.get('customers')} customers in {spend.get('tuples')} bins"
        )


if __name__ == "__main__":
    sys.exit(main())
