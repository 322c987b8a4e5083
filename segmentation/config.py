"""Job configuration: YAML files and command-line overrides loaded into frozen, validated dataclasses.

Layers, later ones win: the defaults in this module, each ``--config`` file in order (a file may name
its own ``base:`` file, relative to itself), ``--set key.path=value`` overrides, then ``--input`` and
``--output``. Every error names the key and where its value came from, before Spark starts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import glob
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

TRANSACTION_FEATURES: tuple[str, ...] = (
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "avg_order_value",
    "avg_items_per_order",
    "distinct_products",
    "return_rate",
    "mean_days_between_orders",
    "active_months",
)
INPUT_KINDS = ("transactions", "customers")
INPUT_FORMATS = ("auto", "csv", "parquet")
INIT_MODES = ("k-means||", "random")
SELECTION_RULES = ("combined", "silhouette", "elbow", "calinski_harabasz", "davies_bouldin")
INTEGER_TIMESTAMP_UNITS = ("s", "ms", "us", "ns")
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ConfigError(ValueError):
    """A configuration mistake: the message names the key, where its value came from and what was expected."""


@dataclass(frozen=True)
class CsvOptions:
    """How CSV input is parsed; every column is read as text and typed during validation."""

    delimiter: str = ","
    quote: str = '"'
    escape: str = '"'
    encoding: str = "UTF-8"
    multiline: bool = False


@dataclass(frozen=True)
class ColumnMapping:
    """Source column name for each canonical transaction column (Online Retail names by default)."""

    customer_id: str = "CustomerID"
    invoice_id: str = "InvoiceNo"
    invoice_ts: str = "InvoiceDate"
    quantity: str = "Quantity"
    unit_price: str = "UnitPrice"
    product_id: str = "StockCode"
    country: str | None = "Country"


@dataclass(frozen=True)
class CustomerTableOptions:
    """Columns of a ready customer table (``input.kind: customers``)."""

    id_column: str = "CustomerID"
    numeric_columns: tuple[str, ...] = ()
    categorical_columns: tuple[str, ...] = ()
    log_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class InputConfig:
    """Where the input is and how to read it."""

    kind: str = "transactions"
    path: str | None = None
    format: str = "auto"
    timestamp_formats: tuple[str, ...] = ("M/d/yyyy H:mm", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss")
    integer_timestamp_unit: str = "ns"
    csv: CsvOptions = field(default_factory=CsvOptions)
    columns: ColumnMapping = field(default_factory=ColumnMapping)
    customers: CustomerTableOptions = field(default_factory=CustomerTableOptions)


@dataclass(frozen=True)
class QualityConfig:
    """Validation rules."""

    max_quarantine_share: float = 0.5


@dataclass(frozen=True)
class FeaturesConfig:
    """Per-customer features of a transaction log and which of them enter the model."""

    as_of: dt.date | None = None
    model_features: tuple[str, ...] = (
        "recency_days",
        "frequency",
        "monetary",
        "avg_order_value",
        "tenure_days",
    )
    log_features: tuple[str, ...] = (
        "recency_days",
        "frequency",
        "monetary",
        "avg_order_value",
        "tenure_days",
        "avg_items_per_order",
        "distinct_products",
        "mean_days_between_orders",
    )


@dataclass(frozen=True)
class ModelConfig:
    """The KMeans sweep and final model."""

    k_min: int = 2
    k_max: int = 10
    k: int | None = None
    seed: int = 42
    max_iter: int = 30
    tol: float = 1e-2
    init_mode: str = "k-means||"
    init_steps: int = 5
    order_by: str | None = None
    customers_per_partition: int = 50_000
    seeds: int = 3
    sweep_parallelism: int = 4
    sweep_max_customers: int = 50_000
    outlier_fence_iqr: float = 3.0
    outlier_max_share: float = 0.05


@dataclass(frozen=True)
class SelectionConfig:
    """How k is chosen from the sweep (see segmentation/selection.py)."""

    rule: str = "combined"
    min_segment_share: float = 0.02
    min_stability: float = 0.8
    silhouette_tolerance: float = 0.01


@dataclass(frozen=True)
class OutputConfig:
    """Where the Parquet tables, model and manifest are written."""

    path: str | None = None
    run_id: str = "main"


@dataclass(frozen=True)
class PrivacyConfig:
    """Pseudonymising customer ids in every output with HMAC-SHA256; the key never comes from a config file."""

    pseudonymize_ids: bool = False
    key_env: str = "SEGMENTATION_ID_KEY"
    secret_scope: str | None = None
    secret_key: str | None = None


@dataclass(frozen=True)
class ReportConfig:
    """The report's choices: two features for the customer picture (empty: the first two principal components)."""

    scatter_features: tuple[str, ...] = ()


@dataclass(frozen=True)
class MlflowConfig:
    """Logging each run to MLflow (optional: ``pip install segmentation[mlflow]``); off by default."""

    enabled: bool = False
    tracking_uri: str | None = None
    experiment: str | None = None


@dataclass(frozen=True)
class SparkConfig:
    """Session settings used only when this job creates the session (never on a session it is handed)."""

    master: str | None = None
    app_name: str = "segmentation"
    conf: Mapping[str, str] = field(default_factory=lambda: types.MappingProxyType({}))


@dataclass(frozen=True)
class JobConfig:
    """The whole validated configuration of one run."""

    input: InputConfig = field(default_factory=InputConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-friendly copy (for the manifest)."""
        return _plain(self)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# ---------------------------------------------------------------- loading


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One YAML file as a mapping, following its ``base:`` chain; errors name the file."""
    return _read_layered(Path(path), seen=())


class _TextDatesLoader(yaml.SafeLoader):
    """Safe YAML without implicit timestamps: a date stays text, so a bad one is reported with its key."""


_TextDatesLoader.yaml_implicit_resolvers = {
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
    """``key.path=value`` with the value read as YAML (``5`` is a number, ``[a, b]`` a list)."""
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
    input_path: str | None = None,
    output_path: str | None = None,
    check_paths: bool = True,
) -> JobConfig:
    """Build and validate a JobConfig from files, ``--set`` overrides and explicit paths."""
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for file in config_files:
        _merge_layers(values, origin, read_yaml(file))
    for text in overrides:
        key, value = parse_override(text)
        _set_dotted(values, origin, key, value, f"--set {key}")
    if input_path is not None:
        _set_dotted(values, origin, "input.path", input_path, "--input")
    if output_path is not None:
        _set_dotted(values, origin, "output.path", output_path, "--output")
    cfg = _build(JobConfig, values, "", origin)
    validate(cfg, origin, check_paths=check_paths)
    return cfg


def _merge_layers(values: dict[str, Any], origin: dict[str, str], layer: dict[str, Any]) -> None:
    if "__layers__" in layer:
        for sub in layer["__layers__"]:
            _merge_layers(values, origin, sub)
        return
    source = layer.get("__source__", "<config>")
    _deep_merge(values, origin, "", {k: v for k, v in layer.items() if k != "__source__"}, source)


def _deep_merge(
    target: dict[str, Any], origin: dict[str, str], prefix: str, layer: Mapping[str, Any], source: str
) -> None:
    for raw_key, value in layer.items():
        key = str(raw_key)
        dotted = f"{prefix}.{key}" if prefix else key
        origin[dotted] = source
        if isinstance(value, dict):
            child = target.get(key)
            if not isinstance(child, dict):
                child = target[key] = {}
            _deep_merge(child, origin, dotted, value, source)
        else:
            target[key] = value


def _set_dotted(values: dict[str, Any], origin: dict[str, str], key: str, value: Any, source: str) -> None:
    parts = key.split(".")
    node = values
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        origin.setdefault(".".join(parts[: depth + 1]), source)
        node = child
    node[parts[-1]] = value
    origin[key] = source


def _where(origin: Mapping[str, str], key: str) -> str:
    probe = key
    while probe:
        if probe in origin:
            return origin[probe]
        probe = probe.rpartition(".")[0]
    return "default"


def _fail(origin: Mapping[str, str], key: str, message: str) -> typing.NoReturn:
    raise ConfigError(f"{_where(origin, key)}: {key}: {message}")


def _build(cls: type, values: Any, prefix: str, origin: Mapping[str, str]) -> Any:
    if not isinstance(values, dict):
        _fail(origin, prefix, f"expected a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if cls is PrivacyConfig and "key" in unknown:
        _fail(
            origin,
            f"{prefix}.key",
            "the key is never read from a config file; put it in the environment "
            "variable named by privacy.key_env, or in a Databricks secret (privacy.secret_scope, secret_key)",
        )
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        _fail(origin, key, f"unknown key; expected one of: {', '.join(sorted(names))}")
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _coerce(hints[name], value, key, origin)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str, origin: Mapping[str, str]) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key, origin)
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key, origin)
    if hint is bool:
        if isinstance(value, bool):
            return value
        _fail(origin, key, f"expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        _fail(origin, key, f"expected a whole number, got {value!r}")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        _fail(origin, key, f"expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str) and value != "":
            return value
        _fail(origin, key, f"expected a non-empty text, got {value!r}")
    if hint is dt.date:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        _fail(origin, key, f"expected a date like 2011-12-09, got {value!r}")
    if typing.get_origin(hint) is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            _fail(origin, key, f"expected a list, got {value!r}")
        return tuple(_coerce(args[0], item, f"{key}[{i}]", origin) for i, item in enumerate(value))
    if typing.get_origin(hint) is Mapping:
        if not isinstance(value, dict):
            _fail(origin, key, f"expected a mapping of settings, got {value!r}")
        return types.MappingProxyType({str(k): _conf_text(v) for k, v in value.items()})
    raise TypeError(f"unsupported config type {hint!r} for {key}")  # a bug in this module, not in the input


def _conf_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------- validation


def validate(cfg: JobConfig, origin: Mapping[str, str] | None = None, check_paths: bool = True) -> None:
    """Reject impossible values with a message naming the key and its file."""
    origin = origin or {}
    fail = lambda key, msg: _fail(origin, key, msg)  # noqa: E731
    inp, model = cfg.input, cfg.model
    if inp.kind not in INPUT_KINDS:
        fail("input.kind", f"expected one of {', '.join(INPUT_KINDS)}, got {inp.kind!r}")
    if inp.format not in INPUT_FORMATS:
        fail("input.format", f"expected one of {', '.join(INPUT_FORMATS)}, got {inp.format!r}")
    if inp.integer_timestamp_unit not in INTEGER_TIMESTAMP_UNITS:
        fail("input.integer_timestamp_unit", f"expected one of {', '.join(INTEGER_TIMESTAMP_UNITS)}")
    if not inp.timestamp_formats:
        fail("input.timestamp_formats", "expected at least one timestamp pattern")
    if len(inp.csv.delimiter) != 1:
        fail("input.csv.delimiter", f"expected one character, got {inp.csv.delimiter!r}")
    if model.k_min < 2:
        fail("model.k_min", f"expected at least 2 (one segment is no segmentation), got {model.k_min}")
    if model.k_max < model.k_min:
        fail("model.k_max", f"expected at least model.k_min ({model.k_min}), got {model.k_max}")
    if model.k is not None and model.k < 2:
        fail("model.k", f"expected a fixed k of at least 2, or null to sweep, got {model.k}")
    if model.max_iter < 1:
        fail("model.max_iter", f"expected at least 1, got {model.max_iter}")
    if model.tol < 0:
        fail("model.tol", f"expected a non-negative number, got {model.tol}")
    if model.init_mode not in INIT_MODES:
        fail("model.init_mode", f"expected one of {', '.join(INIT_MODES)}, got {model.init_mode!r}")
    if model.seeds < 1:
        fail("model.seeds", f"expected at least 1 seed per k, got {model.seeds}")
    if model.sweep_parallelism < 1:
        fail("model.sweep_parallelism", f"expected at least 1 fit at a time, got {model.sweep_parallelism}")
    if model.sweep_max_customers < 2:
        fail("model.sweep_max_customers", f"expected at least 2, got {model.sweep_max_customers}")
    sel = cfg.selection
    if sel.rule not in SELECTION_RULES:
        fail("selection.rule", f"expected one of {', '.join(SELECTION_RULES)}, got {sel.rule!r}")
    if not 0.0 <= sel.min_segment_share < 1.0:
        fail("selection.min_segment_share", f"expected a share from 0 to 1, got {sel.min_segment_share}")
    if not -1.0 <= sel.min_stability <= 1.0:
        fail("selection.min_stability", f"expected an adjusted Rand index from -1 to 1, got {sel.min_stability}")
    if sel.silhouette_tolerance < 0:
        fail("selection.silhouette_tolerance", f"expected a non-negative number, got {sel.silhouette_tolerance}")
    if model.customers_per_partition < 1:
        fail("model.customers_per_partition", f"expected at least 1, got {model.customers_per_partition}")
    if not 0.0 <= model.outlier_fence_iqr <= 100.0:
        fail(
            "model.outlier_fence_iqr",
            f"expected a number of interquartile ranges from 0 (off) to 100, got {model.outlier_fence_iqr}",
        )
    if cfg.report.scatter_features and len(cfg.report.scatter_features) != 2:
        fail("report.scatter_features", f"expected two feature names or none, got {list(cfg.report.scatter_features)}")
    if not 0.0 <= model.outlier_max_share < 0.5:
        fail("model.outlier_max_share", f"expected a share from 0 to below 0.5, got {model.outlier_max_share}")
    if not RUN_ID_PATTERN.match(cfg.output.run_id):
        fail(
            "output.run_id",
            "expected 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit, "
            f"got {cfg.output.run_id!r}",
        )
    priv = cfg.privacy
    if (priv.secret_scope is None) != (priv.secret_key is None):
        fail("privacy.secret_key", "set both privacy.secret_scope and privacy.secret_key, or neither")
    if model.init_steps < 1:
        fail("model.init_steps", f"expected at least 1, got {model.init_steps}")
    if not 0.0 <= cfg.quality.max_quarantine_share <= 1.0:
        fail("quality.max_quarantine_share", f"expected a share from 0 to 1, got {cfg.quality.max_quarantine_share}")
    known = _known_features(cfg)
    if inp.kind == "transactions":
        _check_subset(fail, "features.model_features", cfg.features.model_features, TRANSACTION_FEATURES)
        _check_subset(fail, "features.log_features", cfg.features.log_features, TRANSACTION_FEATURES)
        if not cfg.features.model_features:
            fail("features.model_features", "expected at least one feature")
    else:
        cust = inp.customers
        if not cust.numeric_columns and not cust.categorical_columns:
            fail("input.customers.numeric_columns", "a customer table needs at least one feature column")
        _check_subset(fail, "input.customers.log_columns", cust.log_columns, cust.numeric_columns)
        overlap = set(cust.numeric_columns) & set(cust.categorical_columns)
        if overlap:
            fail("input.customers.categorical_columns", f"also listed as numeric: {sorted(overlap)}")
    if model.order_by is not None and model.order_by not in known:
        fail("model.order_by", f"expected one of the model's numeric features {sorted(known)}, got {model.order_by!r}")
    if inp.path is None:
        fail("input.path", "no input given; set input.path or pass --input PATH")
    if cfg.output.path is None:
        fail("output.path", "no output folder given; set output.path or pass --output PATH")
    for key, path in (("input.path", inp.path), ("output.path", cfg.output.path)):
        # local paths with '..' are resolved before they are compared; object stores do not resolve '..'
        if not is_local_path(path) and ".." in Path(urlparse(path).path).parts:
            fail(key, f"'..' is not allowed in a {urlparse(path).scheme}: path; give the full path instead of {path!r}")
    if check_paths and is_local_path(inp.path) and not glob.glob(local_path(inp.path)):
        fail("input.path", f"no file or folder matches {inp.path!r}")
    if is_local_path(inp.path) and is_local_path(cfg.output.path):
        _check_output_outside_input(fail, inp.path, cfg.output.path)


def _known_features(cfg: JobConfig) -> set[str]:
    if cfg.input.kind == "customers":
        return set(cfg.input.customers.numeric_columns)
    return set(TRANSACTION_FEATURES)


def _check_subset(fail: Any, key: str, chosen: Sequence[str], allowed: Sequence[str]) -> None:
    for name in chosen:
        if name not in allowed:
            fail(key, f"unknown feature {name!r}; expected names from: {', '.join(allowed)}")


def _check_output_outside_input(fail: Any, input_path: str, output_path: str) -> None:
    out = Path(local_path(output_path)).resolve()
    base = Path(local_path(input_root(input_path))).resolve()
    if out == base or base in out.parents:
        fail("output.path", f"the output {output_path!r} is inside the input {input_path!r}; write it elsewhere")
    if out in base.parents:
        fail("output.path", f"the input {input_path!r} is inside the output {output_path!r}; write it elsewhere")


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
