"""The run's report: ``report.html`` (self-contained: charts embedded as PNG), ``report.md`` and the charts as
files under ``report/``.

Its inputs are small (``inputs.ReportInputs``): the manifest, the profiles and the report sample. The job renders
it from what Spark returned to it, never from files this process reads, so it works over Spark Connect too;
``segmentation report`` renders it again from a published run. ``render`` returns the documents; the publisher
writes them.
"""

from segmentation.publish import ReportFiles
from segmentation.report.figures import RFM, charts
from segmentation.report.inputs import SAMPLE_TABLE, ReportInputs, load, report_inputs
from segmentation.report.text import html_page, markdown, segment_rows
from segmentation.report.value import value_charts

__all__ = ["RFM", "SAMPLE_TABLE", "ReportFiles", "ReportInputs", "load", "render", "report_inputs"]


def render(run: ReportInputs) -> ReportFiles:
    """The report of ``run``: its HTML page, its Markdown and its charts."""
    rows = segment_rows(run)
    images = {**charts(run), **value_charts(run)}
    return ReportFiles(html=html_page(run, rows, images), markdown=markdown(run, rows), charts=images)
