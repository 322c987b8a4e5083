"""MLflow tracking against a local store in a temporary folder (no server, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from segmentation.config import MlflowConfig
from segmentation.demo import generate
from segmentation.jobs import segment
from segmentation.publish import files, storage
from segmentation.runtime import tracking

from .conftest import job_config

mlflow = pytest.importorskip("mlflow")  # the [mlflow] extra; `make test` installs it


def test_a_run_logged_to_mlflow_equals_its_manifest(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps a folder store behind this switch
    log = tmp_path / "log.csv.gz"
    generate.write(str(log), customers=120, seed=21)
    store = (tmp_path / "mlruns").as_uri()
    settings = ("model.k_min=2", "model.k_max=4", "mlflow.enabled=true", f"mlflow.tracking_uri={store}")
    result = segment.run(spark, job_config(tmp_path, str(log), *settings, "mlflow.experiment=segmentation-test"))
    manifest = files.read_manifest(storage.for_root(None, result.run_folder), result.run_folder).to_json()

    client = mlflow.tracking.MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("segmentation-test")
    (run,) = client.search_runs([experiment.experiment_id])
    for metric in ("wssse", "silhouette", "calinski_harabasz", "davies_bouldin", "stability"):
        history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, metric)}
        assert history == pytest.approx({row["k"]: row[metric] for row in manifest["sweep"]}), metric
    assert run.data.metrics["chosen_k"] == manifest["chosen_k"] == result.choice.k
    assert run.data.metrics["lines_in"] == manifest["counts"]["lines_in"]
    assert run.data.params["model.k_max"] == "4" and run.data.params["mlflow.enabled"] == "True"
    assert run.data.tags["segmentation.choice_reason"] == manifest["choice_reason"]
    assert run.data.tags["segmentation.run_folder"] == result.run_folder
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model", "manifest.json", "choice_reason.txt"} <= artifacts
    model_files = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"model/metadata", "model/stages"} <= model_files  # the Spark PipelineModel as saved


def test_tracking_off_needs_nothing_and_flatten_names_keys() -> None:
    assert tracking.log_run(MlflowConfig(), "/nowhere", {}, artifacts={}) is None
    assert tracking.flatten({"model": {"k": None, "seeds": 3}, "a": [1, 2]}) == {
        "model.k": "None",
        "model.seeds": "3",
        "a": "[1, 2]",
    }
