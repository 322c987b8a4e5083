"""What customer value costs: the same input and as-of date run with and without the value stage, alternated.

    .venv/bin/python bench/value_cost.py [--lines 2e7] [--repeats 2] [--driver-memory 4g]

``--repeats`` times, in turn: run id ``plain`` with ``value.enabled=false`` and run id ``valued`` with the
default (value on). Both do all the other work alike (``history.enabled=false``, so neither depends on the
other), so the difference of their medians is what the value stage adds. Prints per-stage medians (from the
manifests), wall medians, the ratio valued / plain, and the value fit's customers and distinct (x, t_x, T)
tuples. The input is the benchmark's generated log (``bench/inputs.py``; made once under bench/data, reused).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import impls  # bench/ is on sys.path: this script's folder
import inputs

AS_OF = "2011-12-09"
STAGES = ("read_validate", "features", "sweep", "final_model", "value", "write", "total")


def run(cli: list[str], run_id: str, *extra: str) -> tuple[float, dict]:
    """One run of ours: its wall seconds and its manifest."""
    started = time.perf_counter()
    argv = [*cli, "--run-id", run_id, "--set", f"features.as_of={AS_OF}", "--set", "history.enabled=false", *extra]
    done = subprocess.run(argv, capture_output=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"run {run_id} failed:\n{done.stderr.decode()[-3000:]}")
    folder = next(line.split()[-1] for line in done.stdout.decode().splitlines() if line.startswith("published"))
    return wall, json.loads((Path(folder) / "manifest.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=float, default=2e7)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--driver-memory", default=impls.local_driver_memory(impls.physical_memory()))
    args = parser.parse_args()
    data = impls.BENCH / "data"
    name = "large" if args.lines >= 1e7 else "small"  # the names make bench caches its logs under
    found = inputs.generated(name, int(args.lines), planted=4, seed=7, data_dir=data, chunk=20_000)
    walls: dict[str, list[float]] = {"plain": [], "valued": []}
    manifests: dict[str, list[dict]] = {"plain": [], "valued": []}
    with tempfile.TemporaryDirectory(prefix="value-cost-") as tmp:
        cli = impls.command("ours", found.path, Path(tmp) / "out", args.driver_memory, Path(tmp))
        cli = [part for part in cli if part not in ("--run-id", "bench")]
        for _ in range(args.repeats):
            for run_id, extra in (("plain", ("--set", "value.enabled=false")), ("valued", ())):
                wall, manifest = run(cli, run_id, *extra)
                walls[run_id].append(wall)
                manifests[run_id].append(manifest)
    print(f"input: {found.lines:,} lines, {found.customers:,} customers; {args.repeats} runs of each, alternated")
    print("| run | wall s | " + " | ".join(f"{s} s" for s in STAGES) + " |")
    print("| --- | --- |" + " --- |" * len(STAGES))
    for run_id in walls:
        medians = [statistics.median(m["timings_seconds"].get(s, 0.0) for m in manifests[run_id]) for s in STAGES]
        cells = " | ".join(f"{v:.1f}" for v in medians)
        print(f"| {run_id} | {statistics.median(walls[run_id]):.1f} | {cells} |")
    ratio = statistics.median(walls["valued"]) / statistics.median(walls["plain"])
    print(f"wall time valued / plain (medians): {ratio:.3f}")
    value = manifests["valued"][-1]["value"]
    purchases = value.get("purchases") or {}
    print(
        f"value: {value['status']}; {purchases.get('customers')} customers in {purchases.get('tuples')} distinct "
        f"(x, t_x, T) tuples; spend model on {(value.get('spend') or {}).get('customers')} customers"
    )


if __name__ == "__main__":
    main()
