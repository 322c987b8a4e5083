"""What a nightly incremental run costs against a full one: a history plus one new day of about 1% of its lines.

    .venv/bin/python bench/incremental_cost.py [--lines 2e7] [--share 0.01] [--repeats 3] [--driver-memory 12g]

The history is the benchmark's generated log (``bench/inputs.py``; made once under bench/data, its part files
hard-linked into a folder of this run's own). First, on the history alone: ``run --incremental`` (the weekly
retrain: a model and a run state) and ``score --incremental`` with that model (a score state). Then the new day
(``--share`` of the history's lines, taken from one part file with new invoice numbers and dated the day after
the history's last day) is added to the folder, and ``--repeats`` times, in turn: a full ``score``, an incremental
``score`` (into a copy of the score state's root), a full ``run`` and an incremental ``run`` (into a copy of the
run state's root). Every command runs in a driver process of its own, side by side in this process tree.

Prints wall-time medians, the ratios incremental / full, Spark's input metrics (records and bytes read by the
tasks, from each run's event log) and the state's size against the input's.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import impls  # bench/ is on sys.path: this script's folder
import inputs
import pandas as pd

STATE_TABLES = ("state_days", "state_lines", "state_counts", "state_files")


def overlay(work: Path, driver_memory: str, events: Path) -> Path:
    """A config setting the driver memory and Spark's event log (for the input metrics)."""
    path = work / "incremental-bench.yaml"
    path.write_text(
        f"base: {impls.BASE_CONFIG}\nspark:\n  conf:\n    spark.driver.memory: {driver_memory}\n"
        f"    spark.eventLog.enabled: 'true'\n    spark.eventLog.compress: 'false'\n"
        f"    spark.eventLog.dir: 'file://{events}'\n"
    )
    return path


def new_day(history: Path, target: Path, lines: int) -> int:
    """Write ``target``: ``lines`` lines of the first part file, with new invoice numbers, dated the day after the
    history's last day (the same times of day); how many lines it holds."""
    part = sorted(history.glob("*.csv.gz"))[0]
    frame = pd.read_csv(part, dtype=str, keep_default_na=False)
    stamps = pd.to_datetime(frame["InvoiceDate"], format="%m/%d/%Y %H:%M", errors="coerce")
    day = frame[stamps.notna()].sample(n=min(lines, int(stamps.notna().sum())), random_state=7).copy()
    when = stamps[day.index]
    following = stamps.max().normalize() + pd.Timedelta(days=1)  # the part files share the history's last day
    moved = following + (when - when.dt.normalize())
    day["InvoiceDate"] = (
        moved.dt.month.astype(str)
        + "/"
        + moved.dt.day.astype(str)
        + "/"
        + moved.dt.year.astype(str)
        + " "
        + moved.dt.hour.astype(str)
        + ":"
        + moved.dt.minute.map("{:02d}".format)
    )
    invoices = pd.to_numeric(day["InvoiceNo"].str.lstrip("C"), errors="coerce").fillna(0).astype(int) + 90_000_000
    day["InvoiceNo"] = invoices.astype(str)
    with gzip.open(target, "wt", encoding="utf-8", newline="") as handle:
        day.to_csv(handle, index=False, lineterminator="\n")
    return len(day)


def run(argv: list[str], events: Path) -> tuple[float, dict, dict[str, int]]:
    """One command: its wall seconds, its manifest and the input metrics of its event log."""
    before = set(events.iterdir())
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{' '.join(argv[:2])} failed:\n{done.stderr.decode()[-3000:]}")
    folder = next(line.split()[-1] for line in done.stdout.decode().splitlines() if line.startswith("published"))
    manifest = json.loads((Path(folder) / "manifest.json").read_text())
    logs = sorted(set(events.iterdir()) - before)
    return wall, manifest, input_metrics(logs)


def input_metrics(logs: list[Path]) -> dict[str, int]:
    """Records and bytes read by every task (Spark's input metrics), from event logs."""
    records = read = 0
    files = [f for log in logs for f in (sorted(log.iterdir()) if log.is_dir() else [log])]  # rolling logs: folders
    for log in files:
        if log.name.startswith("appstatus"):
            continue
        with log.open(encoding="utf-8") as handle:
            for line in handle:
                if '"SparkListenerTaskEnd"' not in line:
                    continue
                metrics = (json.loads(line).get("Task Metrics") or {}).get("Input Metrics") or {}
                records += int(metrics.get("Records Read", 0))
                read += int(metrics.get("Bytes Read", 0))
    return {"records_read": records, "bytes_read": read}


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def state_size(root: Path) -> int:
    """The bytes of the state tables of the newest run under an output root."""
    manifests = sorted(root.glob("runs/*/*/attempt=*/manifest.json"), key=lambda p: p.stat().st_mtime)
    folder = manifests[-1].parent
    return sum(size(folder / table) for table in STATE_TABLES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=float, default=2e7)
    parser.add_argument("--share", type=float, default=0.01)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--driver-memory", default="12g")
    args = parser.parse_args()
    found = inputs.generated("large", int(args.lines), planted=4, seed=7, data_dir=impls.BENCH / "data", chunk=20_000)
    cli = str(Path(sys.executable).parent / "segmentation")
    with tempfile.TemporaryDirectory(prefix="incremental-cost-", dir=impls.BENCH / "data") as tmp:
        work, events = Path(tmp), Path(tmp) / "events"
        events.mkdir()
        history = work / "log"
        history.mkdir()
        for part in sorted(Path(found.path).glob("*.csv.gz")):
            os.link(part, history / part.name)  # the same files, in a folder of this run's own
        config = ["--config", str(overlay(work, args.driver_memory, events))]
        model, scores = work / "model", work / "scores"
        print(f"history: {found.lines:,} lines in {found.parts} files ({size(history) / 1e6:.0f} MB)", flush=True)
        wall, _, _ = run(
            [cli, "run", *config, "--input", str(history), "--output", str(model), "--incremental"], events
        )
        print(f"run --incremental on the history (model and run state): {wall:.1f} s", flush=True)
        base_score = [cli, "score", *config, "--model", str(model), "--input", str(history)]
        wall, _, _ = run([*base_score, "--output", str(scores), "--incremental"], events)
        print(f"score --incremental on the history (score state): {wall:.1f} s", flush=True)
        day_lines = new_day(history, history / "day-new.csv.gz", round(found.lines * args.share))
        print(f"new day: {day_lines:,} lines", flush=True)
        walls: dict[str, list[float]] = {}
        metrics: dict[str, list[dict[str, int]]] = {}
        reads: dict[str, int] = {}
        for repeat in range(args.repeats):
            out = work / f"out-{repeat}"
            score_copy, model_copy = out / "scores", out / "model"
            shutil.copytree(scores, score_copy)
            shutil.copytree(model, model_copy)
            commands = {
                "score full": [*base_score, "--output", str(out / "score-full")],
                "score incremental": [*base_score, "--output", str(score_copy), "--incremental"],
                "run full": [cli, "run", *config, "--input", str(history), "--output", str(out / "run-full")],
                "run incremental": [
                    *(cli, "run", *config, "--input", str(history), "--output", str(model_copy), "--incremental"),
                ],
            }
            for name, argv in commands.items():
                wall, manifest, metric = run(argv, events)
                walls.setdefault(name, []).append(wall)
                metrics.setdefault(name, []).append(metric)
                if manifest.get("incremental"):
                    reads[name] = manifest["incremental"]["lines_read"]
                print(f"{repeat + 1}/{args.repeats} {name}: {wall:.1f} s {metric}", flush=True)
            shutil.rmtree(out)
        print()
        print(f"input: {found.lines:,} lines of history + {day_lines:,} new; {args.repeats} of each, in turn")
        print("| command | wall s (median) | records read (median) | bytes read (median) | new lines read |")
        print("| --- | --- | --- | --- | --- |")
        for name, values in walls.items():
            records = statistics.median(m["records_read"] for m in metrics[name])
            read = statistics.median(m["bytes_read"] for m in metrics[name])
            cells = f"{statistics.median(values):.1f} | {records:,.0f} | {read / 1e6:,.0f} MB | {reads.get(name, '-')}"
            print(f"| {name} | {cells} |")
        for job in ("score", "run"):
            ratio = statistics.median(walls[f"{job} incremental"]) / statistics.median(walls[f"{job} full"])
            print(f"{job}: incremental / full wall time (medians): {ratio:.3f}")
        print(
            f"state size: run {state_size(model) / 1e6:.0f} MB, score {state_size(scores) / 1e6:.0f} MB; "
            f"input {size(history) / 1e6:.0f} MB (gzip CSV)"
        )


if __name__ == "__main__":
    main()
