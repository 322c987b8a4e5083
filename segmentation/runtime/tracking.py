"""Logging a published run to MLflow (optional: ``pip install segmentation[mlflow]``, ``mlflow.enabled: true``).

One MLflow run per published run: the configuration as params, every k's sweep metrics as metrics stepped by
k, the chosen k and the counts, the reason for k as a tag and a text artefact, the manifest, the saved Spark
``PipelineModel`` (the run's ``model/`` folder, loadable with ``PipelineModel.load``) and the report's charts
when the run has a ``report/`` folder. Everything is read from the published run, so MLflow sees exactly what
readers see. The job never needs a tracking server: by default MLflow writes to a local folder.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from segmentation.config import MlflowConfig
from segmentation.errors import ConfigError
from segmentation.publish import Manifest

log = logging.getLogger(__name__)

SWEEP_METRICS = (
    "wssse",
    "silhouette",
    "calinski_harabasz",
    "davies_bouldin",
    "stability",
    "smallest_cluster_share",
    "non_empty_clusters",
)
MAX_PARAM_LENGTH = 500
PARAMS_PER_CALL = 100


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> {"model.k_min": "2", ...}, values as text cut to MLflow's parameter length."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:MAX_PARAM_LENGTH]
    return flat


def sweep_metrics(manifest: Manifest) -> Iterator[tuple[int, dict[str, float]]]:
    """(k, {metric: value}) for every k of the sweep; metrics without a value (None) are left out."""
    for entry in manifest.sweep or []:
        row = entry.model_dump()
        yield entry.k, {m: float(row[m]) for m in SWEEP_METRICS if row.get(m) is not None}


def run_metrics(manifest: Manifest) -> dict[str, float]:
    """The run's single numbers: chosen k, customers, lines in, quarantined and out of window, and the elbow if any."""
    counts = manifest.counts
    metrics = {
        "chosen_k": float(manifest.chosen_k or 0),
        "customers": float(counts.customers),
        "lines_in": float(counts.lines_in),
        "lines_quarantined": float(counts.lines_quarantined),
        "lines_out_of_window": float(counts.lines_out_of_window),
    }
    if manifest.elbow_k is not None:
        metrics["elbow_k"] = float(manifest.elbow_k)
    return metrics


def check_available(settings: MlflowConfig) -> None:
    """Fail before any work when tracking is on but MLflow is not installed."""
    if settings.enabled:
        _mlflow()


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise ConfigError(
            "mlflow.enabled: true, but MLflow is not installed; pip install 'segmentation[mlflow]' "
            "(or set mlflow.enabled: false)"
        ) from None
    return mlflow


def log_run(settings: MlflowConfig, run_folder: str, manifest: Manifest, *, artifacts: Mapping[str, str]) -> str | None:
    """Log the published run in ``run_folder`` to MLflow, with ``artifacts`` (name -> a local folder: the
    model, the report's charts); the MLflow run id, or None when tracking is off."""
    if not settings.enabled:
        return None
    mlflow = _mlflow()
    if settings.tracking_uri:
        mlflow.set_tracking_uri(settings.tracking_uri)
    if settings.experiment:
        mlflow.set_experiment(settings.experiment)
    name = f"segmentation {manifest.as_of_date} {manifest.run_id}"
    with mlflow.start_run(run_name=name) as active:
        params = flatten(manifest.config)
        items = sorted(params.items())
        for start in range(0, len(items), PARAMS_PER_CALL):
            mlflow.log_params(dict(items[start : start + PARAMS_PER_CALL]))
        for k, metrics in sweep_metrics(manifest):
            mlflow.log_metrics(metrics, step=k)
        mlflow.log_metrics(run_metrics(manifest))
        mlflow.set_tags(
            {
                "segmentation.run_folder": run_folder,
                "segmentation.as_of_date": manifest.as_of_date,
                "segmentation.run_id": manifest.run_id,
                "segmentation.choice_reason": (manifest.choice_reason or "")[:5000],
            }
        )
        mlflow.log_text((manifest.choice_reason or "") + "\n", "choice_reason.txt")
        mlflow.log_dict(manifest.to_json(), "manifest.json")
        for name, folder in artifacts.items():
            mlflow.log_artifacts(folder, name)
        log.info("logged to MLflow run %s", active.info.run_id)
        return str(active.info.run_id)
