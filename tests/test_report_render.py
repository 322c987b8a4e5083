"""The report renderer on a hand-made published run (``tests/fixtures/report_run``), with no Spark session: its
charts are real pictures, its HTML and Markdown hold the published numbers, and runs it cannot describe are
refused."""

from __future__ import annotations

import dataclasses
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from segmentation import report
from segmentation.errors import InputError
from segmentation.publish import files, storage
from segmentation.publish.manifest import parse as parse_manifest
from segmentation.report import figures, inputs, text

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "report_run"
CHARTS = {"sweep", "sizes", "profiles_heatmap", "customers_2d", "rfm"}


class Page(HTMLParser):
    """The segment table's cells, the value section's table, the images and the whole text of a report page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.value_rows: list[list[str]] = []
        self._table: str | None = None
        self.images: list[str] = []
        self.text = ""
        self._in_cell = False

    @property
    def _rows(self) -> list[list[str]]:
        return self.value_rows if self._table == "value-segments" else self.rows

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id")
        elif tag == "tr":
            self._rows.append([])
        elif tag == "td":
            self._in_cell = True
            self._rows[-1].append("")
        elif tag == "img":
            self.images.append(dict(attrs)["src"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_cell = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text += data
        if self._in_cell:
            self._rows[-1][-1] += data


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    """A copy of the fixture run, so rendering never writes into the repository."""
    run = tmp_path / "runs" / "as_of_date=2011-12-09" / "run_id=fixture"
    folder = run / "attempt=0123456789ab"
    shutil.copytree(FIXTURE, folder)
    (run / "_commits").mkdir()
    (run / "_commits" / "00000001.json").write_text('{"attempt_id": "0123456789ab"}')
    return folder


def load(folder: Path) -> inputs.ReportInputs:
    """The report's inputs of a published run, as ``segmentation report`` reads them (no Spark)."""
    store = storage.for_root(None, str(folder))
    return report.load(store, files.resolve_run(store))


def render(folder: Path) -> dict[str, str]:
    store = storage.for_root(None, str(folder))
    committed = files.resolve_run(store)
    return files.write_report(store, committed, report.render(report.load(store, committed)))


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def profiles_of(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder / "profiles").sort_values("segment").reset_index(drop=True)


def parse(folder: Path) -> Page:
    page = Page()
    page.feed((folder / "report.html").read_text(encoding="utf-8"))
    return page


def test_the_fixture_is_consistent() -> None:
    """The fixture's numbers agree with each other (the other tests lean on them)."""
    manifest = manifest_of(FIXTURE)
    profiles = profiles_of(FIXTURE)
    sample = pd.read_parquet(FIXTURE / "report_sample")
    assert profiles["customers"].sum() == manifest["counts"]["customers"] == len(sample) == 60
    assert profiles["customer_share"].sum() == pytest.approx(1.0)
    assert profiles["revenue_share"].sum() == pytest.approx(1.0)
    assert list(profiles["revenue"]) == list(sample.groupby("segment")["monetary"].sum())
    assert list(profiles["customers"]) == list(sample.groupby("segment").size())
    counts = manifest["counts"]
    assert counts["lines_clean"] + counts["lines_quarantined"] + counts["lines_out_of_window"] == counts["lines_in"]
    assert sum(counts["quarantined_by_reason"].values()) == counts["lines_quarantined"]
    labels = {int(label): segment for label, segment in manifest["cluster_to_segment"].items()}
    assert dict(zip(profiles["cluster_label"], profiles["segment"], strict=True)) == labels


def test_render_writes_the_pages_and_every_chart(run_folder: Path) -> None:
    written = render(run_folder)
    assert set(written) == CHARTS | {"html", "markdown"}
    assert written["html"] == str(run_folder / "report.html")
    assert written["markdown"] == str(run_folder / "report.md")
    charts = {p.stem: p for p in (run_folder / "report").glob("*.png")}
    assert set(charts) == CHARTS
    for name, path in charts.items():
        assert written[name] == str(path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = matplotlib.image.imread(str(path))
        assert pixels.shape[:2] == (450, 800), name  # CHART_SIZE at DPI
        assert float(np.var(pixels[..., :3])) > 0.001, name  # not blank


def test_html_holds_the_profiles_and_the_choice_of_k(run_folder: Path) -> None:
    render(run_folder)
    manifest = manifest_of(run_folder)
    profiles = profiles_of(run_folder)
    page = parse(run_folder)
    table = [row for row in page.rows if row]
    assert [int(r[0]) for r in table] == [1, 2, 3] == list(profiles["segment"])
    assert [r[1] for r in table] == ["Champions", "Loyal", "Lost"] == list(profiles["segment_name"])
    assert [int(r[2]) for r in table] == [12, 18, 30] == list(profiles["customers"])
    assert [r[3] for r in table] == ["20.0%", "30.0%", "50.0%"]
    assert [r[3] for r in table] == [f"{v:.1%}" for v in profiles["customer_share"]]
    assert [r[4] for r in table] == [f"{v:.1%}" for v in profiles["revenue_share"]] == ["57.9%", "29.1%", "13.0%"]
    assert table[0][5] == "recency_days 12; frequency 9; monetary 450"
    assert "Chosen k = 3." in page.text
    assert manifest["choice_reason"] in page.text  # escaped in the page (it holds ">="), intact as text
    html = (run_folder / "report.html").read_text(encoding="utf-8")
    assert "&gt;= 2% of customers" in html
    assert len(page.images) == len(CHARTS)
    assert all(src.startswith("data:image/png;base64,") for src in page.images)  # self-contained
    assert "http://" not in html and "https://" not in html


def test_centroid_table_maps_cluster_labels_to_segments(run_folder: Path) -> None:
    table = figures.centroid_table(load(run_folder))
    # manifest centroids by cluster label 0, 1, 2; cluster_to_segment {0: 2, 1: 3, 2: 1}
    expected = pd.DataFrame(
        [[-1.2, 1.5, 1.6], [-0.3, 0.6, 0.2], [1.2, -0.8, -0.7]],
        index=["1 Champions", "2 Loyal", "3 Lost"],
        columns=["recency_days", "frequency", "monetary"],
    )
    pd.testing.assert_frame_equal(table, expected, check_exact=True)


def test_a_run_published_before_its_manifest_named_the_model_features(run_folder: Path) -> None:
    manifest = manifest_of(run_folder)
    del manifest["model_features"]  # the features are then read from the run's configuration
    manifest["config"] = {
        **manifest["config"],
        "input": {"kind": "transactions"},
        "features": {"model_features": ["recency_days", "frequency", "monetary"]},
    }
    (run_folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    run = load(run_folder)
    assert run.model_features == ["recency_days", "frequency", "monetary"]
    assert list(figures.centroid_table(run).columns) == ["recency_days", "frequency", "monetary"]
    assert set(render(run_folder)) >= {"html", "markdown", "profiles_heatmap"}


def test_an_unreadable_manifest_is_the_input_s_problem(run_folder: Path) -> None:
    (run_folder / "manifest.json").write_text("{", encoding="utf-8")
    with pytest.raises(InputError, match=r"cannot read manifest\.json \(JSONDecodeError\); is it a published run"):
        render(run_folder)


def test_segment_sentence(run_folder: Path) -> None:
    run = load(run_folder)
    champions = run.profiles.iloc[0]
    # 12 of 60 customers; revenue 5460 of 5460 + 2745 + 1230 = 9435, 57.9%; lower-middle medians 12 and 9
    expected = "Champions: 20% of customers, 58% of revenue; medians: recency days 12, frequency 9."
    assert text.segment_sentence(champions, ["recency_days", "frequency"]) == expected
    lost = run.profiles.iloc[2]
    expected_lost = "Lost: 50% of customers, 13% of revenue; medians: monetary 40."
    assert text.segment_sentence(lost, ["monetary"]) == expected_lost
    # a customer table has no revenue: the sentence leaves it out
    no_revenue = champions.drop(["revenue", "revenue_share"])
    assert text.segment_sentence(no_revenue, ["frequency"]) == "Champions: 20% of customers; medians: frequency 9."


def test_markdown_holds_the_table_and_the_quality_lines(run_folder: Path) -> None:
    run = load(run_folder)
    lines = report.markdown(run, report.segment_rows(run)).splitlines()
    assert lines[0] == "# Segmentation report: 2011-12-09, run fixture"
    assert lines[2].startswith("**Chosen k = 3.** k=3: best silhouette (0.610)")
    assert "| 1 | Champions | 12 | 20.0% | 57.9% |" in lines
    assert "| 3 | Lost | 30 | 50.0% | 13.0% |" in lines
    # 60 of 1000 lines quarantined; config quality.max_quarantine_share 0.5
    assert "Lines in: 1000; clean: 940; quarantined: 60 (6.0%; the run fails above 50%)." in lines
    assert [line for line in lines if line.startswith("- `")] == [
        "- `duplicate_line`: 15",
        "- `missing_customer_id`: 45",
    ]
    assert "Customers: 60." in lines


def test_markdown_counts_the_lines_out_of_window_apart(run_folder: Path) -> None:
    run = load(run_folder)
    manifest = run.manifest.to_json()
    manifest["counts"].update(lines_in=1300, lines_out_of_window=300)  # 300 more lines, dated outside the window
    manifest["config"]["features"]["window_days"] = 90
    lines = report.markdown(
        dataclasses.replace(run, manifest=parse_manifest(manifest, "t")), report.segment_rows(run)
    ).splitlines()
    assert (
        "Lines in: 1300; clean: 940; quarantined: 60 (6.0% of the lines in the window; the run fails above 50%)."
        in (lines)
    )
    assert "Out of window: 300 (dated outside the 90 days ending 2011-12-09; not quarantined)." in lines
    del manifest["counts"]["lines_out_of_window"]  # a run published before windows existed
    manifest["counts"]["lines_in"] = 1000
    lines = report.markdown(
        dataclasses.replace(run, manifest=parse_manifest(manifest, "t")), report.segment_rows(run)
    ).splitlines()
    assert "Lines in: 1000; clean: 940; quarantined: 60 (6.0%; the run fails above 50%)." in lines
    assert not [line for line in lines if line.startswith("Out of window")]


def test_markdown_file_matches_markdown(run_folder: Path) -> None:
    render(run_folder)
    run = load(run_folder)
    expected = report.markdown(run, report.segment_rows(run))
    assert (run_folder / "report.md").read_text(encoding="utf-8") == expected


def test_a_scoring_run_is_refused_naming_the_model_run(run_folder: Path) -> None:
    manifest = manifest_of(run_folder)
    model_run = "/data/out/runs/as_of_date=2011-11-30/run_id=main"
    manifest.update(kind="scoring", model={"run_folder": model_run, "as_of_date": "2011-11-30", "run_id": "main"})
    (run_folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(InputError) as raised:
        render(run_folder)
    assert "segmentation score" in str(raised.value)
    assert model_run in str(raised.value)
    assert not (run_folder / "report.html").exists() and not (run_folder / "report").exists()


def test_an_attempt_that_was_not_committed_is_refused(run_folder: Path) -> None:
    shutil.rmtree(run_folder.parent / "_commits")
    with pytest.raises(InputError, match="this attempt is not the committed run of its date and run id"):
        render(run_folder)
    with pytest.raises(InputError, match="no committed attempt, so this run is incomplete or was never published"):
        render(run_folder.parent)
    assert not (run_folder / "report.html").exists()


def test_an_empty_sample_leaves_out_the_customer_charts(run_folder: Path) -> None:
    part = run_folder / "report_sample" / "part-0.parquet"
    pq.write_table(pq.read_table(part).slice(0, 0), part)
    written = render(run_folder)
    assert {p.stem for p in (run_folder / "report").glob("*.png")} == CHARTS - {"customers_2d", "rfm"}
    assert set(written) == CHARTS - {"customers_2d", "rfm"} | {"html", "markdown"}
    assert len(parse(run_folder).images) == 3


def test_no_sample_table_leaves_out_the_customer_charts(run_folder: Path) -> None:
    shutil.rmtree(run_folder / "report_sample")
    run = load(run_folder)
    assert run.sample is None
    assert set(report.charts(run)) == {"sweep", "sizes", "profiles_heatmap"}
