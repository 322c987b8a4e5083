"""Compare two published runs: every output table's rows, the manifest's numbers and the report's text.

    python bench/compare_runs.py RUN_FOLDER_A RUN_FOLDER_B

For a change that must not change what the job computes (a refactoring, a speed-up): run the job before and
after on the same input and config, then compare the two run folders. Tables are read with pyarrow (no Spark)
and compared as sorted rows, exactly; the manifests are compared without what differs between any two runs
(attempt id, creation time, stage timings, the paths in the config) and without the keys only one of them has,
which are listed. Exits 0 when nothing differs, 1 otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

VOLATILE = {"attempt_id", "created_utc", "timings_seconds"}


def table_rows(folder: Path) -> list[tuple]:
    """A table's rows (partition columns included), sorted, every value as its repr."""
    table = pq.read_table(folder)
    columns = sorted(table.column_names)
    rows = zip(*(table.column(c).to_pylist() for c in columns), strict=True)
    return sorted(tuple(repr(v) for v in row) for row in rows)


def parquet_folders(run: Path) -> dict[str, Path]:
    """The run's tables, and the model's Parquet data folders (``model/stages/<i>_<Stage>_<uid>/data``, named
    without the uid, which differs between any two fits)."""
    found = {p.name: p for p in run.iterdir() if p.is_dir() and p.name != "model" and any(p.rglob("*.parquet"))}
    for data in run.glob("model/stages/*/data"):
        index, stage = data.parent.name.split("_")[:2]
        found[f"model stage {index} {stage}"] = data
    return found


def comparable(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest without what differs between any two runs of the same job."""
    kept = {k: v for k, v in manifest.items() if k not in VOLATILE}
    config = json.loads(json.dumps(kept.get("config", {})))
    for section, key in (("input", "path"), ("output", "path")):
        config.get(section, {}).pop(key, None)
    kept["config"] = config
    kept.get("input", {}).pop("path", None)
    return kept


def differences(a: Path, b: Path) -> list[str]:
    """What differs between run folders ``a`` and ``b``, one line each."""
    found = []
    tables, other = parquet_folders(a), parquet_folders(b)
    if set(tables) != set(other):
        found.append(f"tables: {sorted(tables)} against {sorted(other)}")
    for name in sorted(set(tables) & set(other)):
        rows_a, rows_b = table_rows(tables[name]), table_rows(other[name])
        if rows_a != rows_b:
            changed = len(set(rows_a) ^ set(rows_b))
            found.append(f"table {name}: {len(rows_a)} rows against {len(rows_b)}, {changed} rows differ")
    left = comparable(json.loads((a / "manifest.json").read_text()))
    right = comparable(json.loads((b / "manifest.json").read_text()))
    only = sorted(set(left) ^ set(right))
    if only:
        print(f"manifest keys in one run only (not compared): {only}")
    for key in sorted(set(left) & set(right)):
        if left[key] != right[key]:
            found.append(f"manifest {key}: {json.dumps(left[key])[:300]} against {json.dumps(right[key])[:300]}")
    if (a / "report.md").exists() and (a / "report.md").read_text() != (b / "report.md").read_text():
        found.append("report.md differs")
    return found


if __name__ == "__main__":
    first, second = (Path(p) for p in sys.argv[1:3])
    problems = differences(first, second)
    for line in problems:
        print(line)
    print("no differences" if not problems else f"{len(problems)} differences")
    sys.exit(1 if problems else 0)
