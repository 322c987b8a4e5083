"""The report: it renders for a transaction log and a customer table, its charts are real pictures, its HTML
holds every segment and the chosen k, its numbers equal the Parquet outputs, and it re-renders without Spark."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from segmentation import cli
from segmentation.demo import generate
from segmentation.jobs import score, segment
from segmentation.publish.manifest import Manifest
from segmentation.report import text

from .conftest import job_config
from .manifests import manifest, raw_manifest
from .test_report_render import Page

pytestmark = pytest.mark.slow


def check_charts(folder: Path, expected: set[str]) -> None:
    charts = {p.stem: p for p in (folder / "report").glob("*.png")}
    assert set(charts) == expected
    for path in charts.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = matplotlib.image.imread(str(path))
        assert pixels.shape[:2] == (450, 800)  # CHART_SIZE at DPI
        assert float(np.var(pixels[..., :3])) > 0.001  # not blank


def check_page(folder: Path) -> Page:
    manifest = json.loads((folder / "manifest.json").read_text())
    page = Page()
    page.feed((folder / "report.html").read_text())
    profiles = pd.read_parquet(folder / "profiles").sort_values("segment")
    segments = pd.read_parquet(folder / "segments")
    table = [row for row in page.rows if row]
    assert [int(r[0]) for r in table] == list(profiles["segment"])
    assert [r[1] for r in table] == list(profiles["segment_name"])
    assert [int(r[2]) for r in table] == list(segments.groupby("segment", observed=True).size().sort_index())
    assert [r[3] for r in table] == [f"{v:.1%}" for v in profiles["customer_share"]]
    html = (folder / "report.html").read_text()
    assert f"Chosen k = {manifest['chosen_k']}." in html
    assert all(src.startswith("data:image/png;base64,") for src in page.images)  # self-contained
    assert "http://" not in html and "https://" not in html
    md = (folder / "report.md").read_text()
    assert f"**Chosen k = {manifest['chosen_k']}.**" in md and f"Lines in: {manifest['counts']['lines_in']}" in md
    return page


def test_report_of_a_transaction_log_run(spark: SparkSession, tmp_path: Path) -> None:
    log = tmp_path / "log.csv.gz"
    generate.write(str(log), customers=200, seed=41)
    result = segment.run(spark, job_config(tmp_path, str(log), "model.k_min=2", "model.k_max=4"))
    folder = Path(result.run_folder)
    check_charts(folder, {"sweep", "sizes", "profiles_heatmap", "customers_2d", "rfm", "value_shares", "p_alive"})
    page = check_page(folder)
    assert len(page.images) == 7
    profiles = pd.read_parquet(folder / "profiles").sort_values("segment")
    value_rows = [r for r in page.value_rows if r]  # the value section's table, without its header
    assert [int(r[0]) for r in value_rows] == list(profiles["segment"])
    assert [r[5] for r in value_rows] == [f"{v:.1%}" for v in profiles["expected_value_share"]]
    sample = pd.read_parquet(folder / "report_sample")
    assert len(sample) == 200 and "customer_id" not in sample.columns
    html = (folder / "report.html").read_text()
    assert "of revenue" in html and "principal component 1" in json.dumps(
        json.loads((folder / "manifest.json").read_text())["report"]
    )

    # re-rendered from the published files alone, with no Spark session needed
    before = (folder / "report.md").read_text()
    (folder / "report.html").unlink()
    assert cli.main(["report", str(tmp_path / "out")]) == 0
    assert (folder / "report.html").exists() and (folder / "report.md").read_text() == before


def test_report_of_a_customer_table_run(spark: SparkSession, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    centres = [(25, 20), (25, 80), (90, 15), (90, 85)]
    rows = [
        {
            "CustomerID": i + 1,
            "Annual Income (k$)": centres[i % 4][0] + rng.normal(0, 4),
            "Spending Score (1-100)": centres[i % 4][1] + rng.normal(0, 4),
        }
        for i in range(160)
    ]
    table = tmp_path / "mall" / "customers.parquet"
    table.parent.mkdir()
    pd.DataFrame(rows).to_parquet(table)
    settings = [
        "input.kind=customers",
        "input.customers.numeric_columns=[Annual Income (k$), Spending Score (1-100)]",
        "features.as_of=2024-01-31",
        "model.k_max=6",
        "report.scatter_features=[Annual Income (k$), Spending Score (1-100)]",
    ]
    result = segment.run(spark, job_config(tmp_path, str(table), *settings))
    folder = Path(result.run_folder)
    check_charts(folder, {"sweep", "sizes", "profiles_heatmap", "customers_2d"})  # no RFM for a customer table
    check_page(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["report"]["axes"] == ["Annual Income (k$)", "Spending Score (1-100)"]
    assert manifest["value"] == {**manifest["value"], "status": "skipped"}
    skipped = "Customer value: skipped (a customer table has no purchase history to model)."
    assert skipped in (folder / "report.md").read_text() and skipped in (folder / "report.html").read_text()
    assert not (folder / "customer_value").exists()


def test_a_run_that_was_never_committed_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "runs" / "as_of_date=2011-12-09" / "run_id=main"
    (folder / "attempt=0123456789ab").mkdir(parents=True)
    (folder / "attempt=0123456789ab" / "manifest.json").write_text("{}")
    assert cli.main(["report", str(folder)]) == 1
    error = capsys.readouterr().err
    assert f"error: {folder}: no committed attempt, so this run is incomplete or was never published" in error
    assert [p.name for p in folder.rglob("*")] == ["attempt=0123456789ab", "manifest.json"]  # nothing was rendered


def test_a_scoring_run_gets_a_clear_refusal_not_a_crash(
    spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    log = tmp_path / "log.csv.gz"
    generate.write(str(log), customers=80, seed=43)
    trained = segment.run(spark, job_config(tmp_path, str(log), "model.k=3"))
    scored = score.score(spark, job_config(tmp_path, str(log), output=str(tmp_path / "scored")), trained.run_folder)
    assert cli.main(["report", scored.run_folder]) == 1
    error = capsys.readouterr().err
    assert "this run was written by 'segmentation score'" in error and trained.run_folder in error
    assert not (Path(scored.run_folder) / "report.html").exists()


def test_notes_under_the_chosen_k_say_what_the_silhouette_is_and_which_k_got_every_seed() -> None:
    rows = [{"k": k, "seeds": 3 if k <= 4 else 1} for k in range(2, 7)]
    notes = text.choice_notes(with_sweep(rows), {})
    assert notes[0] == text.SILHOUETTE_NOTE
    assert notes[1] == (
        "Seeds: every k was fitted with one seed first; the other 2 went to the k still in contention "
        "(k=2, 3, 4); k=5, 6 show their one fit, without stability."
    )
    assert text.choice_notes(with_sweep([{"k": 2, "seeds": 3}, {"k": 3, "seeds": 3}]), {}) == [text.SILHOUETTE_NOTE]


def with_sweep(rows: list[dict]) -> Manifest:
    """The fixture manifest with a sweep of these k and seeds, and no repeat splits."""
    first = raw_manifest()["sweep"][0]
    return manifest(sweep=[{**first, **row} for row in rows], repeat_splits=[])
