"""What segments over time cost: the same input and as-of date run with and without a baseline, alternated.

    .venv/bin/python bench/history_cost.py [--lines 2e7] [--repeats 2] [--driver-memory 12g]

A run of run id ``base`` is published first (the baseline). Then, ``--repeats`` times, in turn: run id
``plain`` with ``history.enabled=false`` and run id ``tracked`` with ``--baseline <date>/base`` (matching in the
baseline model's space, ``previous_segment``, the migration table and its report section). Both do all the
other work alike, so the difference of their medians is what history adds. Prints per-stage medians (from the
manifests), wall medians, and the ratio tracked / plain. The input is the benchmark's generated log
(``bench/inputs.py``; made once under bench/data and reused).
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
HISTORY_STAGES = ("final_model", "history", "write", "report", "total")


def run(cli: list[str], run_id: str, *extra: str) -> tuple[float, dict[str, float]]:
    """One run of ours: its wall seconds and the stage seconds its manifest recorded."""
    started = time.perf_counter()
    done = subprocess.run([*cli, "--run-id", run_id, "--set", f"features.as_of={AS_OF}", *extra], capture_output=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"run {run_id} failed:\n{done.stderr.decode()[-3000:]}")
    folder = next(line.split()[-1] for line in done.stdout.decode().splitlines() if line.startswith("published"))
    return wall, json.loads((Path(folder) / "manifest.json").read_text())["timings_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=float, default=2e7)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--driver-memory", default="12g")
    args = parser.parse_args()
    data = impls.BENCH / "data"
    found = inputs.generated("large", int(args.lines), planted=4, seed=7, data_dir=data, chunk=20_000)
    with tempfile.TemporaryDirectory(prefix="history-cost-") as tmp:
        cli = impls.command("ours", found.path, Path(tmp) / "out", args.driver_memory, Path(tmp))
        cli = [part for part in cli if part not in ("--run-id", "bench")]
        run(cli, "base", "--set", "history.enabled=false")
        walls: dict[str, list[float]] = {"plain": [], "tracked": []}
        stages: dict[str, list[dict[str, float]]] = {"plain": [], "tracked": []}
        for _ in range(args.repeats):
            for name, extra in (
                ("plain", ("--set", "history.enabled=false")),
                ("tracked", ("--baseline", f"{AS_OF}/base")),
            ):
                wall, timing = run(cli, name, *extra)
                walls[name].append(wall)
                stages[name].append(timing)
    print(f"input: {found.lines:,} lines, {found.customers:,} customers; {args.repeats} runs of each, alternated")
    print("| run | wall s | " + " | ".join(f"{s} s" for s in HISTORY_STAGES) + " |")
    print("| --- | --- |" + " --- |" * len(HISTORY_STAGES))
    for name in walls:
        medians = [statistics.median(t.get(s, 0.0) for t in stages[name]) for s in HISTORY_STAGES]
        cells = " | ".join(f"{m:.1f}" for m in medians)
        print(f"| {name} | {statistics.median(walls[name]):.1f} | {cells} |")
    ratio = statistics.median(walls["tracked"]) / statistics.median(walls["plain"])
    print(f"wall time tracked / plain (medians): {ratio:.3f}")


if __name__ == "__main__":
    main()
