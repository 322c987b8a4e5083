"""The job's configuration: the schema (``schema``), its cross-key rules (``rules``), loading from YAML files
and ``--set`` overrides (``loader``), pydantic's errors in our words (``wording``) and path helpers (``paths``).

The names below are the package's public face: ``load`` a configuration, and the models it is made of.
"""

from segmentation.config.known import EPOCH_FORMATS, TRANSACTION_FEATURES, unavailable_features
from segmentation.config.loader import load, parse_override, read_yaml
from segmentation.config.paths import input_root, is_local_path, local_path
from segmentation.config.schema import (
    CatalogOutputConfig,
    ColumnMapping,
    CsvOptions,
    CustomerTableOptions,
    FeaturesConfig,
    HistoryConfig,
    InputConfig,
    JobConfig,
    MlflowConfig,
    ModelConfig,
    NumberOptions,
    OutputConfig,
    PrivacyConfig,
    QualityConfig,
    ReportConfig,
    SelectionConfig,
    SparkConfig,
    ValueConfig,
)
from segmentation.errors import ConfigError

__all__ = [
    "EPOCH_FORMATS",
    "TRANSACTION_FEATURES",
    "CatalogOutputConfig",
    "ColumnMapping",
    "ConfigError",
    "CsvOptions",
    "CustomerTableOptions",
    "FeaturesConfig",
    "HistoryConfig",
    "InputConfig",
    "JobConfig",
    "MlflowConfig",
    "ModelConfig",
    "NumberOptions",
    "OutputConfig",
    "PrivacyConfig",
    "QualityConfig",
    "ReportConfig",
    "SelectionConfig",
    "SparkConfig",
    "ValueConfig",
    "input_root",
    "is_local_path",
    "load",
    "local_path",
    "parse_override",
    "read_yaml",
    "unavailable_features",
]
