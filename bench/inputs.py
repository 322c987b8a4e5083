"""The benchmark's inputs: the real Online Retail log, and generated logs with planted segments (cached)."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from segmentation.demo.generate import generate

log = logging.getLogger("bench")

ONLINE_RETAIL = "online_retail"
ID_OFFSET = 10_000_000
PROBE_CUSTOMERS = 3_000
MIN_PARTS = 4
DONE = ".done"
INFO = "info.json"


@dataclass(frozen=True)
class BenchInput:
    """One input: where its log is, how big it is, and (generated logs) the planted truth."""

    name: str
    path: str
    lines: int
    customers: int | None = None
    planted: int | None = None
    truth: str | None = None
    parts: int = 1
    seed: int | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def parse_sizes(text: str) -> dict[str, int]:
    """``small=1e6,large=2e7`` as {name: target line count}."""
    sizes = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--sizes: expected name=lines, got {item!r}")
        sizes[name.strip()] = int(float(value))
    return sizes


def count_lines(path: str) -> int:
    """Data lines in a CSV file (gzip or not), the header not counted."""
    frame = pd.read_csv(path, usecols=[0], dtype=str)
    return len(frame)


def online_retail(path: str) -> BenchInput | None:
    """The real log, or None (with a warning) when the file is not there."""
    if not os.path.isfile(path):
        log.warning("online_retail: %s not found; skipped", path)
        return None
    return BenchInput(ONLINE_RETAIL, os.path.abspath(path), lines=count_lines(path))


def lines_per_customer(planted: int, seed: int) -> float:
    """Lines per customer in a probe chunk, to size a generated log."""
    frame, _ = generate(PROBE_CUSTOMERS, seed, dirty=True, planted=planted)
    return len(frame) / PROBE_CUSTOMERS


def chunk_sizes(customers: int, chunk_customers: int) -> list[int]:
    """Customers per chunk: at most ``chunk_customers``, and at least ``MIN_PARTS`` parts to read in parallel."""
    size = max(1, min(chunk_customers, math.ceil(customers / MIN_PARTS)))
    full, rest = divmod(customers, size)
    return [size] * full + ([rest] if rest else [])


def offset_ids(ids: pd.Series, offset: int) -> pd.Series:
    """Numeric customer ids plus ``offset``; blank ids stay blank."""
    if offset == 0:
        return ids
    numeric = pd.to_numeric(ids, errors="coerce")
    shifted = (numeric + offset).astype("Int64").astype(str)
    return shifted.where(numeric.notna(), ids)


def write_chunk(folder: Path, index: int, customers: int, seed: int, planted: int) -> tuple[int, pd.DataFrame]:
    """Generate and write one gzip part file; return its line count and its truth."""
    frame, truth = generate(customers, seed + index, dirty=True, planted=planted)
    frame["CustomerID"] = offset_ids(frame["CustomerID"], index * ID_OFFSET)
    truth["CustomerID"] = offset_ids(truth["CustomerID"], index * ID_OFFSET)
    part = folder / f"part-{index:05d}.csv.gz"
    frame.to_csv(part, index=False, lineterminator="\n", compression={"method": "gzip", "mtime": 0})
    return len(frame), truth


def generated(name: str, target_lines: int, planted: int, seed: int, data_dir: Path, chunk: int) -> BenchInput:
    """A generated log of about ``target_lines`` lines, made once and reused from ``data_dir``."""
    home = data_dir / f"{name}-{target_lines}-K{planted}-s{seed}"
    if (home / DONE).exists():
        info = json.loads((home / INFO).read_text())
        log.info("%s: reusing %s (%d lines)", name, home, info["lines"])
        return BenchInput(**info)
    shutil.rmtree(home, ignore_errors=True)
    folder = home / "log"
    folder.mkdir(parents=True)
    per_customer = lines_per_customer(planted, seed)
    customers = max(MIN_PARTS, round(target_lines / per_customer))
    sizes = chunk_sizes(customers, chunk)
    workers = max(1, min(os.cpu_count() or 1, len(sizes)))
    log.info(
        "%s: generating %d customers (%.1f lines each) in %d parts, %d at a time",
        name,
        customers,
        per_customer,
        len(sizes),
        workers,
    )
    lines, truths = 0, []
    # each part has its own seed (seed + index), so parts made side by side are the parts made one by one
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        count = len(sizes)
        parts = pool.map(write_chunk, [folder] * count, range(count), sizes, [seed] * count, [planted] * count)
        for index, (written, truth) in enumerate(parts):
            lines += written
            truths.append(truth)
            log.info("%s: part %d/%d written (%d lines)", name, index + 1, len(sizes), written)
    pd.concat(truths, ignore_index=True).to_csv(home / "truth.csv", index=False)
    found = BenchInput(name, str(folder), lines, customers, planted, str(home / "truth.csv"), len(sizes), seed)
    (home / INFO).write_text(json.dumps(found.as_dict(), indent=2))
    (home / DONE).write_text("")
    return found
