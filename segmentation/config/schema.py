"""The configuration's schema: one frozen pydantic model per section (input, features, model, output, ...) and
``JobConfig``, the whole validated configuration of one run. Every field's default is stated in ``conf/base.yaml``."""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator
from pydantic.functional_validators import AfterValidator, BeforeValidator

from segmentation.config.fields import (
    Flag,
    Frozen,
    IsoDate,
    Number,
    Settings,
    Text,
    Texts,
    Whole,
    known_zone,
    limit,
    zone_text,
)
from segmentation.config.known import EPOCH_FORMATS
from segmentation.config.rules import RuleError, rule_problems

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
TABLE_NAME = r"^(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)(?:\.(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)){0,2}$"
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"


class CsvOptions(Frozen):
    """How CSV input is parsed; every column is read as text and typed during validation."""

    delimiter: Text = limit(",", "one character", max_length=1)
    quote: Text = '"'
    escape: Text = '"'
    encoding: Text = "UTF-8"
    multiline: Flag = False


class NumberOptions(Frozen):
    """How numbers are written in text columns (CSV, JSON lines): ``1,25`` with ``decimal_separator: ","``;
    ``1.234,5`` with ``thousands_separator: "."`` too. Typed (Parquet, table) columns are read as they are."""

    decimal_separator: Literal[".", ","] = "."
    thousands_separator: Literal[",", ".", " ", "\u00a0", "\u202f", "'", "_"] | None = None  # also no-break spaces


class ColumnMapping(Frozen):
    """Source column name for each canonical transaction column (Online Retail names by default).

    A line's money is ``unit_price`` times ``quantity``, or ``amount``: the line's total (then set
    ``unit_price`` to null; ``quantity`` is optional). ``invoice_id``, ``product_id``, ``country`` and, with an
    amount, ``quantity`` may be null: features that need a missing column are left out (``unavailable_features``).
    """

    customer_id: Text | None = "CustomerID"
    invoice_id: Text | None = "InvoiceNo"
    invoice_ts: Text | None = "InvoiceDate"
    quantity: Text | None = "Quantity"
    unit_price: Text | None = "UnitPrice"
    amount: Text | None = None
    product_id: Text | None = "StockCode"
    country: Text | None = "Country"


class CustomerTableOptions(Frozen):
    """Columns of a ready customer table (``input.kind: customers``)."""

    id_column: Text = "CustomerID"
    numeric_columns: Texts = ()
    categorical_columns: Texts = ()
    log_columns: Texts = ()


class InputConfig(Frozen):
    """Where the input is (files under ``path``, or a catalog ``table``) and how to read it."""

    kind: Literal["transactions", "customers"] = "transactions"
    path: Text | None = None
    table: str | None = limit(
        None,
        "a table or view name: name, schema.name or catalog.schema.name (parts in `backticks` if needed)",
        pattern=TABLE_NAME,
    )
    where: Text | None = None
    format: Literal["auto", "csv", "parquet", "json"] = "auto"
    timestamp_formats: Texts = limit(
        ("M/d/yyyy H:mm", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd"),
        "at least one timestamp pattern",
        min_length=1,
    )
    integer_timestamp_unit: Literal["s", "ms", "us", "ns"] = "ns"
    time_zone: Annotated[Text, BeforeValidator(zone_text), AfterValidator(known_zone)] = "UTC"
    order_key: Literal["invoice", "timestamp", "line"] | None = None
    exact_copies: Literal["quarantine", "keep"] = "quarantine"
    csv: CsvOptions = CsvOptions()
    numbers: NumberOptions = NumberOptions()
    columns: ColumnMapping = ColumnMapping()
    customers: CustomerTableOptions = CustomerTableOptions()

    @property
    def source(self) -> str:
        """The input as messages name it: its path, or its table name."""
        return self.table if self.table is not None else self.path or ""

    @property
    def orders_by(self) -> str:
        """What makes an order: ``invoice`` (the invoice id), ``timestamp`` (a customer's lines at one timestamp)
        or ``line`` (each line): ``order_key``, or by default the invoice id when one is mapped."""
        if self.order_key is not None:
            return self.order_key
        return "invoice" if self.columns.invoice_id is not None else "timestamp"

    @property
    def epoch_unit(self) -> str | None:
        """The unit of epoch numbers written as text, from an ``epoch_seconds`` or ``epoch_millis`` format."""
        return next((EPOCH_FORMATS[f] for f in self.timestamp_formats if f in EPOCH_FORMATS), None)


class QualityConfig(Frozen):
    """Validation rules."""

    max_quarantine_share: Number = limit(0.5, "a share from 0 to 1", ge=0, le=1)


class FeaturesConfig(Frozen):
    """Per-customer features of a transaction log and which of them enter the model.

    ``window_days`` W: the features look at the W days ending with the as-of date (null: all history up to it);
    lines dated outside that window are counted as out of window, never quarantined. A customer table ignores it.
    """

    as_of: IsoDate | None = None
    window_days: Whole | None = limit(None, "a number of days of at least 1, or null for all history", ge=1)
    model_features: Texts = ("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days")
    log_features: Texts = (
        *("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days"),
        *("avg_items_per_order", "distinct_products", "mean_days_between_orders"),
    )


class ModelConfig(Frozen):
    """The KMeans sweep and final model."""

    k_min: Whole = limit(2, "at least 2 (one segment is no segmentation)", ge=2)
    k_max: Whole = 10
    k: Whole | None = limit(None, "a fixed k of at least 2, or null to sweep", ge=2)
    seed: Whole = 42
    max_iter: Whole = limit(30, "at least 1", ge=1)
    tol: Number = limit(1e-2, "a non-negative number", ge=0)
    init_mode: Literal["k-means||", "random"] = "k-means||"
    init_steps: Whole = limit(5, "at least 1", ge=1)
    order_by: Text | None = None
    customers_per_partition: Whole = limit(50_000, "at least 1", ge=1)
    seeds: Whole = limit(3, "at least 1 seed per k", ge=1)
    sweep_parallelism: Whole = limit(4, "at least 1 fit at a time", ge=1)
    sweep_max_customers: Whole = limit(50_000, "at least 2", ge=2)
    outlier_fence_iqr: Number = limit(3.0, "a number of interquartile ranges from 0 (off) to 100", ge=0, le=100)
    outlier_max_share: Number = limit(0.05, "a share from 0 to below 0.5", ge=0, lt=0.5)


class SelectionConfig(Frozen):
    """How k is chosen from the sweep (see segmentation/model/selection.py)."""

    rule: Literal["combined", "silhouette", "elbow", "calinski_harabasz", "davies_bouldin"] = "combined"
    min_segment_share: Number = limit(0.02, "a share from 0 to 1", ge=0, lt=1)
    min_stability: Number = limit(0.6, "an adjusted Rand index from -1 to 1", ge=-1, le=1)


class CatalogOutputConfig(Frozen):
    """Catalog tables as the output (Unity Catalog, a Hive metastore, AWS Glue): set ``database`` to use them.

    The tables are written through the session's catalog, partitioned by as-of date and run id; ``catalog``
    makes three-part Unity Catalog names; ``format`` unset means the platform's default table format
    (``spark.sql.sources.default``: Delta on Databricks, Parquet elsewhere).
    """

    database: str | None = limit(None, "a database (schema) name: letters, digits and '_'", pattern=IDENTIFIER)
    # ``catalog`` in files and manifests; ``catalog_name`` in code, so ``cfg.output.catalog.catalog`` is not written
    catalog_name: str | None = Field(
        None,
        validation_alias="catalog",
        serialization_alias="catalog",
        pattern=IDENTIFIER,
        json_schema_extra={"expect": "a catalog name: letters, digits and '_'"},
    )
    format: str | None = limit(None, "a table format such as delta or parquet", pattern=r"^[A-Za-z][A-Za-z0-9_.]*$")

    @property
    def enabled(self) -> bool:
        return self.database is not None


class OutputConfig(Frozen):
    """Where a run is published: files under ``path`` (tables, model, manifest, report), or catalog tables
    (``catalog``) with the model under ``path``."""

    path: Text | None = None
    catalog: CatalogOutputConfig = CatalogOutputConfig()
    run_id: Text = limit(
        "main",
        "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        pattern=RUN_ID_PATTERN,
    )


class PrivacyConfig(Frozen):
    """Pseudonymising customer ids in every output with HMAC-SHA256; the key never comes from a config file."""

    pseudonymize_ids: Flag = False
    key_env: Text = "SEGMENTATION_ID_KEY"
    secret_scope: Text | None = None
    secret_key: Text | None = None


class ReportConfig(Frozen):
    """The report's choices: two features for the customer picture (empty: the first two principal components)."""

    scatter_features: Texts = ()


class HistoryConfig(Frozen):
    """Segments over time: each run compared with a baseline run (see segmentation/history/)."""

    enabled: Flag = True
    baseline: Text | None = limit(
        None,
        "YYYY-MM-DD or YYYY-MM-DD/RUN_ID of a published run (null: the latest earlier as-of date of this run id)",
        pattern=r"^\d{4}-\d{2}-\d{2}(/[A-Za-z0-9][A-Za-z0-9._-]{0,63})?$",
    )
    match_distance: Number = limit(1.0, "a distance above 0 (standard deviations of the baseline)", gt=0)


class ValueConfig(Frozen):
    """What each customer is worth next: buy-till-you-die models fitted on the run's clean lines (see
    segmentation/value/); a transaction log only (a customer table has no purchase history)."""

    enabled: Flag = True
    model: Literal["bgnbd", "pareto_nbd"] = "bgnbd"
    time_unit: Literal["day", "week"] = "day"
    horizon_days: Whole = limit(365, "a horizon of at least 1 day", ge=1)
    discount_rate: Number = limit(0.10, "an annual rate from 0 to below 1", ge=0, lt=1)
    penalty: Number = limit(0.0, "an L2 penalty of 0 (none) or more", ge=0)
    holdout: Flag = False
    holdout_days: Whole | None = limit(None, "a number of days of at least 1, or null for every later line", ge=1)


class MlflowConfig(Frozen):
    """Logging each run to MLflow (optional: ``pip install segmentation[mlflow]``); off by default."""

    enabled: Flag = False
    tracking_uri: Text | None = None
    experiment: Text | None = None


class SparkConfig(Frozen):
    """Session settings used only when this job creates the session (never on a session it is handed), and
    ``persist``: false runs the job without ``cache``/``persist`` (Databricks serverless does not allow them);
    frames read several times are written to the run's work area and read back instead, with the same results."""

    persist: Flag = True
    master: Text | None = None
    app_name: Text = "segmentation"
    conf: Settings = Field(default_factory=lambda: types.MappingProxyType({}))


class JobConfig(Frozen):
    """The whole validated configuration of one run."""

    input: InputConfig = InputConfig()
    quality: QualityConfig = QualityConfig()
    features: FeaturesConfig = FeaturesConfig()
    model: ModelConfig = ModelConfig()
    selection: SelectionConfig = SelectionConfig()
    output: OutputConfig = OutputConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    report: ReportConfig = ReportConfig()
    history: HistoryConfig = HistoryConfig()
    value: ValueConfig = ValueConfig()
    mlflow: MlflowConfig = MlflowConfig()
    spark: SparkConfig = Field(default_factory=SparkConfig)  # a mappingproxy cannot be deep-copied

    @model_validator(mode="after")
    def _cross_field_rules(self) -> JobConfig:
        if problem := next(rule_problems(self), None):
            raise RuleError(*problem)
        return self

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-friendly copy (for the manifest): dates as ISO text, tuples as lists."""
        return self.model_dump(mode="json", by_alias=True)
