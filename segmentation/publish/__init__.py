"""Publishing a run and reading published runs: one ``Publisher`` interface (files under an output root, or
catalog tables), the typed manifest, the tables every run publishes, the privacy of their ids, and ``storage``,
the only code that touches the output root's files.

The names below are what the rest of the job uses; the modules behind them are this package's own.
"""

from segmentation.publish.catalog_names import table_name as catalog_table_name
from segmentation.publish.files import committed_runs, promote, read_manifest, resolve_run, run_folder, table_path
from segmentation.publish.manifest import SCHEMA_VERSION, SCORING, SEGMENTATION, Manifest
from segmentation.publish.privacy import load_key, protect
from segmentation.publish.publisher import MODEL, Publisher, ReportFiles, StoredRun, TableOutput
from segmentation.publish.publishers import publisher_for, read_run_table
from segmentation.publish.storage import Storage, for_root

__all__ = [
    "MODEL",
    "SCHEMA_VERSION",
    "SCORING",
    "SEGMENTATION",
    "Manifest",
    "Publisher",
    "ReportFiles",
    "Storage",
    "StoredRun",
    "TableOutput",
    "catalog_table_name",
    "committed_runs",
    "for_root",
    "load_key",
    "promote",
    "protect",
    "publisher_for",
    "read_manifest",
    "read_run_table",
    "resolve_run",
    "run_folder",
    "table_path",
]
