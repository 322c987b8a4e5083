"""Side-by-side benchmark: the project's job ("ours") against a tutorial-style PySpark job and pandas + scikit-learn.

For every input and rep, the implementations run one after the other as subprocesses (interleaved), each
timed (wall clock) and measured (peak resident memory of its whole process tree). Results go to
``bench/results/<date>.md`` and ``.json``. See bench/README.md.

    python bench/run.py --inputs online_retail --reps 1
    python bench/run.py --from-runs bench/work/runs-A.jsonl:pyspark,bench/work/runs-B.jsonl   # pool kept runs
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pyspark
import sklearn
from impls import DEFAULT_IMPLS, IMPLS, OUTCOME_READERS, REPO, ari, command, read_truth
from inputs import ONLINE_RETAIL, BenchInput, generated, online_retail, parse_sizes
from measure import Measured, run_measured
from summary import MB, write_results

log = logging.getLogger("bench")
BENCH = REPO / "bench"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", default=f"{ONLINE_RETAIL},small,large", help="inputs to run, comma-separated")
    parser.add_argument("--sizes", default="small=1e6,large=2e7", help="generated inputs: name=target lines, ...")
    parser.add_argument("--planted", type=int, default=4, help="planted segments in generated inputs")
    parser.add_argument("--seed", type=int, default=7, help="base seed of the generator (chunk i: seed + i)")
    parser.add_argument("--chunk-customers", type=int, default=20_000, help="customers per generated part file")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--impls", default=",".join(DEFAULT_IMPLS), help="implementations to run, comma-separated")
    parser.add_argument("--driver-memory", default="4g", help="Spark driver memory (ours and pyspark)")
    parser.add_argument("--online-retail", default="../shared/data/online_retail.csv.gz", help="relative to the repo")
    parser.add_argument("--data-dir", default="bench/data", help="cache of generated inputs")
    parser.add_argument("--work-dir", default="bench/work", help="run outputs and logs")
    parser.add_argument("--results-dir", default="bench/results")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="seconds per run")
    parser.add_argument(
        "--memory-limit-gb",
        type=float,
        default=round(psutil.virtual_memory().total / 2**30 - 2.5, 1),
        help="stop a run whose process tree holds more resident memory than this (0: no limit); default: the "
        "machine's memory less 2.5 GB for the system, so a run that cannot fit fails as 'over memory'",
    )
    parser.add_argument("--keep-outputs", action="store_true", help="keep each run's output folder")
    parser.add_argument(
        "--from-runs",
        default="",
        help="run nothing: summarise the runs kept in these runs-*.jsonl files (comma-separated), pooled; "
        "FILE:IMPL+IMPL takes only those implementations' runs from FILE",
    )
    return parser.parse_args(argv)


def split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def shown(path: Path) -> str:
    """A path relative to the repository root when inside it (a results folder may be anywhere)."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def from_repo(path: str) -> Path:
    """A path relative to the repository root (absolute paths as they are)."""
    return (REPO / path).resolve()


def prepare_inputs(args: argparse.Namespace) -> list[BenchInput]:
    """The selected inputs, generated (or reused) as needed, in the order asked for."""
    sizes = parse_sizes(args.sizes)
    chosen = []
    for name in split(args.inputs):
        if name == ONLINE_RETAIL:
            found = online_retail(str(from_repo(args.online_retail)))
            if found is not None:
                chosen.append(found)
        elif name in sizes:
            data = from_repo(args.data_dir)
            chosen.append(generated(name, sizes[name], args.planted, args.seed, data, args.chunk_customers))
        else:
            raise SystemExit(
                f"--inputs: unknown input {name!r}; expected {ONLINE_RETAIL} or one of --sizes {list(sizes)}"
            )
    return chosen


def outcome_fields(impl: str, output: Path, measured: Measured, truth: pd.DataFrame | None) -> dict[str, Any]:
    """Chosen k, customers, stage times and ARI read from a finished run (an error text when unreadable)."""
    try:
        outcome = OUTCOME_READERS[impl](output, measured.stdout)
    except Exception as exc:  # a run that exits 0 but left no readable result is a failure too
        return {"returncode": measured.returncode or 1, "error": f"{type(exc).__name__}: {exc}"}
    fields: dict[str, Any] = {
        "chosen_k": outcome.chosen_k,
        "customers": outcome.customers,
        "stages": outcome.stages,
        "details": outcome.details,
        "segmented_customers": len(outcome.segments) if outcome.segments is not None else None,
    }
    if truth is not None and outcome.segments is not None:
        fields["ari"], fields["ari_customers"] = ari(outcome.segments, truth)
    return fields


def kept_runs(sources: list[str], inputs: list[str], impls: list[str]) -> list[dict[str, Any]]:
    """The runs kept in runs-*.jsonl files, pooled: for each (input, implementation), those of every file given.

    A source is ``FILE`` (all its runs) or ``FILE:IMPL+IMPL`` (only those implementations' runs), so the
    references' runs of an earlier file can be pooled with new ones while its runs of ``ours`` are left out.
    """
    kept: list[dict[str, Any]] = []
    for source in sources:
        name, _, only = source.partition(":")
        path, wanted = from_repo(name), set(only.split("+")) if only else None
        for line in path.read_text(encoding="utf-8").splitlines():
            run = json.loads(line) if line.strip() else None
            if run and run["input"] in inputs and run["impl"] in impls and (wanted is None or run["impl"] in wanted):
                run.setdefault("runs_file", path.name)
                kept.append(run)
    return kept


def run_one(
    args: argparse.Namespace, inp: BenchInput, impl: str, rep: int, truth: pd.DataFrame | None, commit: dict[str, Any]
) -> dict[str, Any]:
    """Run one implementation once on one input; everything measured and read, as a JSON-friendly dict."""
    work = from_repo(args.work_dir)
    output = work / "out" / inp.name / f"{impl}-rep{rep}"
    shutil.rmtree(output, ignore_errors=True)
    cmd = command(impl, inp.path, output, args.driver_memory, work)
    log.info("%s rep %d/%d %s: started", inp.name, rep, args.reps, impl)
    limit = int(args.memory_limit_gb * 2**30) if args.memory_limit_gb else None
    measured = run_measured(cmd, str(REPO), work / "logs" / inp.name / f"{impl}-rep{rep}", args.timeout, None, limit)
    run: dict[str, Any] = {
        "input": inp.name,
        "rep": rep,
        "impl": impl,
        "commit": commit,
        "command": cmd,
        "returncode": measured.returncode,
        "timed_out": measured.timed_out,
        "over_memory": measured.over_memory,
        "wall_seconds": round(measured.wall_seconds, 3),
        "peak_rss_bytes": measured.peak_rss_bytes,
        "peak_rss_mb": round(measured.peak_rss_bytes / MB, 1),
        "chosen_k": None,
        "customers": None,
        "stages": {},
    }
    if measured.returncode == 0:
        run.update(outcome_fields(impl, output, measured, truth))
    if run["returncode"] != 0:
        run["stderr_tail"] = measured.stderr_tail
    if not args.keep_outputs:
        shutil.rmtree(output, ignore_errors=True)
    log.info("%s rep %d/%d %s: %s", inp.name, rep, args.reps, impl, describe(run))
    return run


def describe(run: dict[str, Any]) -> str:
    """One progress line's worth of a finished run."""
    ari_text = "-" if run.get("ari") is None else f"{run['ari']:.3f}"
    status = "ok" if run["returncode"] == 0 else f"FAILED ({run.get('error') or 'exit ' + str(run['returncode'])})"
    return (
        f"{run['wall_seconds']:.1f} s, peak {run['peak_rss_bytes'] / MB:.0f} MB, k={run['chosen_k']}, "
        f"customers={run['customers']}, ARI={ari_text}: {status}"
    )


def keep_progress(path: Path, run: dict[str, Any]) -> None:
    """Append a finished run to a JSON-lines file, so a long benchmark cut short keeps what it measured."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(run, default=str) + "\n")


def text_of(cmd: list[str]) -> str:
    """A command's output (stdout, else stderr) as one stripped text; empty when it cannot run."""
    try:
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return (done.stdout or done.stderr).strip()


def metadata(args: argparse.Namespace, started: dt.datetime) -> dict[str, Any]:
    """The machine, the versions, the code's commit, and the options of this benchmark."""
    java = text_of(["java", "-version"]).splitlines()
    return {
        "started": started.isoformat(timespec="seconds"),
        "argv": sys.argv,
        "options": vars(args),
        "machine": {
            "cpu_count": os.cpu_count(),
            "memory_total_gb": psutil.virtual_memory().total / 1024**3,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "pyspark": pyspark.__version__,
            "sklearn": sklearn.__version__,
            "pandas": pd.__version__,
            "java": java[0] if java else "not found",
        },
        "git": git_state(),
    }


def git_state() -> dict[str, Any]:
    """The commit checked out and whether the tree differs from it (recorded with every run, too)."""
    return {"head": text_of(["git", "rev-parse", "HEAD"]), "dirty": bool(text_of(["git", "status", "--porcelain"]))}


def run_all(
    args: argparse.Namespace, inputs: list[BenchInput], impls: list[str], progress: Path
) -> list[dict[str, Any]]:
    """Every implementation ``reps`` times on every input, interleaved; each run kept in ``progress`` at once."""
    commit = git_state()
    runs = []
    for inp in inputs:
        truth = read_truth(inp.truth) if inp.truth else None
        for rep in range(1, args.reps + 1):
            for impl in impls:
                runs.append(run_one(args, inp, impl, rep, truth, commit))
                keep_progress(progress, runs[-1])
    return runs


def main(argv: list[str] | None = None) -> int:
    """Prepare the inputs, run every implementation reps times on each (interleaved), write the results."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bench: %(message)s", datefmt="%H:%M:%S")
    args = parse_args(argv)
    impls = split(args.impls)
    unknown = sorted(set(impls) - set(IMPLS))
    if unknown:
        raise SystemExit(f"--impls: unknown {unknown}; expected some of {', '.join(IMPLS)}")
    started = dt.datetime.now().astimezone()
    inputs = prepare_inputs(args)
    if args.from_runs:
        runs = kept_runs(split(args.from_runs), [i.name for i in inputs], impls)
    else:
        runs = run_all(args, inputs, impls, from_repo(args.work_dir) / f"runs-{started:%Y%m%dT%H%M%S}.jsonl")
    meta = metadata(args, started)
    meta["finished"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    md_path, json_path = write_results(from_repo(args.results_dir), meta, [i.as_dict() for i in inputs], runs)
    log.info("results: %s and %s", shown(md_path), shown(json_path))
    return 0 if all(r["returncode"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
