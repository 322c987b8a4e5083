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
    """Character between fields."""
    quote: Text = '"'
    """Character around a field that holds the delimiter, a quote or a line break."""
    escape: Text = '"'
    """Character that escapes a quote inside a quoted field."""
    encoding: Text = "UTF-8"
    """Character encoding of the files, such as UTF-8 or ISO-8859-1; also used for JSON lines."""
    multiline: Flag = False
    """Allow line breaks inside quoted fields; each file is then read whole by one task."""


class NumberOptions(Frozen):
    """How numbers are written in text columns (CSV, JSON lines): ``1,25`` with ``decimal_separator: ","``;
    ``1.234,5`` with ``thousands_separator: "."`` too. Typed (Parquet, table) columns are read as they are."""

    decimal_separator: Literal[".", ","] = "."
    """Character before the decimals: ``.`` or ``,``."""
    thousands_separator: Literal[",", ".", " ", "\u00a0", "\u202f", "'", "_"] | None = None  # also no-break spaces
    """Character between groups of three digits, other than the decimal separator: ``,``, ``.``, ``'``, ``_``, a space,
    a no-break space (U+00A0) or a narrow no-break space (U+202F); null: none."""


class ColumnMapping(Frozen):
    """Source column name for each canonical transaction column (Online Retail names by default).

    A line's money is ``unit_price`` times ``quantity``, or ``amount``. Features that need a column mapped to null
    are left out (``unavailable_features``).
    """

    customer_id: Text | None = "CustomerID"
    """Source column of the customer id; required for a transaction log."""
    invoice_id: Text | None = "InvoiceNo"
    """Source column of the invoice (order) id; null: no invoice column."""
    invoice_ts: Text | None = "InvoiceDate"
    """Source column of the line's date or timestamp; required for a transaction log."""
    quantity: Text | None = "Quantity"
    """Source column of the quantity bought; null is allowed only with ``amount``."""
    unit_price: Text | None = "UnitPrice"
    """Source column of the price of one unit; set it to null when ``amount`` is mapped."""
    amount: Text | None = None
    """Source column of the line's total money, used instead of ``unit_price`` times ``quantity``; null: none."""
    product_id: Text | None = "StockCode"
    """Source column of the product id (stock code); null: no product column."""
    country: Text | None = "Country"
    """Source column of the customer's country; null: no country column."""


class CustomerTableOptions(Frozen):
    """Columns of a ready customer table (``input.kind: customers``)."""

    id_column: Text = "CustomerID"
    """Column holding the customer id."""
    numeric_columns: Texts = ()
    """Numeric feature columns that enter the model."""
    categorical_columns: Texts = ()
    """Categorical columns, each category becoming a 0/1 indicator (not standardised)."""
    log_columns: Texts = ()
    """Columns among ``numeric_columns`` that get a signed ``log1p`` before standardising."""


class LimitsConfig(Frozen):
    """Values no shop has: a line beyond a limit is quarantined as ``implausible_value``."""

    max_quantity: Number | None = limit(1_000_000, "a positive number, or null for no limit", gt=0)
    """Largest quantity of one line, either sign (returns are negative); null: no limit."""
    max_unit_price: Number | None = limit(1_000_000, "a positive number, or null for no limit", gt=0)
    """Largest unit price of one line; null: no limit."""
    max_amount: Number | None = limit(100_000_000, "a positive number, or null for no limit", gt=0)
    """Largest money value of one line (``amount``, else quantity times unit price), either sign; null: no limit."""
    extreme_factor: Number = limit(1000.0, "a factor above 1", gt=1)
    """A clean line whose quantity, unit price or value is more than this many times the log's median is counted
    and named in the report (not quarantined)."""


class InputConfig(Frozen):
    """Where the input is (files under ``path``, or a catalog ``table``) and how to read it."""

    kind: Literal["transactions", "customers"] = "transactions"
    """``transactions`` (a log of purchase lines) or ``customers`` (a ready table with one row per customer)."""
    path: Text | None = None
    """File, folder or glob to read (set this or ``table``); a plain path or ``file:`` URI must exist on the driver's
    (or Spark Connect client's) disk."""
    table: str | None = limit(
        None,
        "a table or view name: name, schema.name or catalog.schema.name (parts in `backticks` if needed)",
        pattern=TABLE_NAME,
    )
    """Catalog table or view to read instead of files: ``name``, ``schema.name`` or ``catalog.schema.name``."""
    where: Text | None = None
    """SQL predicate over the input's columns that selects the lines to read (no ``;``); null: every line."""
    format: Literal["auto", "csv", "parquet", "json"] = "auto"
    """File format: ``auto`` (from the file names), ``csv``, ``parquet`` or ``json`` (JSON lines)."""
    timestamp_formats: Texts = limit(
        ("M/d/yyyy H:mm", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd"),
        "at least one timestamp pattern",
        min_length=1,
    )
    """Spark datetime patterns for timestamps written as text, tried in order; ``epoch_seconds`` or ``epoch_millis``
    (one of them) for epoch numbers written as text."""
    integer_timestamp_unit: Literal["s", "ms", "us", "ns"] = "ns"
    """Unit of integer (epoch) timestamp columns: ``s``, ``ms``, ``us`` or ``ns``; an epoch format in
    ``timestamp_formats`` wins."""
    time_zone: Annotated[Text, BeforeValidator(zone_text), AfterValidator(known_zone)] = "UTC"
    """Time zone of the log's local times, in which instants are also shown: a region id such as ``Europe/Amsterdam``,
    ``UTC``, or an offset such as ``'+01:00'`` (in quotes)."""
    order_key: Literal["invoice", "timestamp", "line"] | None = None
    """What one order is: ``invoice``, ``timestamp`` (a customer's lines at one timestamp) or ``line``; null:
    ``invoice`` when an invoice column is mapped, else ``timestamp``."""
    exact_copies: Literal["quarantine", "keep"] = "quarantine"
    """Exact copies of an earlier line: ``quarantine`` (reason ``duplicate_line``) or ``keep`` (for logs where two equal
    purchases on one day are real)."""
    incremental: bool = False
    """Keep a per-customer, per-day state with each run and read only the input not absorbed yet: new files, or a
    table's rows past ``incremental_column`` (``--incremental``; see the docs' nightly runs)."""
    incremental_column: str | None = None
    """With ``table`` and ``incremental``: a column whose values only grow (an ingest date, a batch id); a run reads
    the rows past the highest value the state has read."""
    rebuild_state: bool = False
    """With ``incremental``: read the whole input and write a new state, not the one kept (``--rebuild``)."""
    csv: CsvOptions = CsvOptions()
    """CSV parsing options."""
    numbers: NumberOptions = NumberOptions()
    """Reading numbers written as text."""
    columns: ColumnMapping = ColumnMapping()
    """Column mapping of a transaction log."""
    customers: CustomerTableOptions = CustomerTableOptions()
    """Column roles of a customer table (``kind: customers``)."""
    limits: LimitsConfig = LimitsConfig()
    """Implausible values of a transaction log."""

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
    """Largest share (0 to 1) of input lines that may be quarantined; above it the run fails before publishing."""


class FeaturesConfig(Frozen):
    """Per-customer features of a transaction log and which of them enter the model."""

    as_of: IsoDate | None = None
    """As-of date (YYYY-MM-DD) of the features; null: the latest valid line's date (a customer table: today, UTC)."""
    window_days: Whole | None = limit(None, "a number of days of at least 1, or null for all history", ge=1)
    """Days of history the features look at, ending with the as-of date; null: all history up to it. Lines dated outside
    are counted as out of window, not quarantined; a customer table ignores it."""
    model_features: Texts = ("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days")
    """Features that enter KMeans (at least one)."""
    log_features: Texts = (
        *("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days"),
        *("avg_items_per_order", "distinct_products", "mean_days_between_orders"),
    )
    """Features that get a signed ``log1p`` before standardising (for skewed ones)."""


class ModelConfig(Frozen):
    """The KMeans sweep and final model."""

    k_min: Whole = limit(2, "at least 2 (one segment is no segmentation)", ge=2)
    """Smallest number of segments the sweep tries."""
    k_max: Whole = 10
    """Largest number of segments the sweep tries; at least ``k_min``."""
    k: Whole | None = limit(None, "a fixed k of at least 2, or null to sweep", ge=2)
    """A fixed number of segments, which skips the sweep; null: choose k by sweeping ``k_min`` to ``k_max``."""
    seed: Whole = 42
    """KMeans seed of each k's first fit and of the sweep's sample; further fits use ``seed + 1``, ``seed + 2``, ..."""
    max_iter: Whole = limit(30, "at least 1", ge=1)
    """Most KMeans iterations per fit."""
    tol: Number = limit(1e-2, "a non-negative number", ge=0)
    """KMeans stops early when every centre moves less than this, in standard deviations of the features."""
    init_mode: Literal["k-means||", "random"] = "k-means||"
    """KMeans initialisation: ``k-means||`` or ``random``."""
    init_steps: Whole = limit(5, "at least 1", ge=1)
    """Rounds of ``k-means||`` initialisation."""
    order_by: Text | None = None
    """Feature whose mean orders the segment ids; null: ``monetary``, or a customer table's first numeric column."""
    customers_per_partition: Whole = limit(50_000, "at least 1", ge=1)
    """Customers per partition of the model's input, which is sorted by customer id, so the same data gives the same
    fits on any cluster."""
    seeds: Whole = limit(3, "at least 1 seed per k", ge=1)
    """KMeans fits per k still in contention (others get one), each with its own seed; the lowest cost is kept."""
    sweep_parallelism: Whole = limit(4, "at least 1 fit at a time", ge=1)
    """KMeans fits run at the same time, from threads."""
    sweep_max_customers: Whole = limit(50_000, "at least 2", ge=2)
    """Customers above which the sweep runs on a seeded sample of about this many."""
    sweep_engine: Literal["spark", "driver"] = "spark"
    """Where the sweep's fits run: ``spark`` (MLlib, dozens of jobs a fit) or ``driver`` (numpy, milliseconds a
    fit, on at most 200,000 customers; may choose another k on hard data). The final model is MLlib's."""
    outlier_fence_iqr: Number = limit(3.0, "a number of interquartile ranges from 0 (off) to 100", ge=0, le=100)
    """Each feature is capped this many interquartile ranges outside its quartiles (after ``log1p``); 0: no capping."""
    outlier_max_share: Number = limit(0.05, "a share from 0 to below 0.5", ge=0, lt=0.5)
    """A side of a feature is capped only when at most this share of customers (at least one) lie beyond its fence."""


class SelectionConfig(Frozen):
    """How k is chosen from the sweep (see segmentation/model/selection.py)."""

    rule: Literal["combined", "silhouette", "elbow", "calinski_harabasz", "davies_bouldin"] = "combined"
    """How k is chosen: ``combined`` (a vote of all criteria), ``silhouette``, ``elbow``, ``calinski_harabasz`` or
    ``davies_bouldin``."""
    min_segment_share: Number = limit(0.02, "a share from 0 to 1", ge=0, lt=1)
    """Combined rule: a k with a segment smaller than this share of customers is left out."""
    min_stability: Number = limit(0.6, "an adjusted Rand index from -1 to 1", ge=-1, le=1)
    """Combined rule: a k whose seeds agree less than this (adjusted Rand index) is left out."""


class CatalogOutputConfig(Frozen):
    """Catalog tables as the output (Unity Catalog, a Hive metastore, AWS Glue): set ``database`` to use them.

    The tables are written through the session's catalog, partitioned by as-of date and run id.
    """

    database: str | None = limit(None, "a database (schema) name: letters, digits and '_'", pattern=IDENTIFIER)
    """Database (schema) to publish the tables in, created if missing; null: files under ``output.path``."""
    # ``catalog`` in files and manifests; ``catalog_name`` in code, so ``cfg.output.catalog.catalog`` is not written
    catalog_name: str | None = Field(
        None,
        validation_alias="catalog",
        serialization_alias="catalog",
        pattern=IDENTIFIER,
        json_schema_extra={"expect": "a catalog name: letters, digits and '_'"},
    )
    """Catalog of the database, for three-part Unity Catalog names (key ``catalog``); null: the session's catalog."""
    format: str | None = limit(None, "a table format such as delta or parquet", pattern=r"^[A-Za-z][A-Za-z0-9_.]*$")
    """Table format, such as ``delta`` or ``parquet``; null: the platform's default (``spark.sql.sources.default``:
    Delta on Databricks, Parquet elsewhere)."""

    @property
    def enabled(self) -> bool:
        return self.database is not None


class OutputConfig(Frozen):
    """Where a run is published: files under ``path`` (tables, model, manifest, report), or catalog tables
    (``catalog``) with the model under ``path``."""

    path: Text | None = None
    """Output root, which a run needs (or ``--output``): any path Spark can write, not the input or inside it; with
    catalog tables, where the model goes."""
    catalog: CatalogOutputConfig = CatalogOutputConfig()
    """Publishing to catalog tables instead of files."""
    run_id: Text = limit(
        "main",
        "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        pattern=RUN_ID_PATTERN,
    )
    """Id of this line of runs: 1 to 64 letters, digits, ``.``, ``_`` or ``-``, starting with a letter or digit."""


class PrivacyConfig(Frozen):
    """Pseudonymising customer ids; the key comes from an environment variable or a Databricks secret, never from a
    config file."""

    pseudonymize_ids: Flag = False
    """Replace customer ids in every output by HMAC-SHA256 pseudonyms."""
    key_env: Text = "SEGMENTATION_ID_KEY"
    """Environment variable holding the key (16 characters or more)."""
    secret_scope: Text | None = None
    """On Databricks: scope of the secret holding the key, instead of ``key_env``; null: none."""
    secret_key: Text | None = None
    """On Databricks: name of that secret in ``secret_scope``; set both or neither."""


class ReportConfig(Frozen):
    """The report's choices."""

    scatter_features: Texts = ()
    """Two numeric features for the report's picture of customers; empty: the first two principal components."""


class HistoryConfig(Frozen):
    """Segments over time: each run compared with a baseline run (see segmentation/history/)."""

    enabled: Flag = True
    """Compare each run with a baseline run, keeping its segment ids; false: no comparison."""
    baseline: Text | None = limit(
        None,
        "YYYY-MM-DD or YYYY-MM-DD/RUN_ID of a published run (null: the latest earlier as-of date of this run id)",
        pattern=r"^\d{4}-\d{2}-\d{2}(/[A-Za-z0-9][A-Za-z0-9._-]{0,63})?$",
    )
    """Published run to compare with: ``YYYY-MM-DD`` or ``YYYY-MM-DD/RUN_ID``; null: the latest earlier as-of date of
    this run id under the same output."""
    match_distance: Number = limit(1.0, "a distance above 0 (standard deviations of the baseline)", gt=0)
    """New segments closer than this to a baseline segment keep its id (in standard deviations of the baseline)."""
    min_shared_customers: Number = limit(
        0.5, "a fraction above 0 and at most 1 (of the smaller run's customers, in both runs)", gt=0, le=1
    )
    """A baseline from another input is taken only if at least this share of the smaller run's customers are in both
    runs. A baseline named with history.baseline (--baseline) is taken anyway, with a warning."""


class DriftThresholds(Frozen):
    """Fixed thresholds per drift measure; null: the default, calibrated from the baseline's own variation."""

    feature_psi: Number | None = limit(None, "a positive number, or null to calibrate", gt=0)
    """Population stability index of a model feature on the baseline's quantile bins; null: calibrated."""
    feature_js: Number | None = limit(None, "a distance above 0 and at most 1, or null to calibrate", gt=0, le=1)
    """Jensen-Shannon distance (base 2) of a model feature on the same bins; null: calibrated."""
    feature_mean_shift: Number | None = limit(None, "a positive number, or null to calibrate", gt=0)
    """Change of a feature's mean on the model's scale, in the baseline's standard deviations; null: calibrated."""
    feature_median_shift: Number | None = limit(None, "a positive number, or null to calibrate", gt=0)
    """Change of a feature's median on the model's scale, in the baseline's standard deviations; null: calibrated."""
    segment_psi: Number | None = limit(None, "a positive number, or null to calibrate", gt=0)
    """Population stability index of the segment shares; null: calibrated."""
    centroid_shift: Number | None = limit(None, "a positive number, or null to calibrate", gt=0)
    """Distance a segment's centroid moved, in the baseline's standard deviations; null: calibrated."""
    adjusted_rand: Number = limit(0.6, "an adjusted Rand index from -1 to below 1", ge=-1, lt=1)
    """Lowest adjusted Rand index of the segments of the customers in both runs."""
    customers_change: Number = limit(0.2, "a positive share", gt=0)
    """Largest relative change of the number of customers."""
    lines_change: Number | None = limit(None, "a positive share, or null to calibrate", gt=0)
    """Largest relative change of the lines per day since the baseline; null: calibrated."""
    quarantine_share_change: Number | None = limit(
        None, "a share above 0 and at most 1, or null to calibrate", gt=0, le=1
    )
    """Largest change of a quarantine reason's share of the lines since the baseline; null: calibrated."""


class DriftConfig(Frozen):
    """Checks before a run is published: how far it moved from its baseline, and what a run beyond them does."""

    enabled: Flag = True
    """Measure each run against its baseline (history.enabled must be on); false: no measures, no gate."""
    action: Literal["warn", "hold"] = "warn"
    """Beyond a threshold: ``warn`` (publish and report) or ``hold`` (publish without making it the current run)."""
    bins: Whole = limit(10, "from 2 to 100 quantile bins", ge=2, le=100)
    """Quantile bins of the baseline that the feature distributions are compared on."""
    calibration_splits: Whole = limit(20, "from 2 to 100 random splits", ge=2, le=100)
    """Random halves of the baseline's customers (or chunks of its days) the calibrated thresholds are learnt from."""
    thresholds: DriftThresholds = DriftThresholds()
    """Fixed thresholds per measure."""


class ValueConfig(Frozen):
    """What each customer is worth next: buy-till-you-die models fitted on the run's clean lines (see
    segmentation/value/); a transaction log only (a customer table has no purchase history)."""

    enabled: Flag = True
    """Fit the value models; false: skip them."""
    model: Literal["bgnbd", "pareto_nbd"] = "bgnbd"
    """Model of purchases and of P(alive): ``bgnbd`` (BG/NBD) or ``pareto_nbd`` (Pareto/NBD)."""
    time_unit: Literal["day", "week"] = "day"
    """Unit of the models' time (``t_x``, ``T``): ``day`` or ``week``; purchases are counted per day either way."""
    horizon_days: Whole = limit(365, "a horizon of at least 1 day", ge=1)
    """Days after the as-of date that the expected purchases, expected value and CLV cover."""
    discount_rate: Number = limit(0.10, "an annual rate from 0 to below 1", ge=0, lt=1)
    """Annual discount rate; each month's expected value is discounted from its end."""
    penalty: Number = limit(0.0, "an L2 penalty of 0 (none) or more", ge=0)
    """L2 penalty on the models' parameters; 0: plain maximum likelihood."""
    holdout: Flag = False
    """Compare the forecast with the lines dated after the as-of date; needs ``features.as_of``."""
    holdout_days: Whole | None = limit(None, "a number of days of at least 1, or null for every later line", ge=1)
    """Days after the as-of date in the holdout; null: up to the latest line. Needs ``holdout: true``."""


class MlflowConfig(Frozen):
    """Logging runs to MLflow (optional: ``pip install segmentation[mlflow]``)."""

    enabled: Flag = False
    """Log each published run to MLflow."""
    tracking_uri: Text | None = None
    """MLflow tracking URI; null: MLflow's default."""
    experiment: Text | None = None
    """MLflow experiment name; null: MLflow's default."""


class SparkConfig(Frozen):
    """Whether the job persists frames, and the settings of a session it creates (never applied to a session it is
    handed)."""

    persist: Flag = True
    """Use ``cache``/``persist``; false: frames read several times are written to the run's work area and read back
    instead, with the same results (Databricks serverless allows no persisting)."""
    master: Text | None = None
    """Spark master; null: ``local[*]`` when the job starts its own JVM, else the launcher's (spark-submit)."""
    app_name: Text = "segmentation"
    """Spark application name."""
    conf: Settings = Field(default_factory=lambda: types.MappingProxyType({}))
    """Extra Spark settings (key: value); they win over the defaults the job gives a local session."""


class JobConfig(Frozen):
    """The whole validated configuration of one run."""

    input: InputConfig = InputConfig()
    """Reading the input."""
    quality: QualityConfig = QualityConfig()
    """Limits of the line checks."""
    features: FeaturesConfig = FeaturesConfig()
    """Per-customer features."""
    model: ModelConfig = ModelConfig()
    """KMeans settings."""
    selection: SelectionConfig = SelectionConfig()
    """Choosing k."""
    output: OutputConfig = OutputConfig()
    """Publishing the run."""
    privacy: PrivacyConfig = PrivacyConfig()
    """Pseudonymised ids."""
    report: ReportConfig = ReportConfig()
    """The report."""
    history: HistoryConfig = HistoryConfig()
    """Comparing with a baseline run."""
    value: ValueConfig = ValueConfig()
    """Customer value forecasts."""
    drift: DriftConfig = DriftConfig()
    """Checks against the baseline before publishing."""
    mlflow: MlflowConfig = MlflowConfig()
    """MLflow logging."""
    spark: SparkConfig = Field(default_factory=SparkConfig)  # a mappingproxy cannot be deep-copied
    """The Spark session."""

    @model_validator(mode="after")
    def _cross_field_rules(self) -> JobConfig:
        if problem := next(rule_problems(self), None):
            raise RuleError(*problem)
        return self

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-friendly copy (for the manifest): dates as ISO text, tuples as lists."""
        return self.model_dump(mode="json", by_alias=True)
