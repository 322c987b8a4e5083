"""The three implementations: the command that runs each, and how to read what it produced."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.metrics import adjusted_rand_score

from segmentation import for_root, resolve_run
from segmentation.runtime.session import local_driver_memory, physical_memory

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
BASE_CONFIG = REPO / "conf" / "base.yaml"
IMPLS = ("ours", "ours-driver", "pyspark", "sklearn")
# ours-driver: the same command with the sweep in the driver (model.sweep_engine=driver); run when --impls names it
DEFAULT_IMPLS = ("ours", "pyspark", "sklearn")
STAGES = ("read_validate", "features", "sweep", "final_model", "profiles", "write", "report", "publish", "total")


@dataclass(frozen=True)
class Outcome:
    """What a finished run reported: chosen k, customers, stage seconds, and its segments (for the ARI)."""

    chosen_k: int | None
    customers: int | None
    stages: dict[str, float]
    details: dict[str, Any]
    segments: pd.DataFrame | None


def ours_overlay(work: Path, driver_memory: str) -> Path:
    """A config that only sets the driver memory (otherwise the plain command's local session).

    ``--set spark.conf.spark.driver.memory=...`` cannot do it: ``--set`` splits the key at every dot, so the
    Spark key would become nested mappings under ``spark.conf.spark``.
    """
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"ours-{driver_memory}.yaml"
    path.write_text(f"base: {BASE_CONFIG}\nspark:\n  conf:\n    spark.driver.memory: {driver_memory}\n")
    return path


def command(impl: str, input_path: str, output: Path, driver_memory: str, work: Path) -> list[str]:
    """The command line of one run (run from the repository root).

    Ours is the README's first command for one's own data, ``segmentation run --input ... --output ...``
    without ``--config``: a local session with the local defaults, whose driver memory is ``local_driver_memory``
    (4g on a machine with 8 GB or more). Another ``driver_memory`` adds a config that sets it.
    """
    python = sys.executable
    if impl in ("ours", "ours-driver"):
        cli = str(Path(python).parent / "segmentation")
        config = (
            []
            if driver_memory == local_driver_memory(physical_memory())
            else ["--config", str(ours_overlay(work, driver_memory))]
        )
        engine = ["--set", "model.sweep_engine=driver"] if impl == "ours-driver" else []
        return [cli, "run", *config, *engine, "--input", input_path, "--output", str(output), "--run-id", "bench"]
    if impl == "pyspark":
        script = str(BENCH / "reference_pyspark.py")
        return [python, script, "--input", input_path, "--output", str(output), "--driver-memory", driver_memory]
    if impl == "sklearn":
        return [python, str(BENCH / "reference_sklearn.py"), "--input", input_path, "--output", str(output)]
    raise ValueError(f"unknown implementation {impl!r}; expected one of {', '.join(IMPLS)}")


def read_segments(folder: Path | str) -> pd.DataFrame:
    """customer_id (text) and segment (int) from a Parquet folder (hive-partitioned by segment or not)."""
    frame = pd.read_parquet(folder, columns=["customer_id", "segment"])
    return pd.DataFrame({"customer_id": frame["customer_id"].astype(str), "segment": frame["segment"].astype(int)})


def ours_outcome(output: Path, stdout: str) -> Outcome:
    """Follow ``<output>/latest`` to the run's committed attempt folder; read its manifest and its segments table."""
    folder = Path(resolve_run(for_root(None, str(output))))
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    counts = manifest.get("counts", {})
    details = {"counts": counts, "sweep": manifest.get("sweep"), "choice_reason": manifest.get("choice_reason")}
    stages = {k: float(v) for k, v in manifest.get("timings_seconds", {}).items()}
    return Outcome(
        manifest.get("chosen_k"), counts.get("customers"), stages, details, read_segments(folder / "segments")
    )


def reference_outcome(output: Path, stdout: str) -> Outcome:
    """The JSON summary line a reference printed last, and its segments table."""
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise ValueError("no JSON summary line on stdout")
    summary = json.loads(lines[-1])
    stages = {k: float(v) for k, v in summary.get("timings_seconds", {}).items()}
    return Outcome(summary["chosen_k"], summary["customers"], stages, summary, read_segments(output / "segments"))


OUTCOME_READERS: dict[str, Callable[[Path, str], Outcome]] = {
    "ours": ours_outcome,
    "ours-driver": ours_outcome,
    "pyspark": reference_outcome,
    "sklearn": reference_outcome,
}


def read_truth(path: str) -> pd.DataFrame:
    """The planted personas: CustomerID (text), persona."""
    return pd.read_csv(path, dtype=str)


def ari(segments: pd.DataFrame, truth: pd.DataFrame) -> tuple[float, int]:
    """Adjusted Rand index of segments against the planted personas, over customers in both; and how many."""
    joined = segments.merge(truth, left_on="customer_id", right_on="CustomerID", how="inner")
    if joined.empty:
        return float("nan"), 0
    return float(adjusted_rand_score(joined["persona"], joined["segment"])), len(joined)
