"""A run's baseline: the published run it is compared with, found through the run's publisher (files or catalog
tables alike), checked to be comparable, with its model loaded; and the centroids of both runs in its space.

The baseline is the run ``history.baseline`` names (``DATE`` or ``DATE/RUN_ID``, the CLI's ``--baseline``), else
the latest earlier as-of date of the same run id under the same output that the drift checks did not hold (or
that was promoted since). Once this run's customers are known, the
rule of ``relation`` decides whether it is taken: a baseline of the same input (table name, else path string) is
related; of another input, only when at least ``history.min_shared_customers`` of the smaller run's customers
are in both. A found baseline that is unrelated is ignored (the run starts its ids afresh); a named one is taken
with a warning. With a baseline a run keeps the baseline's segment ids for the same behaviours (``identity``),
adds ``previous_segment`` to its segments table and publishes a ``migration`` table (``migration``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segmentation.config import InputConfig, JobConfig, unavailable_features
from segmentation.errors import InputError
from segmentation.model.pipeline import CLUSTER, SEGMENT, VECTOR
from segmentation.publish import MODEL, SCORING, Manifest, Publisher, table_path

log = logging.getLogger(__name__)

_BASELINE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:/(.+))?$")


@dataclass(frozen=True)
class Baseline:
    """A published run to compare with: where it is, its manifest, the model that defines its segments'
    space, and its features table (``customer_id``, the features, ``segment``)."""

    as_of: dt.date
    run_id: str
    where: str
    manifest: Manifest
    model_path: str
    features: DataFrame
    model: PipelineModel | None = None  # loaded by ``find_baseline``
    used_up_to: int = 0  # the highest segment id any published run of this run id, or the baseline, used


# ---------------------------------------------------------------- finding the baseline


def parse_baseline(text: str, run_id: str) -> tuple[dt.date, str]:
    """``DATE`` or ``DATE/RUN_ID`` (the run id defaults to this run's)."""
    problem = InputError(f"history.baseline: expected YYYY-MM-DD or YYYY-MM-DD/RUN_ID, got {text!r}")
    match = _BASELINE.match(text.strip())
    if match is None:
        raise problem
    try:
        return dt.date.fromisoformat(match.group(1)), match.group(2) or run_id
    except ValueError:
        raise problem from None


def before_reading(publisher: Publisher, cfg: JobConfig) -> Baseline | None:
    """The baseline when it can be found before the input is read: one named, or with ``features.as_of`` set."""
    if cfg.history.baseline is None and cfg.features.as_of is None:
        return None
    return find_baseline(publisher, cfg, as_of=cfg.features.as_of)


def after_reading(publisher: Publisher, cfg: JobConfig, *, found: Baseline | None, as_of: dt.date) -> Baseline | None:
    """The baseline once the as-of date is known: the one found before reading (checked to be earlier than
    this run, now that its date is known), else the latest earlier run; whether it is related to this run's
    input is decided later, on its customers (``relation.judge``)."""
    if cfg.history.baseline is None and cfg.features.as_of is None:
        return find_baseline(publisher, cfg, as_of=as_of)
    if found is not None:
        check_order(cfg, (found.as_of, found.run_id), as_of)
    return found


def check_order(cfg: JobConfig, named: tuple[dt.date, str], as_of: dt.date) -> None:
    """Raise InputError when a named baseline is this run itself or later than it."""
    run_id = cfg.output.run_id
    if named[0] > as_of or named == (as_of, run_id):
        raise InputError(
            f"history.baseline: {cfg.history.baseline!r} is {'this run itself' if named[0] == as_of else 'later'} "
            f"(this run is as-of {as_of.isoformat()}, run id {run_id}); name an earlier published run"
        )


def find_baseline(publisher: Publisher, cfg: JobConfig, *, as_of: dt.date | None) -> Baseline | None:
    """The run to compare with (see the module), checked to be comparable; None when there is none. Whether
    it is related to this run's input is ``relation.judge``'s to decide, once this run's customers are known.

    With ``history.baseline`` it must exist and be committed; without, a run needs ``as_of`` to find the
    latest earlier one. Raises InputError naming the baseline when it is missing, not committed, later than
    this run, or trained on other features or id settings.
    """
    if not cfg.history.enabled:
        return None
    run_id = cfg.output.run_id
    named = parse_baseline(cfg.history.baseline, run_id) if cfg.history.baseline else None
    if named is None and as_of is None:
        return None
    if named is not None and as_of is not None:
        check_order(cfg, named, as_of)
    baseline = _stored_baseline(publisher, named, as_of, run_id)
    if baseline is None:
        log.info("no earlier published run of run id %s: this run has no baseline", run_id)
        return None
    check_comparable(baseline, cfg)
    window = (baseline.manifest.config.get("features") or {}).get("window_days")
    if cfg.input.kind == "transactions" and window != cfg.features.window_days:
        log.warning(
            "the baseline's features.window_days is %s and this run's %s: segments are matched, but their values "
            "measure periods of different lengths",
            window,
            cfg.features.window_days,
        )
    try:
        model = PipelineModel.load(baseline.model_path)
    except Exception as exc:  # a missing or unreadable folder: Spark's errors differ by version and mode
        raise InputError(
            f"history.baseline: cannot load the model of the baseline run (as-of {baseline.as_of.isoformat()}, run "
            f"id {baseline.run_id}) from {baseline.model_path} ({type(exc).__name__})"
        ) from None
    used = max(baseline.manifest.max_segment_id, *(m.max_segment_id for m in publisher.manifests(run_id)), 0)
    log.info("baseline: as-of %s, run id %s", baseline.as_of.isoformat(), baseline.run_id)
    return dataclasses.replace(baseline, model=model, used_up_to=used)


def _stored_baseline(
    publisher: Publisher, named: tuple[dt.date, str] | None, as_of: dt.date | None, run_id: str
) -> Baseline | None:
    """The named run, or the latest committed run of ``run_id`` before ``as_of``; None when there is none."""
    if named is None:
        assert as_of is not None
        earlier = sorted(((d, r) for d, r in publisher.committed_runs(run_id) if d < as_of), reverse=True)
        accepted = (run for run in earlier if not publisher.manifest(*run).held)  # held: not current, not promoted
        named = next(accepted, None)
        if named is None:
            return None
    try:
        stored = publisher.read_run(*named)
    except InputError as exc:
        raise InputError(f"history.baseline: {exc}") from None
    model_path = _model_path(stored.manifest, stored.model_folder)
    return Baseline(stored.as_of, stored.run_id, stored.where, stored.manifest, model_path, stored.features)


def _model_path(manifest: Manifest, own: str | None) -> str:
    """The model whose space a run's segments live in: its own, or for a scoring run the model it used."""
    if manifest.kind == SCORING:
        if manifest.model is None:
            raise InputError("history.baseline: the baseline scoring run names no model")
        return table_path(manifest.model.run_folder, MODEL)
    if own is None:
        raise InputError("history.baseline: the baseline run names no model")
    return own


def model_inputs(settings: Mapping[str, Any]) -> dict[str, Any]:
    """What a run's model was fitted on, from its configuration (as in a manifest's ``config``)."""
    kind = settings["input"]["kind"]
    if kind == "customers":
        c = settings["input"]["customers"]
        columns = ("numeric_columns", "categorical_columns", "log_columns")
        return {"kind": kind, **{name: list(c[name]) for name in columns}}
    f, left_out = settings["features"], unavailable_features(InputConfig.model_validate(settings["input"]))
    used = [name for name in f["model_features"] if name not in left_out]  # as model.feature_spec uses them
    return {"kind": kind, "model_features": used, "log_features": list(f["log_features"])}


def check_comparable(baseline: Baseline, cfg: JobConfig) -> None:
    """Raise InputError unless the baseline's model used this run's features and id settings."""
    name = f"the baseline run (as-of {baseline.as_of.isoformat()}, run id {baseline.run_id}, in {baseline.where})"
    theirs, mine = model_inputs(baseline.manifest.config), model_inputs(cfg.to_dict())
    if theirs != mine:
        differ = ", ".join(k for k in sorted(set(theirs) | set(mine)) if theirs.get(k) != mine.get(k))
        raise InputError(
            f"history.baseline: {name} was trained on other model inputs ({differ}: {theirs} against this run's "
            f"{mine}); segments of different features cannot be matched. Name a comparable baseline, or set "
            "history.enabled=false to start a new line of runs (a new output.run_id keeps both)"
        )
    pseudonymised = bool(baseline.manifest.config.get("privacy", {}).get("pseudonymize_ids"))
    if pseudonymised != cfg.privacy.pseudonymize_ids:
        raise InputError(
            f"privacy.pseudonymize_ids: {name} has {'pseudonymised' if pseudonymised else 'plain'} customer ids "
            "and this run would not, so its customers cannot be followed; use the same privacy settings"
        )


# ---------------------------------------------------------------- measuring and matching


def centroids_in(space: PipelineModel, frame: DataFrame, group: str) -> dict[int, list[float]]:
    """The mean of each ``group``'s customers in the space of ``space`` (a fitted model: every step before its
    KMeans), one aggregation."""
    preprocessing = PipelineModel(stages=space.stages[:-1])
    width = len(space.stages[-1].clusterCenters()[0])  # type: ignore[attr-defined]
    vectors = preprocessing.transform(frame).select(group, vector_to_array(F.col(VECTOR)).alias("_v"))
    means = vectors.groupBy(group).agg(*[F.avg(F.col("_v")[i]).alias(f"_c{i}") for i in range(width)]).collect()
    return {int(r[group]): [float(r[f"_c{i}"]) for i in range(width)] for r in means}


def baseline_centroids(baseline: Baseline, assigned: DataFrame, mapping: Mapping[int, int]) -> tuple[dict, dict]:
    """The centroids of this run's segments (by provisional id, from cluster labels) and of the baseline's
    segments, both in the baseline model's space."""
    space = baseline.model or PipelineModel.load(baseline.model_path)
    by_cluster = centroids_in(space, assigned, CLUSTER)
    current = {mapping[c]: v for c, v in by_cluster.items() if c in mapping}
    return current, centroids_in(space, baseline.features, SEGMENT)
