"""What a report is made of (``ReportInputs``): the run's manifest, its profiles (k rows) and its report sample (a
seeded sample of at most 20,000 customers in two dimensions, no ids); from the job, or read back from a published
run (``load``)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from segmentation.errors import InputError
from segmentation.publish import SCORING, Manifest, Storage, read_manifest

SAMPLE_TABLE = "report_sample"


@dataclass(frozen=True)
class ReportInputs:
    """What a report is made of."""

    manifest: Manifest
    profiles: pd.DataFrame
    sample: pd.DataFrame | None

    @property
    def names(self) -> dict[int, str]:
        return {int(r.segment): str(r.segment_name) for r in self.profiles.itertuples()}

    @property
    def model_features(self) -> list[str]:
        """The numeric features the model uses, in the order of the centroids' first dimensions."""
        return list(self.manifest.model_features or [])


def load(store: Storage, folder: str) -> ReportInputs:
    """A published run's report inputs, read through ``store`` (``folder``: a committed attempt folder).

    A scoring run has no report of its own (no sweep, no model of its own): it is refused, naming the run
    whose report describes its segments.
    """
    manifest = read_manifest(store, folder)
    if manifest.kind == SCORING:
        trained = manifest.model.run_folder if manifest.model else "the run whose model it used"
        raise InputError(
            f"{folder}: this run was written by 'segmentation score', which assigns customers to the segments of "
            f"the run in {trained}; that run's report describes the segments"
        )
    try:
        profiles = store.read_table(None, store.join(folder, "profiles"))
    except Exception as exc:  # a missing folder, an unreadable file: pandas, pyarrow and Spark raise differently
        raise InputError(f"{folder}: cannot read its profiles table ({type(exc).__name__})") from None
    sample_path = store.join(folder, SAMPLE_TABLE)
    sample = store.read_table(None, sample_path) if store.exists(sample_path) else None
    return report_inputs(manifest, profiles, sample)


def report_inputs(manifest: Manifest, profiles: pd.DataFrame, sample: pd.DataFrame | None) -> ReportInputs:
    """The report's inputs, profiles in segment order."""
    return ReportInputs(manifest, profiles.sort_values("segment").reset_index(drop=True), sample)
