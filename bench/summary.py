"""Summaries of the runs (medians, ratios, growth, the issue's targets) and the Markdown and JSON result files."""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from impls import IMPLS, STAGES

MB = 1024 * 1024
Run = dict[str, Any]


def ok_runs(runs: Iterable[Run], input_name: str, impl: str) -> list[Run]:
    """The successful runs of one implementation on one input."""
    return [r for r in runs if r["input"] == input_name and r["impl"] == impl and r["returncode"] == 0]


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values that are there (None when none are)."""
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(present) if present else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def summarise(runs: Sequence[Run], input_name: str, impl: str) -> dict[str, Any]:
    """Medians and spreads of one implementation on one input."""
    done = ok_runs(runs, input_name, impl)
    tried = [r for r in runs if r["input"] == input_name and r["impl"] == impl]
    walls = [r["wall_seconds"] for r in done]
    ks = [r["chosen_k"] for r in done]
    stages = {s: median(r["stages"].get(s) for r in done) for s in STAGES} if impl.startswith("ours") else {}
    return {
        "runs": len(tried),
        "ok": len(done),
        "median_seconds": median(walls),
        "min_seconds": min(walls) if walls else None,
        "max_seconds": max(walls) if walls else None,
        "median_peak_mb": median(r["peak_rss_bytes"] / MB for r in done),
        "chosen_k": ks,
        "k_varies": len(set(ks)) > 1,
        "customers": sorted({r["customers"] for r in done if r["customers"] is not None}),
        "median_ari": median(r.get("ari") for r in done),
        "median_stage_seconds": stages,
    }


def summaries(runs: Sequence[Run], inputs: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """summarise() for every input and implementation that ran."""
    impls = [i for i in IMPLS if any(r["impl"] == i for r in runs)]
    return {inp["name"]: {impl: summarise(runs, inp["name"], impl) for impl in impls} for inp in inputs}


def ratios(summary: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """Ratios of medians on one input: ours over each reference, time and peak memory."""
    found = {}
    for own in ("ours", "ours-driver"):
        ours = summary.get(own, {})
        for ref in ("pyspark", "sklearn"):
            other = summary.get(ref, {})
            found[f"time {own}/{ref}"] = ratio(ours.get("median_seconds"), other.get("median_seconds"))
            found[f"memory {own}/{ref}"] = ratio(ours.get("median_peak_mb"), other.get("median_peak_mb"))
    return found


def small_and_large(inputs: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The smallest and the largest generated input (by lines), if there are two."""
    generated = sorted((i for i in inputs if i.get("planted")), key=lambda i: i["lines"])
    return (generated[0], generated[-1]) if len(generated) >= 2 else None


def growth(inputs: Sequence[dict[str, Any]], sums: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any] | None:
    """Ours' median time on the largest generated input over the smallest, against their line counts."""
    pair = small_and_large(inputs)
    if pair is None:
        return None
    small, large = pair
    time_small = sums[small["name"]].get("ours", {}).get("median_seconds")
    time_large = sums[large["name"]].get("ours", {}).get("median_seconds")
    return {
        "small": small["name"],
        "large": large["name"],
        "lines_ratio": large["lines"] / small["lines"],
        "time_ratio": ratio(time_large, time_small),
    }


def check(name: str, value: float | None, limit: float | None, passed: bool | None) -> dict[str, Any]:
    """One target: what was measured, against what, and pass, FAIL or n/a."""
    status = "n/a" if passed is None else ("pass" if passed else "FAIL")
    return {"target": name, "value": value, "limit": limit, "status": status}


def at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


TWENTY_MILLION = 20_000_000


def targets(inputs: Sequence[dict[str, Any]], sums: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The issue's targets (issue 23), each pass, FAIL or n/a (not measured).

    The 20M-line targets are judged on the generated input nearest 20M lines; growth is the largest generated
    input over it, against 1.1 times their line ratio (5.5 for five times the lines).
    """
    found = []
    for inp in inputs:
        value = ratios(sums[inp["name"]])["time ours/pyspark"]
        if sums[inp["name"]].get("pyspark"):
            found.append(check(f"{inp['name']}: time ours/pyspark <= 0.25", value, 0.25, at_most(value, 0.25)))
    if any(i["name"] == "online_retail" for i in inputs):
        value = ratios(sums["online_retail"])["time ours/sklearn"]
        found.append(check("online_retail: time ours/sklearn <= 10", value, 10.0, at_most(value, 10.0)))
    generated = [i for i in inputs if i.get("planted")]
    if not generated:
        return found
    base = min(generated, key=lambda i: abs(i["lines"] - TWENTY_MILLION))
    name = base["name"]
    value = ratios(sums[name])["time ours/sklearn"]
    found.append(check(f"{name}: time ours/sklearn <= 1.0", value, 1.0, at_most(value, 1.0)))
    ours_mb = sums[name].get("ours", {}).get("median_peak_mb")
    sk_mb = sums[name].get("sklearn", {}).get("median_peak_mb")
    passed = None if ours_mb is None or sk_mb is None else ours_mb < sk_mb
    found.append(check(f"{name}: peak memory ours < sklearn (MB)", ours_mb, sk_mb, passed))
    own, other = sums[name].get("ours", {}).get("chosen_k"), sums[name].get("sklearn", {}).get("chosen_k")
    same = None if not own or not other else set(own) == set(other) and len(set(own)) == 1
    found.append(check(f"{name}: chosen k ours = sklearn, every rep", None, None, same))
    ari = sums[name].get("ours", {}).get("median_ari")
    passed = None if ari is None else round(ari, 3) == 1.0
    found.append(check(f"{name}: ARI ours = 1.000 (to 3 decimals)", ari, 1.0, passed))
    largest = max(generated, key=lambda i: i["lines"])
    if largest is not base:
        ours = sums[largest["name"]].get("ours", {})
        found.append(
            check(f"{largest['name']}: ours completes", None, None, None if not ours else ours.get("ok", 0) > 0)
        )
        time_base = sums[name].get("ours", {}).get("median_seconds")
        grown, limit = ratio(ours.get("median_seconds"), time_base), 1.1 * largest["lines"] / base["lines"]
        found.append(
            check(
                f"growth {largest['name']}/{name}: time ratio <= 1.1 x lines ratio", grown, limit, at_most(grown, limit)
            )
        )
    return found


# ---------------------------------------------------------------- Markdown


def fmt(value: Any, digits: int = 1) -> str:
    """A table cell: numbers rounded, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def inputs_section(inputs: Sequence[dict[str, Any]]) -> list[str]:
    rows = [
        [
            i["name"],
            fmt(i["lines"]),
            fmt(i.get("customers")),
            fmt(i.get("planted")),
            i.get("parts", 1),
            f"`{i['path']}`",
        ]
        for i in inputs
    ]
    return ["## Inputs", "", *table(["input", "lines", "customers generated", "planted K", "parts", "path"], rows)]


def timing_section(inputs: Sequence[dict[str, Any]], sums: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    lines = ["## Wall time, peak memory, chosen k, ARI", ""]
    headers = ["impl", "ok/runs", "median s", "min s", "max s", "median peak MB", "k per rep", "customers", "ARI"]
    for inp in inputs:
        rows = []
        for impl, s in sums[inp["name"]].items():
            ks = ", ".join(str(k) for k in s["chosen_k"]) + (" (varies!)" if s["k_varies"] else "")
            rows.append(
                [
                    impl,
                    f"{s['ok']}/{s['runs']}",
                    fmt(s["median_seconds"]),
                    fmt(s["min_seconds"]),
                    fmt(s["max_seconds"]),
                    fmt(s["median_peak_mb"], 0),
                    ks or "-",
                    ", ".join(fmt(c) for c in s["customers"]) or "-",
                    fmt(s["median_ari"], 3),
                ]
            )
        lines += [f"### {inp['name']}", "", *table(headers, rows)]
    return lines


def ratio_section(inputs: Sequence[dict[str, Any]], sums: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    heads = ["time ours/pyspark", "time ours/sklearn", "memory ours/pyspark", "memory ours/sklearn"]
    if any("ours-driver" in sums[i["name"]] for i in inputs):
        heads += ["time ours-driver/pyspark", "time ours-driver/sklearn"]
    rows = [[i["name"], *[fmt(ratios(sums[i["name"]])[h], 2) for h in heads]] for i in inputs]
    return ["## Ratios of medians (below 1: ours is faster / smaller)", "", *table(["input", *heads], rows)]


def stage_section(inputs: Sequence[dict[str, Any]], sums: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    rows = []
    for inp in inputs:
        for own in ("ours", "ours-driver"):
            stages = sums[inp["name"]].get(own, {}).get("median_stage_seconds")
            if stages:
                rows.append([f"{inp['name']} ({own})", *[fmt(stages.get(s)) for s in STAGES]])
    if not rows:
        return []
    note = (
        "The manifest is written inside the publish stage, so it holds no publish time; total is the job's "
        "own clock up to then (the wall time above adds Python and JVM start-up and shutdown)."
    )
    return ["## Ours: median seconds per stage (from the manifest)", "", *table(["input", *STAGES], rows), note, ""]


def growth_section(grown: dict[str, Any] | None) -> list[str]:
    if grown is None:
        return []
    rows = [[f"{grown['large']} / {grown['small']}", fmt(grown["lines_ratio"], 2), fmt(grown["time_ratio"], 2)]]
    return ["## Growth of ours' time", "", *table(["inputs", "lines ratio", "median time ratio"], rows)]


def target_section(found: Sequence[dict[str, Any]]) -> list[str]:
    digits = {t["target"]: 0 if "(MB)" in t["target"] else 3 for t in found}
    rows = [
        [t["target"], fmt(t["value"], digits[t["target"]]), fmt(t["limit"], digits[t["target"]]), f"**{t['status']}**"]
        for t in found
    ]
    return ["## Targets", "", *table(["target", "measured", "limit", "status"], rows)]


def failure_section(runs: Sequence[Run]) -> list[str]:
    failed = [r for r in runs if r["returncode"] != 0]
    if not failed:
        return []
    lines = ["## Failed runs", ""]
    for r in failed:
        why = (
            f"over the memory limit at {r['peak_rss_mb']:,.0f} MB after {r['wall_seconds']:.0f} s"
            if r.get("over_memory")
            else "timed out"
            if r.get("timed_out")
            else f"exit code {r['returncode']}"
        )
        lines += [
            f"### {r['input']} / {r['impl']} / rep {r['rep']}: {why}",
            "",
            "```",
            r.get("stderr_tail", ""),
            "```",
            "",
        ]
    return lines


def machine_section(meta: dict[str, Any], runs: Sequence[Run]) -> list[str]:
    m, g, opts = meta["machine"], meta["git"], meta["options"]
    lines = [
        "## Machine and code",
        "",
        f"- {m['cpu_count']} CPUs, {m['memory_total_gb']:.1f} GB memory, {m['platform']}",
        f"- Python {m['python']}, PySpark {m['pyspark']}, scikit-learn {m['sklearn']}, pandas {m['pandas']}",
        f"- Java: {m['java']}",
    ]
    if opts.get("from_runs"):
        lines.append(f"- summarised from kept runs: `{opts['from_runs']}`; each input and implementation ran:")
        for (name, impl), where in sorted(run_sources(runs).items()):
            lines.append(f"  - {name} / {impl}: {where}")
    else:
        lines.append(f"- commit `{g.get('head')}`{' (uncommitted changes)' if g.get('dirty') else ''}")
        lines.append(f"- {opts['reps']} reps per implementation, interleaved")
    lines += [f"- Spark driver memory {opts['driver_memory']}", ""]
    return lines


def run_sources(runs: Sequence[Run]) -> dict[tuple[str, str], str]:
    """For each (input, implementation): the runs file and commit its runs came from."""
    found: dict[tuple[str, str], set[str]] = {}
    for run in runs:
        commit = run.get("commit") or {}
        code = (
            f"commit `{commit['head'][:12]}`{' + changes' if commit.get('dirty') else ''}"
            if commit
            else "commit not recorded"
        )
        found.setdefault((run["input"], run["impl"]), set()).add(f"{run.get('runs_file', '?')}, {code}")
    return {pair: "; ".join(sorted(texts)) for pair, texts in found.items()}


def markdown(meta: dict[str, Any], inputs: Sequence[dict[str, Any]], runs: Sequence[Run]) -> str:
    """The human-readable result file."""
    sums = summaries(runs, inputs)
    parts = [f"# Benchmark {meta['started']}", ""]
    parts += target_section(targets(inputs, sums))
    parts += inputs_section(inputs) + timing_section(inputs, sums) + ratio_section(inputs, sums)
    parts += stage_section(inputs, sums) + growth_section(growth(inputs, sums))
    parts += failure_section(runs) + machine_section(meta, runs)
    return "\n".join(parts)


def result_paths(results_dir: Path, day: dt.date) -> tuple[Path, Path]:
    """``<day>.md`` and ``<day>.json``, or ``<day>-2``, ``-3``, ... when that day already has results."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stem, n = day.isoformat(), 1
    while (results_dir / f"{stem}.md").exists() or (results_dir / f"{stem}.json").exists():
        n += 1
        stem = f"{day.isoformat()}-{n}"
    return results_dir / f"{stem}.md", results_dir / f"{stem}.json"


def write_results(
    results_dir: Path, meta: dict[str, Any], inputs: Sequence[dict[str, Any]], runs: Sequence[Run]
) -> tuple[Path, Path]:
    """Write the Markdown and the raw JSON; return their paths."""
    md_path, json_path = result_paths(results_dir, dt.date.today())
    sums = summaries(runs, inputs)
    raw = {
        **meta,
        "inputs": list(inputs),
        "runs": list(runs),
        "summary": sums,
        "ratios": {i["name"]: ratios(sums[i["name"]]) for i in inputs},
        "growth": growth(inputs, sums),
        "targets": targets(inputs, sums),
    }
    json_path.write_text(json.dumps(raw, indent=2, default=str) + "\n")
    md_path.write_text(markdown(meta, inputs, runs))
    return md_path, json_path
