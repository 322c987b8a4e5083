"""Job configuration: YAML files and command-line overrides loaded into frozen, validated pydantic models.

Layers, later ones win: the models' field defaults (``conf/base.yaml`` states them), each ``--config`` file in
order (a file may name its own ``base:`` file, relative to itself), ``--set key.path=value`` overrides, then
``--input`` and ``--output``. The models check types, choices, bounds and cross-field rules; ``load`` then
checks the paths. Every error is a ``ConfigError`` naming where the value came from and the key.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import re
import types
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.functional_serializers import PlainSerializer
from pydantic.functional_validators import AfterValidator, BeforeValidator

from segmentation.errors import ConfigError

TRANSACTION_FEATURES: tuple[str, ...] = (
    *("recency_days", "frequency", "monetary", "tenure_days", "avg_order_value", "avg_items_per_order"),
    *("distinct_products", "return_rate", "mean_days_between_orders", "active_months"),
)
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _iso_date(value: Any) -> Any:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return value  # left to the date type, which reports it


def _settings_text(value: Any) -> Any:
    if not isinstance(value, dict):
        return value  # left to the mapping type, which reports it
    return {str(k): ("true" if v is True else "false" if v is False else str(v)) for k, v in value.items()}


# strict: no bool for an int, no "3" for a number, no "yes" for a bool; YAML gives the real types
Whole = Annotated[int, Field(strict=True)]
Number = Annotated[float, Field(strict=True)]  # an int is fine
Flag = Annotated[bool, Field(strict=True)]
Text = Annotated[str, Field(strict=True, min_length=1)]
Texts = Annotated[tuple[Text, ...], BeforeValidator(lambda v: (v,) if isinstance(v, str) else v)]
IsoDate = Annotated[dt.date, Field(strict=True), BeforeValidator(_iso_date)]
Settings = Annotated[
    Mapping[str, str], BeforeValidator(_settings_text), AfterValidator(types.MappingProxyType), PlainSerializer(dict)
]


def _limit(default: Any, expect: str, **bounds: Any) -> Any:
    """A field with bounds (``ge=2``, ``pattern=...``) and its error's text: "expected <expect>, got <value>"."""
    return Field(default, **bounds, json_schema_extra={"expect": expect})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CsvOptions(_Frozen):
    """How CSV input is parsed; every column is read as text and typed during validation."""

    delimiter: Text = _limit(",", "one character", max_length=1)
    quote: Text = '"'
    escape: Text = '"'
    encoding: Text = "UTF-8"
    multiline: Flag = False


class NumberOptions(_Frozen):
    """How numbers are written in text columns (CSV, JSON lines): ``1,25`` with ``decimal_separator: ","``;
    ``1.234,5`` with ``thousands_separator: "."`` too. Typed (Parquet, table) columns are read as they are."""

    decimal_separator: Literal[".", ","] = "."
    thousands_separator: Literal[",", ".", " ", "\u00a0", "\u202f", "'", "_"] | None = None  # also no-break spaces


class ColumnMapping(_Frozen):
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


class CustomerTableOptions(_Frozen):
    """Columns of a ready customer table (``input.kind: customers``)."""

    id_column: Text = "CustomerID"
    numeric_columns: Texts = ()
    categorical_columns: Texts = ()
    log_columns: Texts = ()


TABLE_NAME = r"^(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)(?:\.(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)){0,2}$"
EPOCH_FORMATS = {"epoch_seconds": "s", "epoch_millis": "ms"}  # in input.timestamp_formats: epoch numbers as text
ZONE_OFFSET = re.compile(r"^(?:UTC|GMT)?[+-](\d{2}):(\d{2})$")


def _zone_text(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):  # YAML reads an unquoted +10:00 as 600 (base 60)
        raise ValueError(f"expected a time zone as text; write an offset in quotes, such as '+10:00' (got {value!r})")
    return value


def _known_zone(value: str) -> str:
    """A region id (``Europe/Amsterdam``), ``UTC`` or an offset from -18:00 to +18:00 (Java's range), also after
    ``UTC`` or ``GMT``; a ValueError names what is expected."""
    expected = f"expected a time zone such as UTC, Europe/Amsterdam or +01:00, got {value!r}"
    offset = ZONE_OFFSET.match(value)
    if offset:
        if int(offset[1]) * 60 + int(offset[2]) > 18 * 60 or int(offset[2]) > 59:
            raise ValueError(expected)
        return value
    if value in ("UTC", "Z"):
        return value
    if value in ("localtime", "posixrules", "Factory") or value.startswith(("posix/", "right/")):
        raise ValueError(expected)  # files of the system's zone database that Java (Spark) does not know
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(expected) from None
    return value


class InputConfig(_Frozen):
    """Where the input is (files under ``path``, or a catalog ``table``) and how to read it."""

    kind: Literal["transactions", "customers"] = "transactions"
    path: Text | None = None
    table: str | None = _limit(
        None,
        "a table or view name: name, schema.name or catalog.schema.name (parts in `backticks` if needed)",
        pattern=TABLE_NAME,
    )
    where: Text | None = None
    format: Literal["auto", "csv", "parquet", "json"] = "auto"
    timestamp_formats: Texts = _limit(
        ("M/d/yyyy H:mm", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd"),
        "at least one timestamp pattern",
        min_length=1,
    )
    integer_timestamp_unit: Literal["s", "ms", "us", "ns"] = "ns"
    time_zone: Annotated[Text, BeforeValidator(_zone_text), AfterValidator(_known_zone)] = "UTC"
    order_key: Literal["invoice", "timestamp", "line"] | None = None
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


def unavailable_features(inp: InputConfig) -> dict[str, str]:
    """The transaction features the mapped columns cannot give, each with why (a feature is left out, never
    filled with zeros that look like data)."""
    columns, missing = inp.columns, {}
    if columns.quantity is None:
        missing["avg_items_per_order"] = "no quantity column (input.columns.quantity is null)"
    if columns.product_id is None:
        missing["distinct_products"] = "no product column (input.columns.product_id is null)"
    return missing


class QualityConfig(_Frozen):
    """Validation rules."""

    max_quarantine_share: Number = _limit(0.5, "a share from 0 to 1", ge=0, le=1)


class FeaturesConfig(_Frozen):
    """Per-customer features of a transaction log and which of them enter the model.

    ``window_days`` W: the features look at the W days ending with the as-of date (null: all history up to it);
    lines dated outside that window are counted as out of window, never quarantined. A customer table ignores it.
    """

    as_of: IsoDate | None = None
    window_days: Whole | None = _limit(None, "a number of days of at least 1, or null for all history", ge=1)
    model_features: Texts = ("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days")
    log_features: Texts = (
        *("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days"),
        *("avg_items_per_order", "distinct_products", "mean_days_between_orders"),
    )


class ModelConfig(_Frozen):
    """The KMeans sweep and final model."""

    k_min: Whole = _limit(2, "at least 2 (one segment is no segmentation)", ge=2)
    k_max: Whole = 10
    k: Whole | None = _limit(None, "a fixed k of at least 2, or null to sweep", ge=2)
    seed: Whole = 42
    max_iter: Whole = _limit(30, "at least 1", ge=1)
    tol: Number = _limit(1e-2, "a non-negative number", ge=0)
    init_mode: Literal["k-means||", "random"] = "k-means||"
    init_steps: Whole = _limit(5, "at least 1", ge=1)
    order_by: Text | None = None
    customers_per_partition: Whole = _limit(50_000, "at least 1", ge=1)
    seeds: Whole = _limit(3, "at least 1 seed per k", ge=1)
    sweep_parallelism: Whole = _limit(4, "at least 1 fit at a time", ge=1)
    sweep_max_customers: Whole = _limit(50_000, "at least 2", ge=2)
    outlier_fence_iqr: Number = _limit(3.0, "a number of interquartile ranges from 0 (off) to 100", ge=0, le=100)
    outlier_max_share: Number = _limit(0.05, "a share from 0 to below 0.5", ge=0, lt=0.5)


class SelectionConfig(_Frozen):
    """How k is chosen from the sweep (see segmentation/selection.py)."""

    rule: Literal["combined", "silhouette", "elbow", "calinski_harabasz", "davies_bouldin"] = "combined"
    min_segment_share: Number = _limit(0.02, "a share from 0 to 1", ge=0, lt=1)
    min_stability: Number = _limit(0.6, "an adjusted Rand index from -1 to 1", ge=-1, le=1)


IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"


class CatalogOutputConfig(_Frozen):
    """Catalog tables as the output (Unity Catalog, a Hive metastore, AWS Glue): set ``database`` to use them.

    The tables are written through the session's catalog, partitioned by as-of date and run id; ``catalog``
    makes three-part Unity Catalog names; ``format`` unset means the platform's default table format
    (``spark.sql.sources.default``: Delta on Databricks, Parquet elsewhere).
    """

    database: str | None = _limit(None, "a database (schema) name: letters, digits and '_'", pattern=IDENTIFIER)
    catalog: str | None = _limit(None, "a catalog name: letters, digits and '_'", pattern=IDENTIFIER)
    format: str | None = _limit(None, "a table format such as delta or parquet", pattern=r"^[A-Za-z][A-Za-z0-9_.]*$")

    @property
    def enabled(self) -> bool:
        return self.database is not None


class OutputConfig(_Frozen):
    """Where a run is published: files under ``path`` (tables, model, manifest, report), or catalog tables
    (``catalog``) with the model under ``path``."""

    path: Text | None = None
    catalog: CatalogOutputConfig = CatalogOutputConfig()
    run_id: Text = _limit(
        "main",
        "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        pattern=RUN_ID_PATTERN.pattern,
    )


class PrivacyConfig(_Frozen):
    """Pseudonymising customer ids in every output with HMAC-SHA256; the key never comes from a config file."""

    pseudonymize_ids: Flag = False
    key_env: Text = "SEGMENTATION_ID_KEY"
    secret_scope: Text | None = None
    secret_key: Text | None = None


class ReportConfig(_Frozen):
    """The report's choices: two features for the customer picture (empty: the first two principal components)."""

    scatter_features: Texts = ()


class HistoryConfig(_Frozen):
    """Segments over time: each run compared with a baseline run (see segmentation/history.py)."""

    enabled: Flag = True
    baseline: Text | None = _limit(
        None,
        "YYYY-MM-DD or YYYY-MM-DD/RUN_ID of a published run (null: the latest earlier as-of date of this run id)",
        pattern=r"^\d{4}-\d{2}-\d{2}(/[A-Za-z0-9][A-Za-z0-9._-]{0,63})?$",
    )
    match_distance: Number = _limit(1.0, "a distance above 0 (standard deviations of the baseline)", gt=0)


class MlflowConfig(_Frozen):
    """Logging each run to MLflow (optional: ``pip install segmentation[mlflow]``); off by default."""

    enabled: Flag = False
    tracking_uri: Text | None = None
    experiment: Text | None = None


class SparkConfig(_Frozen):
    """Session settings used only when this job creates the session (never on a session it is handed), and
    ``persist``: false runs the job without ``cache``/``persist`` (Databricks serverless does not allow them);
    frames read several times are written to the run's work area and read back instead, with the same results."""

    persist: Flag = True
    master: Text | None = None
    app_name: Text = "segmentation"
    conf: Settings = Field(default_factory=lambda: types.MappingProxyType({}))


class _RuleError(ValueError):
    """A broken cross-field rule; ``args`` are the key it is about and the message."""

    def __str__(self) -> str:
        return ": ".join(self.args)


class JobConfig(_Frozen):
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
    mlflow: MlflowConfig = MlflowConfig()
    spark: SparkConfig = Field(default_factory=SparkConfig)  # a mappingproxy cannot be deep-copied

    @model_validator(mode="after")
    def _cross_field_rules(self) -> JobConfig:
        if problem := next(_rule_problems(self), None):
            raise _RuleError(*problem)
        return self

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-friendly copy (for the manifest): dates as ISO text, tuples as lists."""
        return self.model_dump(mode="json")


def _rule_problems(cfg: JobConfig) -> Iterator[tuple[str, str]]:
    model, cust, priv, scatter = cfg.model, cfg.input.customers, cfg.privacy, cfg.report.scatter_features
    if model.k_max < model.k_min:
        yield "model.k_max", f"expected at least model.k_min ({model.k_min}), got {model.k_max}"
    if cfg.history.baseline is not None and not cfg.history.enabled:
        yield "history.baseline", "no baseline while history.enabled is false (set one or the other)"
    if scatter and len(scatter) != 2:
        yield "report.scatter_features", f"expected two feature names or none, got {list(scatter)}"
    if (priv.secret_scope is None) != (priv.secret_key is None):
        yield "privacy.secret_key", "set both privacy.secret_scope and privacy.secret_key, or neither"
    yield from _input_problems(cfg.input)
    if cfg.input.kind == "transactions":
        known: Sequence[str] = TRANSACTION_FEATURES
        yield from _unknown("features.model_features", cfg.features.model_features, known)
        yield from _unknown("features.log_features", cfg.features.log_features, known)
        if not cfg.features.model_features:
            yield "features.model_features", "expected at least one feature"
        yield from _mapping_problems(cfg.input)
        missing = unavailable_features(cfg.input)
        if cfg.features.model_features and all(f in missing for f in cfg.features.model_features):
            why = "; ".join(f"{f}: {missing[f]}" for f in cfg.features.model_features)
            yield "features.model_features", f"none of them can be computed from the mapped columns ({why})"
        if model.order_by in missing:
            yield "model.order_by", f"{model.order_by!r} cannot be computed: {missing[model.order_by]}"
        for name in scatter:
            if name in missing:
                yield "report.scatter_features", f"{name!r} cannot be computed: {missing[name]}"
    else:
        known = cust.numeric_columns
        if not cust.numeric_columns and not cust.categorical_columns:
            yield "input.customers.numeric_columns", "a customer table needs at least one feature column"
        yield from _unknown("input.customers.log_columns", cust.log_columns, known)
        if overlap := set(cust.numeric_columns) & set(cust.categorical_columns):
            yield "input.customers.categorical_columns", f"also listed as numeric: {sorted(overlap)}"
    if model.order_by is not None and model.order_by not in known:
        yield "model.order_by", f"expected one of the model's numeric features {sorted(known)}, got {model.order_by!r}"


def _input_problems(inp: InputConfig) -> Iterator[tuple[str, str]]:
    if inp.path is not None and inp.table is not None:
        yield "input.table", f"expected input.path or input.table, not both (input.path is {inp.path!r})"
    if inp.where is not None and ";" in inp.where:
        yield "input.where", "expected one SQL predicate over the input's columns, without ';'"
    if inp.numbers.thousands_separator == inp.numbers.decimal_separator:
        yield (
            "input.numbers.thousands_separator",
            f"expected another character than the decimal separator ({inp.numbers.decimal_separator!r})",
        )
    if len({f for f in inp.timestamp_formats if f in EPOCH_FORMATS}) > 1:
        yield "input.timestamp_formats", "expected epoch_seconds or epoch_millis, not both"


def _mapping_problems(inp: InputConfig) -> Iterator[tuple[str, str]]:
    """A column mapping from which the job cannot compute customers, time or money, refused before Spark starts."""
    columns = inp.columns
    if columns.customer_id is None:
        yield (
            "input.columns.customer_id",
            "a transaction log needs a customer id column; map it to the column that holds one",
        )
    if columns.invoice_ts is None:
        yield (
            "input.columns.invoice_ts",
            "a transaction log needs a date or timestamp column; map it to the column that holds one",
        )
    if columns.unit_price is None and columns.amount is None:
        yield (
            "input.columns.unit_price",
            (
                "no money column: map input.columns.unit_price (a unit price, times input.columns.quantity) or "
                "input.columns.amount (the line's total)"
            ),
        )
    if columns.unit_price is not None and columns.amount is not None:
        yield (
            "input.columns.amount",
            (
                f"input.columns.unit_price is mapped too ({columns.unit_price!r}); a line's money is its unit price "
                "times its quantity, or its amount: set input.columns.unit_price to null to use the amount"
            ),
        )
    if columns.unit_price is not None and columns.quantity is None:
        yield (
            "input.columns.quantity",
            (
                "a unit price needs a quantity to give the line's money; map input.columns.quantity, or map "
                "input.columns.amount to the line's total instead"
            ),
        )
    if inp.order_key == "invoice" and columns.invoice_id is None:
        yield (
            "input.order_key",
            (
                "orders by invoice need input.columns.invoice_id; set it, or order_key: timestamp (a customer's lines "
                "at one timestamp are one order) or line (each line is an order)"
            ),
        )


def _unknown(key: str, chosen: Sequence[str], allowed: Sequence[str]) -> Iterator[tuple[str, str]]:
    for name in chosen:
        if name not in allowed:
            yield key, f"unknown feature {name!r}; expected names from: {', '.join(allowed)}"


# ---------------------------------------------------------------- loading


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One YAML file as a mapping, following its ``base:`` chain; errors name the file."""
    return _read_layered(Path(path), seen=())


class _TextDatesLoader(yaml.SafeLoader):
    """Safe YAML without implicit timestamps: a date stays text, so a bad one is reported with its key."""

    yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_TextDatesLoader)  # a SafeLoader subclass: no arbitrary objects


def _read_layered(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    resolved = path.resolve()
    if resolved in seen:
        raise ConfigError(f"{path}: 'base' files form a cycle")
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    try:
        data = _yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is None:
        return {"__source__": str(path), **data}
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base: expected a file name, got {type(base).__name__}")
    merged = _read_layered(path.parent / base, seen=(*seen, resolved))
    return {"__layers__": [merged, {"__source__": str(path), **data}]}


def parse_override(text: str) -> tuple[str, Any]:
    """``key.path=value`` with the value read as YAML (``5`` is a number, ``[a, b]`` a list, dates stay text)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected key.path=value")
    try:
        value = _yaml(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key, value


def load(
    config_files: Sequence[str | os.PathLike[str]] = (),
    overrides: Sequence[str] = (),
    *,
    input_path: str | None = None,
    output_path: str | None = None,
    input_table: str | None = None,
    check_paths: bool = True,
    paths_needed: bool = True,
) -> JobConfig:
    """Build and validate a JobConfig from files, ``--set`` overrides, explicit paths and table (``paths_needed``
    False: a command that only needs the session settings, such as ``report``)."""
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for file in config_files:
        _merge_layers(values, origin, read_yaml(file))
    for text in overrides:
        key, value = parse_override(text)
        _set_dotted(values, origin, key, value, f"--set {key}")
    if input_path is not None:  # the command line's input replaces the files' (a path or a table)
        _set_dotted(values, origin, "input.path", input_path, "--input")
        _set_dotted(values, origin, "input.table", None, "--input")
    if output_path is not None:
        _set_dotted(values, origin, "output.path", output_path, "--output")
    if input_table is not None:
        _set_dotted(values, origin, "input.table", input_table, "--input-table")
        _set_dotted(values, origin, "input.path", None, "--input-table")
    try:
        cfg = JobConfig.model_validate(values)
    except ValidationError as exc:  # from None: pydantic's text would echo the value (a key put in a file)
        _fail(origin, *_explain(exc.errors()[0]))
    if paths_needed and (problem := next(_path_problems(cfg, check_paths), None)):
        _fail(origin, *problem)
    return cfg


def _merge_layers(values: dict[str, Any], origin: dict[str, str], layer: dict[str, Any]) -> None:
    for sub in layer.get("__layers__", ()):
        _merge_layers(values, origin, sub)
    source = layer.get("__source__", "<config>")
    own = {k: v for k, v in layer.items() if k not in ("__layers__", "__source__")}
    _deep_merge(values, origin, "", own, source)


def _deep_merge(target: dict[str, Any], origin: dict[str, str], prefix: str, layer: Mapping, source: str) -> None:
    for raw_key, value in layer.items():
        key = str(raw_key)
        dotted = f"{prefix}.{key}" if prefix else key
        origin[dotted] = source
        if isinstance(value, dict):
            if not isinstance(target.get(key), dict):
                target[key] = {}
            _deep_merge(target[key], origin, dotted, value, source)
        else:
            target[key] = value


def _set_dotted(values: dict[str, Any], origin: dict[str, str], key: str, value: Any, source: str) -> None:
    parts = key.split(".")
    node = values
    for depth, part in enumerate(parts[:-1]):
        if not isinstance(node.get(part), dict):
            node[part] = {}
        origin.setdefault(".".join(parts[: depth + 1]), source)
        node = node[part]
    node[parts[-1]] = value
    origin[key] = source


def _fail(origin: Mapping[str, str], key: str, message: str) -> NoReturn:
    probe = key.partition("[")[0]
    while probe and probe not in origin:
        probe = probe.rpartition(".")[0]
    raise ConfigError(f"{origin.get(probe, 'default')}: {key}: {message}") from None


_WORDING = {  # pydantic's error types -> our message
    ("int_type", "int_parsing", "int_from_float"): "expected a whole number, got {value!r}",
    ("float_type", "float_parsing"): "expected a number, got {value!r}",
    ("bool_type", "bool_parsing"): "expected true or false, got {value!r}",
    ("string_type", "string_too_short"): "expected a non-empty text, got {value!r}",
    ("date_type", "date_parsing", "date_from_datetime_parsing"): "expected a date like 2011-12-09, got {value!r}",
    ("tuple_type",): "expected a list, got {value!r}",
    ("dict_type",): "expected a mapping of settings, got {value!r}",
    ("model_type",): "expected a mapping, got {type}",
    ("missing",): "a value is required",
}
_MESSAGES = {kind: text for kinds, text in _WORDING.items() for kind in kinds}
_KEY_IN_FILE = (
    "the key is never read from a config file; put it in the environment variable named by privacy.key_env, "
    "or in a Databricks secret (privacy.secret_scope, secret_key)"
)

_RETIRED = {  # keys that once existed -> what replaced them
    "selection.silhouette_tolerance": (
        "no longer a setting: in the combined rule every criterion votes for its best k, instead of the smallest "
        "k within a silhouette tolerance winning (README: Choosing k); remove the key"
    ),
}


def _explain(error: Mapping[str, Any]) -> tuple[str, str]:
    """The dotted key and our message for one of pydantic's errors."""
    loc, kind, value = error["loc"], error["type"], error.get("input")
    key = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    rule = error.get("ctx", {}).get("error")
    if isinstance(rule, _RuleError):
        return rule.args
    if kind == "extra_forbidden":
        if key == "privacy.key":
            return key, _KEY_IN_FILE  # never the value
        if key in _RETIRED:
            return key, _RETIRED[key]
        return key, f"unknown key; expected one of: {', '.join(sorted(_fields(loc[:-1])))}"
    if kind == "literal_error":
        choices = ", ".join(re.findall(r"'([^']*)'", error["ctx"]["expected"]))
        return key, f"expected one of {choices}, got {value!r}"
    if kind == "value_error" and isinstance(rule, ValueError):
        return key, str(rule)
    if kind in _MESSAGES:
        return key, _MESSAGES[kind].format(value=value, type=type(value).__name__)
    field = _fields(loc[:-1]).get(loc[-1]) if loc else None
    extra = field.json_schema_extra if field else None
    if isinstance(extra, dict) and "expect" in extra:
        return key, f"expected {extra['expect']}, got {value!r}"
    return key, str(error["msg"])


def _fields(loc: Sequence[Any]) -> dict[str, Any]:
    """The fields of the model at ``loc``: JobConfig's at (), InputConfig's at ("input",), none past a list."""
    fields = JobConfig.model_fields
    for part in loc:
        field = fields.get(part) if isinstance(part, str) else None
        fields = getattr(field.annotation if field else None, "model_fields", {})
    return fields


def _path_problems(cfg: JobConfig, check_paths: bool) -> Iterator[tuple[str, str]]:
    inp, out = cfg.input.path, cfg.output.path
    if inp is None and cfg.input.table is None:
        yield "input.path", "no input given; set input.path or input.table, or pass --input PATH or --input-table NAME"
        return
    if out is None:
        yield "output.path", "no output folder given; set output.path or pass --output PATH"
        return
    if inp is None:  # a catalog table: read through the session's catalog; only the output is checked here
        if not is_local_path(out) and ".." in Path(urlparse(out).path).parts:
            yield (
                "output.path",
                f"'..' is not allowed in a {urlparse(out).scheme}: path; give the full path instead of {out!r}",
            )
        return
    for key, path in (("input.path", inp), ("output.path", out)):
        # local paths with '..' are resolved before they are compared; object stores do not resolve '..'
        if not is_local_path(path) and ".." in Path(urlparse(path).path).parts:
            yield key, f"'..' is not allowed in a {urlparse(path).scheme}: path; give the full path instead of {path!r}"
    if check_paths and is_local_path(inp) and not glob.glob(local_path(inp)):
        yield "input.path", f"no file or folder matches {inp!r}"
    if is_local_path(inp) and is_local_path(out):
        written, read = Path(local_path(out)).resolve(), Path(local_path(input_root(inp))).resolve()
        if written == read or read in written.parents:
            yield "output.path", f"the output {out!r} is inside the input {inp!r}; write it elsewhere"
        if written in read.parents:
            yield "output.path", f"the input {inp!r} is inside the output {out!r}; write it elsewhere"


def input_root(path: str) -> str:
    """The folder part of an input path before any glob character (the path itself if none)."""
    parts = Path(path).parts
    for i, part in enumerate(parts):
        if any(ch in part for ch in "*?["):
            return str(Path(*parts[:i])) if i else "."
    return path


def is_local_path(path: str) -> bool:
    """True for plain paths and ``file:`` URIs, which Python can read and write on the driver."""
    scheme = urlparse(path).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


def local_path(path: str) -> str:
    """A ``file:`` URI or plain path as a plain path."""
    return urlparse(path).path if path.startswith("file:") else path
